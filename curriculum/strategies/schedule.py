"""schedule: fixed easy -> hard orders.

Items are ranked by prior difficulty (item.difficulty; missing values rank by the category's position in the
pool, then by index). At step t (policy versions seen; late results change nothing) the selection is uniform
over the easiest fraction c(t):

* `linear` competence (Platanios et al. 2019, "Competence-based Curriculum Learning for NMT"):
      c(t) = min(1, t (1 - c0) / T + c0)
* `root` competence (same paper, p = 2):
      c(t) = min(1, sqrt(t (1 - c0^2) / T + c0^2))
* `cyclical` (Kesgin & Amasyali 2024, "Cyclical Curriculum Learning"): the data-size fraction rises linearly
  from c0 to 1 over `period` steps, then starts again at c0:
      c(t) = c0 + (1 - c0) * ((t mod P) / P)
"""
from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import Field

from curriculum.params import StrategyParams
from curriculum.registry import register
from curriculum.strategy import Strategy


class ScheduleParams(StrategyParams):
    kind: Literal["linear", "root", "cyclical"] = Field("root", description="competence function")
    c0: float = Field(0.1, gt=0, le=1, description="initial competence (fraction of the pool, easiest first)")
    horizon: int = Field(1000, ge=1, description="steps T until full competence (linear / root)")
    period: int = Field(200, ge=1, description="steps P of one cycle (cyclical)")


@register
class Schedule(Strategy):
    name = "schedule"
    description = "Fixed easy->hard competence schedules (linear / root) and cyclical data-size schedules."
    Params = ScheduleParams
    state_attrs = ("rank",)
    step_attrs = ()  # the ranking depends on the pool, not on observed rewards

    def setup(self) -> None:
        self.rank = np.zeros(0, dtype=np.int64)  # item indices, easiest first

    def on_grow(self, old_items: int, old_arms: int) -> None:
        d = self.pool.difficulty
        key = np.where(np.isnan(d), np.inf, d)
        self.rank = np.lexsort((np.arange(len(d)), self.pool.category, key)).astype(np.int64)

    def competence(self, t: int | None = None) -> float:
        p, t = self.params, self.steps if t is None else t
        if p.kind == "linear":
            return min(1.0, t * (1 - p.c0) / p.horizon + p.c0)
        if p.kind == "root":
            return min(1.0, math.sqrt(t * (1 - p.c0**2) / p.horizon + p.c0**2))
        return p.c0 + (1 - p.c0) * ((t % p.period) / p.period)

    def eligible(self) -> np.ndarray:
        """Indices of the easiest c(t) fraction of the pool."""
        return self.rank[: max(1, math.ceil(self.competence() * len(self.rank)))]

    def _select(self, n: int, exclude: np.ndarray | None) -> np.ndarray:
        return self.random_candidates(n, exclude, members=self.eligible())

    def details(self) -> dict:
        return {"competence": self.competence(), "eligible_items": int(len(self.eligible()))}
