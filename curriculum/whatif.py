"""What-if selection replay (issue 18, deliverable 6a; METHODS.md §G2): feed a logged run's record stream to another
strategy and report where its choices would have differed.

CAVEAT (it leads every report): the rewards come from the logged policy, which trained on the logged strategy's
choices. The other strategy sees the rewards of items the logged strategy picked, never those of its own picks, and
the policy it would have trained is not the logged one. This is an off-policy comparison of *choices*, not an
estimate of what the other curriculum would have achieved.

The replay folds the log through the logged experiment exactly (`ExperimentState.apply`), and at every logged lease
asks the other strategy for a selection of the same size with the same exclusion mask (what was leased, retired or
held at that moment); every logged report is observed by both. Per lease it compares:

* items: Jaccard overlap of the two selections, and the share of the logged items the other also picked;
* arm weights: each strategy's `arm_weights()` before the selection, and their total-variation distance;
* predicted degenerate share: the mean, over the selected items, of the Beta-Binomial probability that a group of
  the leased size is degenerate, from one neutral Beta posterior per item fed with every logged reward (the same
  predictor for both, so the difference is the choice alone).

Rows are aggregated per policy version (a step). The same strategy with the same params and seed reproduces the
logged choices exactly: zero difference.

A log is `experiment.json` (an ExperimentConfig) plus `records.jsonl` (one apply() record per line, the first an
`add_items` record holding the pool) in a run folder; `simulate_log` writes one from the simulated student.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from curriculum.experiment import ExperimentConfig, ExperimentState
from curriculum.predictive import PredictiveState
from curriculum.registry import make_strategy
from curriculum.simulator import SimConfig, SimulatedStudent

CAVEAT = ("off-policy: the rewards came from the logged policy, trained on the logged strategy's choices; the other "
          "strategy is shown rewards of items it may not have picked, so this compares choices, not outcomes")


def _tv(a: np.ndarray, b: np.ndarray) -> float:
    n = max(len(a), len(b))
    return 0.5 * float(np.abs(np.pad(a, (0, n - len(a))) - np.pad(b, (0, n - len(b)))).sum())


class _Tap:
    """Wraps the logged strategy's select/observe (instance attributes) so each call is mirrored to the other."""

    def __init__(self, logged, other, pool) -> None:
        self.logged, self.other, self.pool = logged, other, pool
        self.pred = PredictiveState(0)
        self.rows: list[dict] = []
        self.version = 0
        self._select, self._observe = logged.select, logged.observe
        logged.select, logged.observe = self.select, self.observe

    def p_degenerate(self, sel) -> float:
        if not len(sel):
            return float("nan")
        self.pred.grow(self.pool.size)
        q = np.zeros(len(sel))
        for g in np.unique(sel.num_samples).tolist():
            at = sel.num_samples == g
            q[at] = self.pred.p_degenerate(sel.indices[at], g)
        return float(q.mean())

    def select(self, n: int, exclude: np.ndarray | None = None):
        mask = None if exclude is None else exclude.copy()
        w_log, w_other = self.logged.arm_weights(), self.other.arm_weights()
        a = self._select(n, exclude)
        b = self.other.select(n, mask)
        la, lb = set(a.indices.tolist()), set(b.indices.tolist())
        union = la | lb
        self.rows.append({
            "step": self.version, "n": len(a), "overlap": len(la & lb) / len(union) if union else 1.0,
            "kept": len(la & lb) / len(la) if la else 1.0, "arm_tv": _tv(w_log, w_other),
            "arms_logged": w_log.tolist(), "arms_other": w_other.tolist(),
            "pdeg_logged": self.p_degenerate(a), "pdeg_other": self.p_degenerate(b),
            "samples_logged": int(a.num_samples.sum()), "samples_other": int(b.num_samples.sum())})
        return a

    def observe(self, batch) -> None:
        self._observe(batch)
        self.other.observe(batch)
        self.pred.grow(self.pool.size)
        self.pred.observe_batch(batch)
        self.version = max(self.version, int(batch.policy_version.max()))


def _per_step(rows: list[dict], arms: list[str]) -> list[dict]:
    out = []
    for step in sorted({r["step"] for r in rows}):
        rs = [r for r in rows if r["step"] == step]
        w = np.array([r["n"] for r in rs], dtype=np.float64)
        w = w / w.sum() if w.sum() else np.full(len(rs), 1 / len(rs))

        def avg(key: str, rs=rs, w=w) -> float:
            return float(np.nansum([x[key] * k for x, k in zip(rs, w)]))

        out.append({"step": step, "leases": len(rs), "items": int(sum(r["n"] for r in rs)),
                    "overlap": avg("overlap"), "kept": avg("kept"), "arm_tv": avg("arm_tv"),
                    "pdeg_logged": avg("pdeg_logged"), "pdeg_other": avg("pdeg_other"),
                    "arms": arms, "arms_logged": rs[0]["arms_logged"], "arms_other": rs[0]["arms_other"]})
    return out


def whatif(config: ExperimentConfig, records: Iterable[dict], strategy: str, params: dict | None = None,
           seed: int | None = None) -> dict:
    """Replay `records` under `config`'s strategy and compare `strategy` (params, seed: default the logged seed)."""
    logged = ExperimentState(config.model_copy(deep=True), [])
    other = make_strategy(strategy, logged.pool, params, seed=config.seed if seed is None else seed,
                          group_size=config.group_size)
    tap = _Tap(logged.strategy, other, logged.pool)
    for rec in records:
        logged.apply(rec)
    steps = _per_step(tap.rows, list(logged.pool.categories))
    rows = tap.rows

    def mean(key: str) -> float | None:
        v = [r[key] for r in rows if not np.isnan(r[key])]
        return float(np.mean(v)) if v else None

    differ = [s["step"] for s in steps if s["overlap"] < 1 or s["arm_tv"] > 1e-12]
    return {"caveat": CAVEAT, "logged": {"strategy": config.strategy, "params": config.params},
            "other": {"strategy": strategy, "params": other.params.model_dump(mode="json")},
            "leases": len(rows), "steps": len(steps),
            "summary": {"overlap": mean("overlap"), "kept": mean("kept"), "arm_tv": mean("arm_tv"),
                        "pdeg_logged": mean("pdeg_logged"), "pdeg_other": mean("pdeg_other"),
                        "steps_that_differ": len(differ), "first_difference": differ[0] if differ else None,
                        "identical": not differ},
            "per_step": steps}


def read_log(run: Path) -> tuple[ExperimentConfig, list[dict]]:
    """A run folder (experiment.json + records.jsonl) or a records.jsonl next to its experiment.json."""
    folder = run if run.is_dir() else run.parent
    cfg = ExperimentConfig.model_validate(json.loads((folder / "experiment.json").read_text()))
    path = run if run.is_file() else folder / "records.jsonl"
    with path.open() as f:
        return cfg, [json.loads(line) for line in f if line.strip()]


def write_log(run: Path, config: ExperimentConfig, records: list[dict]) -> None:
    run.mkdir(parents=True, exist_ok=True)
    (run / "experiment.json").write_text(config.model_dump_json(indent=1))
    with (run / "records.jsonl").open("w") as f:
        for rec in records:
            f.write(json.dumps(rec, separators=(",", ":")) + "\n")


def simulate_log(strategy: str, params: dict | None = None, steps: int = 30, seed: int = 0,
                 cfg: SimConfig | None = None) -> tuple[ExperimentConfig, list[dict]]:
    """A logged run of `strategy` on the simulated student through the experiment's records (no Ray)."""
    cfg = cfg or SimConfig(categories=4, noisy=1, items_per_category=60, batch=16)
    student = SimulatedStudent(cfg, seed)
    config = ExperimentConfig(name=f"sim-{strategy}", strategy=strategy, params=params or {},
                              group_size=cfg.group_size, seed=seed)
    st = ExperimentState(config.model_copy(deep=True), [])
    records: list[dict[str, Any]] = [{"op": "add_items", "items": student.items()}]
    st.apply(records[0])
    for t in range(steps):
        lease = {"op": "lease", "n": cfg.batch, "worker": "sim", "lease_seconds": 60.0, "now": float(t),
                 "batch_id": f"b{t}"}
        records.append(lease)
        batch = st.apply(lease)["items"]
        idx = st.pool.indices_of([i["id"] for i in batch])
        r = student.rollout(idx, np.array([i["num_samples"] for i in batch], dtype=np.int64))
        student.learn(idx, r)
        rep = {"op": "report", "now": t + 0.5, "results": [
            {"item_id": i["id"], "rewards": row[~np.isnan(row)].tolist(), "policy_version": t}
            for i, row in zip(batch, r)]}
        records.append(rep)
        st.apply(rep)
    return config, records
