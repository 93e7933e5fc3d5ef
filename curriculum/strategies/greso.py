"""greso: GRPO with Efficient Selective Rollout (Zheng et al., arXiv 2506.02177; code Infini-AI-Lab/GRESO).

Skip, before the rollout, prompts whose recent groups were all degenerate. From the shared per-prompt
predictive state (`curriculum.predictive`): an item's streak z is its number of consecutive degenerate groups
at its latest visits, on the easy side (its last group mean >= 0.5: all solved) or the hard side (all failed).
Each candidate, in random order, is

    kept with probability  max(p_side^z, floor)      (z > 0; p_side = p_easy or p_hard, floor = 0.01)
    always kept                                       (z = 0: unseen or last group mixed)

and the first n kept are selected (if fewer survive, the skipped ones with the shortest streaks fill the rest).
Example: p = 0.5, z = 3 -> keep 1/8; z >= 7 -> keep 0.01.

**Adaptive exploration** (once per step = policy version): with r_easy, r_hard the shares of all-solved and
all-failed groups among the step's groups and T = target_zero_variance (0.25), T_easy = T/3, T_hard = 2T/3:

    p_side <- clip(p_side - delta if r_side >= T_side else p_side + delta, 0.05, 0.95)     (delta = 0.01)

**Re-tests on a schedule** (our addition, prime-rl #2916/#2667: retired prompts must come back). Beyond the
probabilistic floor, an item with z > 0 whose latest evidence is `retest_age` or more policy versions old is
always kept when it is a candidate: its streak was measured under a policy that has moved since. The paper's
code ranks by the easy check first; with a single streak per item the side is the last group's.
`details` counts skipped candidates, re-tests (kept with z > 0) and forced re-tests (by age).
"""
from __future__ import annotations

import numpy as np
from pydantic import Field

from curriculum import calibration
from curriculum.events import EventBatch
from curriculum.params import StrategyParams
from curriculum.predictive import PRIOR_DOC, PredictiveState, Prior, arm_state, item_state, of_strategy
from curriculum.registry import register
from curriculum.strategy import Strategy


class GresoParams(StrategyParams):
    p_init: float = Field(0.5, ge=0.05, le=0.95, description="initial keep base p_easy = p_hard")
    target_zero_variance: float = Field(
        0.25, ge=0, le=1, description="target share T of degenerate groups (T/3 easy, 2T/3 hard)"
    )
    delta: float = Field(0.01, ge=0, le=0.5, description="step of the p_easy / p_hard adjustment per policy version")
    floor: float = Field(0.01, gt=0, le=1, description="least keep probability of a retired item")
    retest_age: int = Field(50, ge=1, description="policy versions after which a retired candidate is always re-tested")
    candidates: float = Field(4.0, ge=1, description="random candidates per selected item (the paper: 1.5)")
    decay: float = Field(0.99, gt=0, le=1, description="evidence factor per policy version of the shared Beta state")
    prior: Prior = Field("arm", description=PRIOR_DOC)


@register
class Greso(Strategy):
    name = "greso"
    description = (
        "GRESO: skip items whose recent groups were all degenerate, with a probability growing with the streak."
    )
    Params = GresoParams
    item_state = {**item_state("pred_"), **calibration.item_state("cal_")}
    arm_state = arm_state("pred_")
    select_items = calibration.select_items("cal_")
    state_attrs = ("pred_version", "p_easy", "p_hard", "skips", "retests", "forced_retests",
                   *calibration.state_attrs("cal_"))
    step_attrs = ("pred_version", "p_easy", "p_hard", *calibration.step_attrs("cal_"))  # the counters: select-time

    def setup(self) -> None:
        self.p_easy = self.p_hard = float(self.params.p_init)
        self.skips = self.retests = self.forced_retests = 0
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
        self.pred.observe_batch(batch)
        p, n = self.params, len(batch)
        easy = float((batch.degenerate & (batch.mean >= 0.5)).sum()) / n
        hard = float((batch.degenerate & (batch.mean < 0.5)).sum()) / n
        t = p.target_zero_variance
        self.p_easy = float(np.clip(self.p_easy + (-p.delta if easy >= t / 3 else p.delta), 0.05, 0.95))
        self.p_hard = float(np.clip(self.p_hard + (-p.delta if hard >= 2 * t / 3 else p.delta), 0.05, 0.95))

    def candidate_count(self, n: int) -> int:
        return int(np.ceil(self.params.candidates * n))

    def keep_probability(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(keep probability, forced re-test mask) per item."""
        pred = self.pred
        z = pred.streak[idx]
        base = np.where(pred.last[idx] >= 0.5, self.p_easy, self.p_hard)
        keep = np.where(z > 0, np.maximum(base ** z, self.params.floor), 1.0)
        forced = (z > 0) & (pred.age(idx) >= self.params.retest_age)
        return np.where(forced, 1.0, keep), forced

    def choose(self, n: int, candidates: np.ndarray) -> np.ndarray:
        if n <= 0:
            return candidates[:0]
        keep, forced = self.keep_probability(candidates)
        kept = self.rng.random(len(candidates)) < keep
        pos = np.flatnonzero(kept)[:n]
        scanned = int(pos[-1]) + 1 if len(pos) == n else len(candidates)
        skipped = np.flatnonzero(~kept[:scanned])
        if len(pos) < n:  # too few survive: the shortest streaks among the skipped fill the batch
            z = self.pred.streak[candidates[skipped]]
            pos = np.concatenate([pos, skipped[np.argsort(z, kind="stable")[: n - len(pos)]]])
            skipped = np.setdiff1d(skipped, pos)
        z = self.pred.streak[candidates[pos]]
        self.skips += len(skipped)
        self.retests += int((z > 0).sum())
        self.forced_retests += int(forced[pos].sum())
        picked = candidates[pos]
        self.calibration.record(picked, *self.pred.predict(picked, self.group_size))
        return picked

    def load_state_dict(self, d: dict) -> None:
        super().load_state_dict(d)
        calibration.loaded(self, "cal_")

    def details(self) -> dict:
        return {**self.pred.details(), "p_easy": self.p_easy, "p_hard": self.p_hard, "skips": self.skips,
                "retests": self.retests, "forced_retests": self.forced_retests,
                "calibration": self.calibration.metrics()}
