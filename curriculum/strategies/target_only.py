"""target_only: uniform sampling over a fixed set of arms (the reference `oracle-target`).

    p_a = |arm a| / sum_{b in S} |arm b|   if a in S (the run's target levels), else 0
    items inside an arm: epoch-wise without replacement

No paper: an oracle that is told which levels the evaluation measures, and trains on nothing else. It is a
reference for the benchmark's tables, reported but not a baseline to beat: no real run knows its target set.
"""
from __future__ import annotations

import numpy as np
from pydantic import Field

from curriculum.params import StrategyParams
from curriculum.registry import register
from curriculum.strategy import Strategy


class TargetOnlyParams(StrategyParams):
    arms: list[str] = Field(default_factory=list, description="the categories drawn (empty: all, i.e. uniform)")


@register
class TargetOnly(Strategy):
    name = "target_only"
    description = "Uniform over the named arms only (the oracle-target reference)."
    Params = TargetOnlyParams
    draws_arms = True

    def arm_probs(self) -> np.ndarray:
        sizes = self.pool.arm_sizes().astype(np.float64)
        if self.params.arms:
            sizes = sizes * np.isin(np.asarray(self.pool.categories, dtype=object), self.params.arms)
        return sizes / sizes.sum() if sizes.sum() > 0 else np.full(len(sizes), 1.0 / max(len(sizes), 1))
