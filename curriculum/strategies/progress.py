"""progress: learning progress (Matiisen et al. 2017, "Teacher-Student Curriculum Learning").

Each arm keeps two exponential moving averages of its success (group mean reward), a fast and a slow one,
updated once per step (policy version) with the arm's mean success in that step:

    fast_a <- fast_a + beta_fast (s_a - fast_a)        slow_a <- slow_a + beta_slow (s_a - slow_a)
    LP_a   = |fast_a - slow_a|
    p_a    = (1 - eps) LP_a / sum LP + eps / K

An arm whose success is changing (up: being learnt; down: being forgotten) is drawn more; eps keeps every arm
alive. Unseen arms get the largest LP so each is tried early. Defaults beta_fast = 0.1, beta_slow = 0.02,
eps = 0.1 (ours; TSCL's "window" variant in spirit). Late results join the open step.

Syllabus' `LearningProgressCurriculum` (after Kanitscheider et al. 2021) differs, and the strategy benchmark
runs it as a peer: its slow average is an EMA of the *fast* one (one rate, ema_alpha = 0.1, for both), both
are passed through a reweighting p -> p (1 - p_theta) / (p + p_theta (1 - 2p)) with p_theta = 0.1, and the
sampling distribution z-scores the arms' LP, applies a sigmoid and normalises, with no eps (arms with zero
LP get zero weight once any arm has LP > 0). Ours keeps the simpler TSCL form: two independent EMAs and eps
exploration; it is not a variance-chaser, so it has no noise guard.
"""
from __future__ import annotations

import numpy as np
from pydantic import Field, model_validator

from curriculum.events import EventBatch
from curriculum.params import StrategyParams
from curriculum.registry import register
from curriculum.strategy import Strategy


class ProgressParams(StrategyParams):
    beta_fast: float = Field(0.1, gt=0, le=1, description="rate of the fast success EMA")
    beta_slow: float = Field(0.02, gt=0, le=1, description="rate of the slow success EMA")
    eps: float = Field(0.1, ge=0, le=1, description="share of uniform exploration over arms")

    @model_validator(mode="after")
    def _order(self) -> ProgressParams:
        if self.beta_slow >= self.beta_fast:
            raise ValueError("beta_slow must be smaller than beta_fast")
        return self


@register
class LearningProgress(Strategy):
    name = "progress"
    description = "Learning progress: |fast EMA - slow EMA| of success per arm, with eps exploration."
    Params = ProgressParams
    draws_arms = True
    arm_state = {"fast": (np.float64, np.nan), "slow": (np.float64, np.nan)}

    def update(self, batch: EventBatch) -> None:
        _, k, s = self.fold_arms  # the base fold's per-arm groups and sums of group means
        s = s / np.maximum(k, 1)
        seen = k > 0
        new = seen & np.isnan(self.fast)
        self.fast[new] = self.slow[new] = s[new]  # first observation initialises both EMAs
        upd = seen & ~new
        self.fast[upd] += self.params.beta_fast * (s[upd] - self.fast[upd])
        self.slow[upd] += self.params.beta_slow * (s[upd] - self.slow[upd])

    def arm_values(self) -> np.ndarray:
        lp = np.abs(self.fast - self.slow)
        known = ~np.isnan(lp)
        top = lp[known].max() if known.any() else 0.0
        return np.where(known, lp, max(top, 1e-3))

    def arm_probs(self) -> np.ndarray:
        lp = self.arm_values()
        k = len(lp)
        if k == 0:
            return lp
        base = lp / lp.sum() if lp.sum() > 0 else np.full(k, 1.0 / k)
        return (1 - self.params.eps) * base + self.params.eps / k
