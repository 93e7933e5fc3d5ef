"""mopps: Model Predictive Prompt Selection (Qu et al., arXiv 2507.04632; code thu-rllab/MoPPS).

Each item has a Beta(alpha, beta) posterior over the current policy's pass rate, kept in
the shared per-prompt predictive state (`curriculum.predictive`; prior: the paper's Beta(1, 1) with `prior: flat`,
by default our addition, the item's level's empirical-Bayes Beta). After a group of k samples with s successes,

    alpha <- alpha0 + lambda^dv (alpha - alpha0) + s        beta <- beta0 + lambda^dv (beta - beta0) + (k - s)

with dv the policy versions since the item's previous evidence (the paper decays per visit, lambda = 1 in its
config and 0.5 in its Countdown scripts; we decay per policy version, so that evidence ages with the policy,
not with how often the item happens to be drawn). Selection, from ts_ratio x n random eligible candidates:

    gamma_i ~ Beta(alpha_i, beta_i)                        (Thompson sampling, one draw per candidate)
    topk:      the n with the smallest (gamma_i - target)^2, target = 0.5
    threshold: n at random among gamma_i in [low, high]; if too few, the nearest to the band fill the rest

Success is the reward sum as fractional pseudo-counts by default (continuous rewards in [0, 1]); `binarize`
counts r >= 1 - 1e-9 as a success and anything else as a failure (the paper's `acc >= 1`). The rule chases
p ~ 0.5, so the noise guard applies (a category graded at random attracts it).
"""
from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from curriculum import calibration
from curriculum.events import EventBatch
from curriculum.params import GuardedParams
from curriculum.predictive import (
    PRIOR_DOC,
    PredictiveState,
    Prior,
    arm_state,
    degenerate_probability,
    item_state,
    of_strategy,
)
from curriculum.registry import register
from curriculum.sampling import smallest
from curriculum.strategy import Strategy


class MoppsParams(GuardedParams):
    target: float = Field(0.5, ge=0, le=1, description="target pass rate gamma* of the top-k rule")
    mode: Literal["topk", "threshold"] = Field(
        "topk", description="topk: closest draws to target; threshold: random in [low, high]"
    )
    low: float = Field(0.3, ge=0, le=1, description="lower edge of the threshold band")
    high: float = Field(0.7, ge=0, le=1, description="upper edge of the threshold band")
    decay: float = Field(0.99, gt=0, le=1, description="evidence factor lambda per policy version (1: no forgetting)")
    prior: Prior = Field("arm", description=PRIOR_DOC)
    ts_ratio: int = Field(8, ge=1, description="random candidates per selected item (Thompson candidates)")
    binarize: bool = Field(
        False, description="count r >= 1 as a success (paper); false: reward sum as fractional successes"
    )

    @model_validator(mode="after")
    def _band(self) -> MoppsParams:
        if self.low > self.high:
            raise ValueError("low must be <= high")
        return self


def successes(batch: EventBatch, binarize: bool) -> np.ndarray:
    """Per group: the reward sum, or the number of rewards >= 1 (binarize)."""
    if not binarize:
        return batch.reward_sum
    return np.nan_to_num(batch.rewards, nan=0.0).__ge__(1 - 1e-9).sum(axis=1).astype(np.float64)


@register
class Mopps(Strategy):
    name = "mopps"
    description = "MoPPS: Thompson-sample each candidate's Beta posterior, keep the draws closest to a target rate."
    Params = MoppsParams
    item_state = {**item_state("pred_"), **calibration.item_state("cal_")}
    arm_state = arm_state("pred_")
    select_items = calibration.select_items("cal_")
    state_attrs = ("pred_version", *calibration.state_attrs("cal_"))
    step_attrs = ("pred_version", *calibration.step_attrs("cal_"))

    def setup(self) -> None:
        self.pred_version = -1
        _ = self.calibration

    @property
    def calibration(self) -> calibration.Calibration:
        return calibration.Calibration(store=self, prefix="cal_")

    @property
    def pred(self) -> PredictiveState:
        return of_strategy(self, self.params.decay, self.params.prior)

    def update(self, batch: EventBatch) -> None:
        self.calibration.resolve(batch, self.version)
        if self.params.binarize:
            self.pred.observe(batch.item, successes(batch, True), batch.count, batch.policy_version)
        else:
            self.pred.observe_batch(batch)

    def candidate_count(self, n: int) -> int:
        return self.params.ts_ratio * n

    def choose(self, n: int, candidates: np.ndarray) -> np.ndarray:
        a, b = self.pred.posterior(candidates)  # one evaluation serves the Thompson draw and the calibration record
        g = self.rng.beta(a, b)
        p = self.params
        if p.mode == "topk":
            pos = smallest((g - p.target) ** 2, n)
        else:
            dist = np.maximum(p.low - g, g - p.high).clip(0)  # 0 inside the band; candidates are in random order
            pos = smallest(dist, n)
        a, b = a[pos], b[pos]
        self.calibration.record(candidates[pos], a / (a + b), degenerate_probability(a, b, self.group_size))
        return candidates[pos]

    def load_state_dict(self, d: dict) -> None:
        super().load_state_dict(d)
        calibration.loaded(self, "cal_")

    def details(self) -> dict:
        return {**self.pred.details(), "calibration": self.calibration.metrics()}
