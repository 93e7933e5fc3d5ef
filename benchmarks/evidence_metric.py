"""The evidence benchmark's metric, fixed before the runs (README "Evidence"; benchmarks/evidence.py runs them).

* target levels: every non-noise level whose warm-start pass rate lies in [0.02, 0.9];
* curve: (rollouts generated, mean pass rate over the target levels) at the warm start and every evaluation;
* primary: rollouts until the trailing mean of the last 3 points of the curve (the warm start counts as a
  point, so the 2nd evaluation is the first that can reach it) reaches the warm start + gain;
* secondary: the curve's value at 25 / 50 / 100% of `uniform+DS`'s rollout budget of the same seed (linear
  interpolation; every run goes on to that budget, benchmarks/evidence.py, and one that stops short at its step
  cap keeps its last value), and its area up to that budget divided by the budget (the mean pass rate over it);
* ratio: uniform+DS's rollouts to target / the strategy's. A side that never reached the target counts at its
  whole budget, which makes the ratio a bound (marked `>=` or `<=`); both unreached: no ratio;
* across seeds: the median, the worst seed, and a 95% percentile-bootstrap interval of the geometric mean;
  for the secondary AUC, the paired difference to `uniform+DS` of the same seed (same evaluation items and
  evaluation seeds), with a 95% percentile-bootstrap interval of its mean.
"""
from __future__ import annotations

import math

import numpy as np

TARGET_BAND = (0.02, 0.9)
BASELINE = "uniform+DS"
#: the strategies of the tables, in their order (benchmarks/evidence.py maps each to a registry strategy)
LABELS = ["default", BASELINE, "uniform+guard", "filter", "dump", "oracle-target",
          # issue 17: the strategies that decide before the rollout
          "mopps", "greso", "screen", "gain", "default+skip",
          # issue 18: the attribute curriculum (rg-terms' number of terms is a reasoning-gym difficulty attribute)
          "coach", "fixed-middle",
          # issue 16's proposed fix for the hardest level's loss, measured beside the default (not the default)
          "default+floor"]
TRAILING = 3
BUDGET_SHARES = (0.25, 0.5, 1.0)


def trailing(curve: list[dict], k: int = TRAILING) -> list[float]:
    """Trailing mean of the last k points' pass rates (nan before the k-th point)."""
    rates = [p["pass_rate"] for p in curve]
    return [float(np.mean(rates[i - k + 1: i + 1])) if i >= k - 1 else float("nan") for i in range(len(rates))]


def rollouts_to_target(curve: list[dict], target: float, k: int = TRAILING) -> int | None:
    """Rollouts at the first point whose trailing mean reaches `target` (None: never)."""
    return next((p["rollouts"] for p, m in zip(curve, trailing(curve, k)) if m >= target - 1e-12), None)


def value_at(curve: list[dict], budget: float) -> float:
    xs = [p["rollouts"] for p in curve]
    return float(np.interp(budget, xs, [p["pass_rate"] for p in curve]))


def auc(curve: list[dict], budget: float) -> float:
    """Mean pass rate over [0, budget] of the linearly interpolated curve."""
    if budget <= 0:
        return curve[0]["pass_rate"]
    xs = [p["rollouts"] for p in curve if p["rollouts"] < budget] + [budget]
    ys = [value_at(curve, x) for x in xs]
    return float(np.trapezoid(ys, xs) / budget)


def ratio(base: dict, other: dict) -> tuple[float | None, str]:
    """(base's rollouts to target / other's, bound): bound '' exact, '>=' or '<=' when one side never reached
    the target and counts at its budget. Each argument: {"to_target": int | None, "budget": int}."""
    b, o = base["to_target"], other["to_target"]
    if b is None and o is None:
        return None, ""
    if o is None:
        return b / max(other["budget"], 1), "<="
    if b is None:
        return base["budget"] / max(o, 1), ">="
    return b / max(o, 1), ""


def bootstrap_interval(values: list[float], geometric: bool = True, n: int = 10_000,
                       seed: int = 0) -> tuple[float, float] | None:
    """95% percentile bootstrap interval of the mean of per-seed values (None under 2 seeds): the geometric mean
    for ratios, the arithmetic mean for differences (`geometric=False`)."""
    if len(values) < 2:
        return None
    xs = np.asarray(values, dtype=float)
    xs = np.log(xs) if geometric else xs
    rng = np.random.default_rng(seed)
    means = xs[rng.integers(0, len(xs), size=(n, len(xs)))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return (math.exp(lo), math.exp(hi)) if geometric else (float(lo), float(hi))


def cell_metrics(curve: list[dict], target: float, budget: int) -> dict:
    """Primary and secondary readings of one run against the budget of uniform+DS of the same seed."""
    return {"to_target": rollouts_to_target(curve, target), "budget": curve[-1]["rollouts"],
            **{f"at_{int(s * 100)}": value_at(curve, s * budget) for s in BUDGET_SHARES},
            "auc": auc(curve, budget)}
