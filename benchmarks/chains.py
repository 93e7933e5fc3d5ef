"""h1 chains on a SIMULATED student: the horizon curriculum against training at the target horizon only (h1's
baseline) and uniform over horizons, at equal rollouts. These are simulated-student numbers, not a trained model.

The experiment is real: an ExperimentState over the `chain` generator (items made on demand, bounded pool per
arm, retired after use) and the real strategies; only the learner is a model, the simulator's (curriculum/
simulator.py: a logistic skill, GRPO learns only from groups with mixed outcomes, by lr * 4 m (1 - m)) extended
to horizons:

    p(h) = p_step^h * p_link^(h - 1)     p_step = sigmoid(s), p_link = sigmoid(c)

s is the single-step skill (the warm start can do single steps: p_step(0) = 0.9), c the skill of carrying a
result into the next step (p_link(0) = 0.4). A group of horizon h with success share m moves s by lr 4m(1-m),
and c by the same when h >= 2 (a horizon-1 chain has no link to learn). Training uses horizons 1..target; the
evaluation is the expected pass rate at the target and at a longer horizon (extrapolation, as h1 evaluates).

    PYTHONPATH=. .venv/bin/python benchmarks/chains.py [--seeds 8] [--budget 120000] [--target-h 5] [--eval-h 7]
        [--eval-at 30000] [--lr 0.001]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from curriculum.experiment import ExperimentConfig, ExperimentState
from curriculum.registry import DEFAULT_STRATEGY

OUT = Path(__file__).parent / "results" / "chains.json"
ROWS: dict[str, dict] = {
    "horizon (h1 stage-wise)": {"name": "horizon", "params": {}},
    "target horizon only": {"name": "horizon", "params": {"start": 99, "frozen": True}},
    "uniform over horizons": {"name": "uniform", "params": {}},
    "default (dump x filter)": DEFAULT_STRATEGY,
}


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + np.exp(-x))


class ChainStudent:
    def __init__(self, step0: float = 0.9, link0: float = 0.4, lr: float = 0.002, seed: int = 0) -> None:
        self.s, self.c, self.lr = np.log(step0 / (1 - step0)), np.log(link0 / (1 - link0)), lr
        self.rng = np.random.default_rng(seed)

    def p(self, h: np.ndarray | float) -> np.ndarray:
        return sigmoid(self.s) ** np.asarray(h) * sigmoid(self.c) ** (np.asarray(h) - 1)

    def rollout(self, h: np.ndarray, g: int) -> np.ndarray:
        return (self.rng.random((len(h), g)) < self.p(h)[:, None]).astype(np.float64)

    def learn(self, h: np.ndarray, rewards: np.ndarray) -> None:
        m = rewards.mean(axis=1)
        gain = self.lr * 4 * m * (1 - m)
        self.s += gain.sum()
        self.c += gain[h >= 2].sum()


def run(spec: dict, seed: int, budget: int, target_h: int, eval_h: int, target: float, lr: float,
        batch: int = 64, group: int = 8) -> dict:
    cfg = ExperimentConfig(name="chains", strategy=spec["name"], params=spec.get("params", {}), seed=seed,
                           group_size=group, generator={"kind": "chain", "max_horizon": target_h, "seed": seed,
                                                        "per_arm": 2 * batch})
    st, student = ExperimentState(cfg), ChainStudent(lr=lr, seed=seed)
    rollouts = steps = 0
    reached, per_arm, degen = None, np.zeros(target_h), np.zeros(target_h)
    curve = []
    while rollouts < budget:
        out = st.apply({"op": "lease", "n": batch, "worker": "sim", "lease_seconds": 60.0, "now": float(steps),
                        "batch_id": f"b{steps}"})
        h = np.array([int(it["category"][1:]) for it in out["items"]])
        r = student.rollout(h, group)
        st.apply({"op": "report", "now": steps + 0.5, "results": [
            {"item_id": it["id"], "rewards": rr.tolist(), "rollout_id": f"{steps}-{it['id']}",
             "policy_version": steps} for it, rr in zip(out["items"], r)]})
        student.learn(h, r)
        rollouts += r.size
        steps += 1
        np.add.at(per_arm, h - 1, 1)
        np.add.at(degen, h - 1, (r.min(axis=1) == r.max(axis=1)).astype(float))
        if reached is None and student.p(target_h) >= target:
            reached = rollouts
        if steps % 10 == 0:
            curve.append([rollouts, float(student.p(target_h)), float(student.p(eval_h))])
    with np.errstate(invalid="ignore"):
        degen_share = np.where(per_arm > 0, degen / np.maximum(per_arm, 1), np.nan)
    return {"seed": seed, "rollouts": rollouts, "rollouts_to_target": reached,
            "pass_target_h": float(student.p(target_h)), "pass_eval_h": float(student.p(eval_h)),
            "pass_per_h": [float(student.p(k)) for k in range(1, eval_h + 1)],
            "groups_per_h": per_arm.tolist(), "degenerate_share_per_h": [None if np.isnan(x) else float(x)
                                                                         for x in degen_share],
            "pool_items_made": int(st.generated.made.sum()), "curve": curve}


def ci(xs: list[float], rng: np.random.Generator, n: int = 2000) -> list[float]:
    """95% bootstrap CI of the mean."""
    a = np.asarray(xs, dtype=float)
    means = a[rng.integers(0, len(a), (n, len(a)))].mean(axis=1)
    return [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]


def at(curve: list, rollouts: int, col: int) -> float:
    """The curve's value (col 1: p(target h), col 2: p(eval h)) at the first record with >= `rollouts`."""
    return next((c[col] for c in curve if c[0] >= rollouts), curve[-1][col])


def summarize(runs: list[dict], budget: int, eval_at: int) -> dict:
    rng = np.random.default_rng(0)
    mid = [at(r["curve"], eval_at, 2) for r in runs]
    to_t = [r["rollouts_to_target"] if r["rollouts_to_target"] is not None else budget for r in runs]
    ev = [r["pass_eval_h"] for r in runs]
    tg = [r["pass_target_h"] for r in runs]
    return {"rollouts_to_target_mean": float(np.mean(to_t)), "rollouts_to_target_ci": ci(to_t, rng),
            "reached": sum(r["rollouts_to_target"] is not None for r in runs),
            "pass_target_h_mean": float(np.mean(tg)), "pass_target_h_ci": ci(tg, rng),
            "pass_eval_h_mean": float(np.mean(ev)), "pass_eval_h_ci": ci(ev, rng),
            "pass_eval_h_at_mean": float(np.mean(mid)), "pass_eval_h_at_ci": ci(mid, rng),
            "degenerate_share_per_h": [None if any(r["degenerate_share_per_h"][k] is None for r in runs) else
                                       float(np.mean([r["degenerate_share_per_h"][k] for r in runs]))
                                       for k in range(len(runs[0]["degenerate_share_per_h"]))]}


def table(summary: dict, args) -> None:
    base = summary["target horizon only"]["rollouts_to_target_mean"] if "target horizon only" in summary else None
    print(f"| strategy | rollouts to p(h={args.target_h}) >= {args.target} (mean, 95% CI) | reached | "
          f"vs target-only | p(h={args.eval_h}) at {args.eval_at:,} rollouts (95% CI) | p(h={args.target_h}) | "
          f"p(h={args.eval_h}) at the end | degenerate share per h |")
    print("|---|---|---|---|---|---|---|---|")
    for label, s in summary.items():
        lo, hi = s["rollouts_to_target_ci"]
        m_lo, m_hi = s["pass_eval_h_at_ci"]
        vs = f"{base / s['rollouts_to_target_mean']:.2f}x" if base else "-"
        degen = " ".join("-" if d is None else f"{d:.2f}" for d in s["degenerate_share_per_h"])
        print(f"| {label} | {s['rollouts_to_target_mean']:,.0f} ({lo:,.0f}-{hi:,.0f}) | {s['reached']}/{args.seeds} "
              f"| {vs} | {s['pass_eval_h_at_mean']:.3f} ({m_lo:.3f}-{m_hi:.3f}) | {s['pass_target_h_mean']:.3f} "
              f"| {s['pass_eval_h_mean']:.3f} | {degen} |")


def plot(res: dict, path: Path) -> None:
    """Mean p(target h) and p(eval h) against rollouts, one line per strategy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a = res["args"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for label, runs in res["runs"].items():
        n = min(len(r["curve"]) for r in runs)
        x = np.array([c[0] for c in runs[0]["curve"][:n]])
        for ax, col in zip(axes, (1, 2)):
            ax.plot(x, np.mean([[c[col] for c in r["curve"][:n]] for r in runs], axis=0), label=label)
    for ax, h in zip(axes, (a["target_h"], a["eval_h"])):
        ax.set_title(f"pass rate at h = {h}" + (" (never trained)" if h == a["eval_h"] else " (target)"))
        ax.set_xlabel("rollouts")
    axes[0].set_ylabel(f"expected pass rate, mean of {a['seeds']} seeds")
    axes[0].legend(fontsize=8)
    fig.suptitle("h1 chains on the SIMULATED student (benchmarks/chains.py)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--budget", type=int, default=120_000, help="rollouts per run")
    ap.add_argument("--target-h", type=int, default=5, help="the longest trained horizon (h1's target)")
    ap.add_argument("--eval-h", type=int, default=7, help="a longer horizon, evaluated only")
    ap.add_argument("--target", type=float, default=0.5, help="pass rate at the target horizon that counts")
    ap.add_argument("--eval-at", type=int, default=30_000, help="rollouts at which p(eval h) is compared")
    ap.add_argument("--lr", type=float, default=0.001, help="the simulated student's skill gain per mixed group")
    ap.add_argument("--rows", nargs="*", default=list(ROWS))
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--replot", action="store_true", help="only redraw the plot from --out")
    args = ap.parse_args(argv)
    if args.replot:
        res = json.loads(args.out.read_text())
        plot(res, args.out.with_suffix(".png"))
        return res
    t0 = time.perf_counter()
    runs = {k: [run(ROWS[k], seed, args.budget, args.target_h, args.eval_h, args.target, args.lr)
                for seed in range(args.seeds)] for k in args.rows}
    summary = {k: summarize(v, args.budget, args.eval_at) for k, v in runs.items()}
    table(summary, args)
    res = {"note": "simulated student (benchmarks/chains.py ChainStudent), not a trained model",
           "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
           "summary": summary, "runs": runs, "wall_s": time.perf_counter() - t0}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=1))
    plot(res, args.out.with_suffix(".png"))
    print(f"wrote {args.out} in {res['wall_s']:.0f}s")
    return res


if __name__ == "__main__":
    main()
