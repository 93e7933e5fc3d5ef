"""A deterministic simulated student for comparing strategies in seconds (a model, not proof).

* K categories of graded difficulty; item i in category k has difficulty d_i ~ centre_k + N(0, spread).
* Per-category skill s_k; a rollout on item i succeeds with p_i = sigmoid(slope (s_k - d_i)).
* GRPO learns only from groups with mixed outcomes: a group with success share m moves the skill of its
  category by  lr * 4 m (1 - m)  (0 for degenerate groups, largest at m = 0.5), and `transfer` of that to
  the neighbouring categories. With `gain_per_sample`, times (samples in the group) / group_size: a token-mean
  loss weighs a group by its samples, which matters when strategies lease groups of different sizes (screen).
* `noisy` extra categories whose rewards are Bernoulli(0.5) whatever the skill and that teach nothing (a
  partial-credit scorer on a small model, ambiguous references, a flaky verifier): high group variance, no
  learning. They are the last categories (`NOISE` prefix) and count in no accuracy.
* Accuracy = mean over the learnable categories of the expected pass rate of their items.
* `workers` > 1 splits each step's batch among that many rollout workers: each selects its share (excluding
  what the others hold, as leases do) and all report with the same policy version, in a shuffled order — the
  shape of a real run with several rollout actors.

* `angle_noise` (off by default) makes the student report a **synthetic** per-item feature `angle`, for the
  `gain` strategy: a stand-in for the policy's angle concentration that assumes the GAIN-RL premise (a high
  concentration marks a prompt learnable early): the item's pass probability under the initial skill plus
  N(0, angle_noise), clipped to [0, 1]; uniform in [0, 1] on the noisy categories. It is fixed for the run, as
  the paper's ranking by the initial model is. No real model is behind it.

`run()` drives a real strategy through select/observe; the `rollout_filter` baseline instead oversamples k*n
random candidates, rolls ALL of them out (and pays for them), and keeps up to n groups with mixed outcomes
(DAPO-style dynamic sampling) — the rollout-based filtering that PCL's value model is meant to beat.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from curriculum.calibration import find_part, live_summary
from curriculum.events import EventBatch
from curriculum.items import ItemPool
from curriculum.registry import make_strategy

BASELINE = "rollout_filter"


class SimConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    categories: int = Field(6, ge=1, description="number of difficulty levels (arms)")
    noisy: int = Field(1, ge=0, description="extra categories whose rewards are Bernoulli(0.5) noise")
    items_per_category: int = Field(400, ge=1, description="items per level")
    spread: float = Field(0.5, ge=0, description="std of item difficulty inside a level")
    slope: float = Field(3.0, gt=0, description="steepness of the success logistic")
    skill0: float = Field(0.5, description="initial skill (level centres are 0, 1, 2, ...)")
    lr: float = Field(0.004, gt=0, description="skill gain per group with mixed outcomes (at m = 0.5)")
    transfer: float = Field(0.5, ge=0, le=1, description="share of a gain passed to neighbouring levels")
    batch: int = Field(64, ge=1, description="items per step")
    group_size: int = Field(8, ge=2, description="rollouts per item")
    budget: int = Field(200_000, ge=1, description="rollouts to spend")
    target: float = Field(0.6, gt=0, lt=1, description="accuracy that counts as reached")
    oversample: int = Field(4, ge=1, description="k of the rollout_filter baseline")
    eval_every: int = Field(5, ge=1, description="steps between accuracy records")
    workers: int = Field(1, ge=1, description="rollout workers sharing each step (same policy version)")
    angle_noise: float | None = Field(None, ge=0, description="SYNTHETIC feature `angle` per item: initial pass "
                                      "probability + N(0, angle_noise) (none: no feature is reported)")
    angle_offline: bool = Field(False, description="also put the synthetic angle in every item's metadata at the "
                                "start (the paper's offline ranking pass); else it is known once reported")
    gain_per_sample: bool = Field(False, description="scale a group's skill gain by its size / group_size (a 4-sample "
                                  "screen teaches half what an 8-sample group does); false: every group alike")

NOISE = "N"  # category-name prefix of the noisy categories


class SimulatedStudent:
    def __init__(self, cfg: SimConfig, seed: int) -> None:
        self.cfg = cfg
        rng = np.random.default_rng(seed)
        k, m = cfg.categories, cfg.items_per_category
        self.category = np.repeat(np.arange(k + cfg.noisy), m)
        self.noisy = self.category >= k  # items of the noisy categories
        self.difficulty = self.category + rng.normal(0, cfg.spread, size=len(self.category))
        self.skill = np.full(k + cfg.noisy, cfg.skill0, dtype=np.float64)
        self.rng = np.random.default_rng(seed + 1)
        self.angle = None if cfg.angle_noise is None else self.synthetic_angle(np.random.default_rng(seed + 3))

    def synthetic_angle(self, rng: np.random.Generator) -> np.ndarray:
        """SYNTHETIC (see the module docstring): not read from any model."""
        a = self.pass_prob() + rng.normal(0, self.cfg.angle_noise, size=len(self.category))
        return np.clip(np.where(self.noisy, rng.random(len(self.category)), a), 0.0, 1.0)

    def features(self, idx: np.ndarray) -> dict[str, np.ndarray] | None:
        return None if self.angle is None else {"angle": self.angle[idx][:, None]}

    def category_name(self, c: int) -> str:
        k = self.cfg.categories
        return f"L{c}" if c < k else f"{NOISE}{c - k}"

    def items(self) -> list[dict]:
        """Learnable levels carry their level as prior difficulty; noisy items carry none (nothing is known)."""
        offline = self.angle is not None and self.cfg.angle_offline
        return [{"id": f"s{i}", "prompt": f"level {c} item {i}", "category": self.category_name(c),
                 **({} if c >= self.cfg.categories else {"difficulty": float(c)}),
                 **({"metadata": {"angle": float(self.angle[i])}} if offline else {})}
                for i, c in enumerate(self.category.tolist())]

    def pass_prob(self, idx: np.ndarray | None = None) -> np.ndarray:
        idx = slice(None) if idx is None else idx
        p = 1 / (1 + np.exp(-self.cfg.slope * (self.skill[self.category[idx]] - self.difficulty[idx])))
        return np.where(self.noisy[idx], 0.5, p)

    def rollout(self, idx: np.ndarray, num_samples: np.ndarray) -> np.ndarray:
        """(n, max samples) 0/1 rewards, nan beyond each item's count."""
        width = int(num_samples.max()) if len(num_samples) else 1
        r = (self.rng.random((len(idx), width)) < self.pass_prob(idx)[:, None]).astype(np.float64)
        r[np.arange(width)[None, :] >= num_samples[:, None]] = np.nan
        return r

    def learn(self, idx: np.ndarray, rewards: np.ndarray) -> None:
        m = np.nanmean(rewards, axis=1)
        gain = np.where(self.noisy[idx], 0.0, self.cfg.lr * 4 * m * (1 - m))  # noise teaches nothing
        if self.cfg.gain_per_sample:
            gain = gain * (~np.isnan(rewards)).sum(axis=1) / self.cfg.group_size
        k = self.cfg.categories
        g = np.bincount(self.category[idx], weights=gain, minlength=len(self.skill))[:k]
        self.skill[:k] += g
        self.skill[1:k] += self.cfg.transfer * g[:-1]
        self.skill[:k - 1] += self.cfg.transfer * g[1:]

    def accuracy(self) -> tuple[float, np.ndarray]:
        """Mean expected pass rate over the learnable levels, and per level (noisy categories excluded)."""
        k = self.cfg.categories
        p = self.pass_prob()[~self.noisy]
        per = np.bincount(self.category[~self.noisy], weights=p, minlength=k) / np.bincount(
            self.category[~self.noisy], minlength=k
        )
        return float(per.mean()), per


def _step(strat, student: SimulatedStudent, cfg: SimConfig, n: int, version: int, rng: np.random.Generator):
    """One step's selection and rollouts, split among `cfg.workers` workers; returns the reports (in the order
    they reach the strategy) after feeding them to it."""
    shares = np.full(cfg.workers, n // cfg.workers) + (np.arange(cfg.workers) < n % cfg.workers)
    held = np.zeros(strat.pool.size, dtype=bool)  # what the other workers leased this step
    reports = []
    for k in shares.tolist():
        sel = strat.select(int(k), held)
        held[sel.indices] = True
        reports.append((sel, student.rollout(sel.indices, sel.num_samples)))
    order = rng.permutation(len(reports)) if cfg.workers > 1 else range(len(reports))
    out = []
    for j in order:
        sel, rewards = reports[j]
        if len(sel):
            strat.observe(EventBatch(sel.indices, rewards, np.full(len(sel), version),
                                     features=student.features(sel.indices) or {}))
            out.append((sel, rewards))
    return out


class Tally:
    """The accounting every simulated run shares (ours and peers'): rollouts paid, the noisy share, degenerate
    groups, when the target was reached, and the accuracy curves."""

    def __init__(self, cfg: SimConfig, student: SimulatedStudent) -> None:
        self.cfg, self.student = cfg, student
        self.rollouts = self.groups = self.degenerate = self.noisy = self.steps = 0
        self.reached: int | None = None
        self.until_target: tuple[int, int] | None = None  # (degenerate, groups) when the target was reached
        self.curve_r: list[int] = []
        self.curve_acc: list[float] = []
        self.curve_per: list[list[float]] = []
        self.t0 = time.perf_counter()

    def pay(self, idx: np.ndarray, rewards: np.ndarray) -> np.ndarray:
        """Count a step's groups (rewards nan-padded); returns their degenerate mask."""
        count = (~np.isnan(rewards)).sum(axis=1)
        degen = EventBatch(idx, rewards, np.zeros(len(idx), np.int64)).degenerate
        self.rollouts += int(count.sum())
        self.noisy += int(count[self.student.noisy[idx]].sum())
        self.groups += len(idx)
        self.degenerate += int(degen.sum())
        return degen

    def pay_extra(self, rollouts: int, noisy: int) -> None:
        """Rollouts paid outside the training groups (e.g. a peer's evaluation episodes)."""
        self.rollouts += rollouts
        self.noisy += noisy

    def end_step(self) -> None:
        self.steps += 1
        acc, per = self.student.accuracy()
        if self.reached is None and acc >= self.cfg.target:
            self.reached, self.until_target = self.rollouts, (self.degenerate, self.groups)
        if self.steps % self.cfg.eval_every == 0 or self.rollouts >= self.cfg.budget:
            self.curve_r.append(self.rollouts)
            self.curve_acc.append(acc)
            self.curve_per.append(per.tolist())

    def result(self, strategy: str, seed: int) -> dict:
        acc, per = self.student.accuracy()
        d, g = self.until_target or (self.degenerate, self.groups)
        return {"strategy": strategy, "seed": seed, "rollouts": self.rollouts, "steps": self.steps,
                "final_accuracy": acc, "final_per_category": per.tolist(), "rollouts_to_target": self.reached,
                "degenerate_ratio": self.degenerate / max(self.groups, 1),
                "degenerate_to_target": d / max(g, 1),  # over the groups spent until the target was reached
                "noisy_share": self.noisy / max(self.rollouts, 1),
                "curve_rollouts": self.curve_r, "curve_accuracy": self.curve_acc,
                "curve_per_category": self.curve_per, "wall_s": time.perf_counter() - self.t0}


def run(strategy: str, params: dict[str, Any] | None = None, seed: int = 0, cfg: SimConfig | None = None) -> dict:
    """One simulated training run; returns curves and summary numbers."""
    cfg = cfg or SimConfig()
    student = SimulatedStudent(cfg, seed)
    pool = ItemPool(student.items())
    if strategy == BASELINE:
        strat = make_strategy("uniform", pool, seed=seed, group_size=cfg.group_size)
    else:
        strat = make_strategy(strategy, pool, params, seed=seed, group_size=cfg.group_size)
    order_rng = np.random.default_rng(seed + 2)
    tally = Tally(cfg, student)
    while tally.rollouts < cfg.budget:
        n = cfg.batch * (cfg.oversample if strategy == BASELINE else 1)
        reports = _step(strat, student, cfg, n, tally.steps, order_rng)
        if not reports:
            break
        idx = np.concatenate([sel.indices for sel, _ in reports])
        width = max(r.shape[1] for _, r in reports)
        rewards = np.full((len(idx), width), np.nan)
        row = 0
        for _, r in reports:
            rewards[row: row + len(r), : r.shape[1]] = r
            row += len(r)
        degen = tally.pay(idx, rewards)
        keep = np.arange(len(idx))
        if strategy == BASELINE:  # train on at most `batch` mixed groups; the rest were paid for and dropped
            keep = np.flatnonzero(~degen)[: cfg.batch]
        student.learn(idx[keep], rewards[keep])
        tally.end_step()
    # how the strategy's predictions held up (per policy version too), and its screening / re-test overhead
    details = strat.describe()["details"]
    cal = find_part(details, "calibration")
    return {**tally.result(strategy, seed), "predictions": live_summary(details),
            **({"calibration_history": cal["history"]} if cal else {})}


def train(strat, student: SimulatedStudent, cfg: SimConfig, seed: int, name: str) -> dict:
    """Train `student` under a strategy built by the caller until the budget is spent; every report is paid for
    and trained on (no dynamic sampling). The loop of benchmarks that build their own pool or strategy."""
    tally, order_rng = Tally(cfg, student), np.random.default_rng(seed + 2)
    while tally.rollouts < cfg.budget:
        reports = _step(strat, student, cfg, cfg.batch, tally.steps, order_rng)
        if not reports:
            break
        for sel, r in reports:
            tally.pay(sel.indices, r)
            student.learn(sel.indices, r)
        tally.end_step()
    return tally.result(name, seed)


def summarize(runs: list[dict], cfg: SimConfig) -> dict:
    """Medians over seeds; a run that never reaches the target counts as the budget (`reached` says how many did)."""
    to_t = [r["rollouts_to_target"] if r["rollouts_to_target"] is not None else cfg.budget for r in runs]
    return {
        "rollouts_to_target_median": float(np.median(to_t)),
        "rollouts_to_target_iqr": [float(np.percentile(to_t, 25)), float(np.percentile(to_t, 75))],
        "reached": sum(r["rollouts_to_target"] is not None for r in runs),
        "final_accuracy_median": float(np.median([r["final_accuracy"] for r in runs])),
        "degenerate_ratio_median": float(np.median([r["degenerate_ratio"] for r in runs])),
        "degenerate_to_target_median": float(np.median([r.get("degenerate_to_target", r["degenerate_ratio"])
                                                        for r in runs])),
        "noisy_share_median": float(np.median([r["noisy_share"] for r in runs])),
        **{k + "_median": float(np.median([r["predictions"][k] for r in runs]))
           for k in runs[0].get("predictions", {}) if all(k in r.get("predictions", {}) for r in runs)},
    }


def compare(strategies: dict[str, dict] | list[str], seeds: int = 5, cfg: SimConfig | None = None,
            progress=None) -> dict:
    """Every strategy over `seeds` seeds, summarised (`summarize`), with speed-ups against `uniform`.

    `strategies` maps a label to params, or to {"name": strategy, "params": {...}} for labelled variants
    (e.g. two compositions); a list means default params."""
    cfg = cfg or SimConfig()
    if isinstance(strategies, list):
        strategies = {s: {} for s in strategies}
    runs: dict[str, list[dict]] = {}
    for label, spec in strategies.items():
        name, params = (spec["name"], spec.get("params", {})) if "name" in spec else (label, spec)
        runs[label] = []
        for seed in range(seeds):
            runs[label].append(run(name, params, seed, cfg))
            if progress:
                progress(label, seed)
    summary = {label: summarize(rs, cfg) for label, rs in runs.items()}
    base = summary["uniform"]["rollouts_to_target_median"] if "uniform" in summary else None
    for s in summary.values():
        s["speedup_vs_uniform"] = (base / s["rollouts_to_target_median"]) if base else None
    return {"config": cfg.model_dump(), "seeds": seeds, "summary": summary, "runs": runs}
