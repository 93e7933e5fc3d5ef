"""dump: DUMP (Wang et al. 2025, "DUMP: Automated Distribution-Level Curriculum Learning for RL-based LLM
Post-training").

Each arm j keeps the |advantage| of its last W responses (per sample, not per group). With N responses seen
in total and n_j of arm j:

    mu_j  = mean of arm j's window of |A|
    UCB_j = mu_j + c * sqrt(2 ln(N + 1) / (n_j + 1))
    p     = softmax(UCB / T)
    p'    = (1 - f) p + f |arm j| / sum_k |arm k|        (our addition: uniform_share f, default 0)

Defaults W = 300, c = 1.0, T = 0.1 (the paper's code). Items inside an arm are drawn uniformly. A step's
responses enter the window in a canonical order (so K reports of one policy version equal one); late results
join the open step. The noise guard (NoiseGuard; our addition) caps arms whose |advantage| stays high while
their pass rates do not move.

Why the uniform share: a level the policy solves a few percent of the time yields mostly all-0 groups, so its
mean |A| is low and T = 0.1 gives it 1-3% of the draws; issue 16's evidence found such a level (d3, t5) ending
below uniform's in every seed. f > 0 keeps that share of the draws where uniform sampling would put them.
"""
from __future__ import annotations

import numpy as np
from pydantic import Field

from curriculum.events import EventBatch
from curriculum.params import GuardedParams
from curriculum.registry import register
from curriculum.sampling import softmax
from curriculum.strategy import Strategy


class DUMPParams(GuardedParams):
    window: int = Field(300, ge=1, description="responses W kept per arm for the mean |advantage|")
    c: float = Field(1.0, ge=0, description="exploration coefficient of the UCB bonus")
    temperature: float = Field(0.1, gt=0, description="softmax temperature over UCB scores")
    uniform_share: float = Field(0.0, ge=0, le=1, description="share of draws spread over arms by size (0: the paper)")


@register
class DUMP(Strategy):
    name = "dump"
    description = "DUMP: UCB over arms on the windowed mean |advantage| of responses, softmax draw."
    Params = DUMPParams
    draws_arms = True
    arm_state = {"n_resp": (np.int64, 0), "n_win": (np.int64, 0), "ring_pos": (np.int64, 0)}
    state_attrs = ("ring",)

    def setup(self) -> None:
        self.ring = np.zeros((0, self.params.window), dtype=np.float64)

    def on_grow(self, old_items: int, old_arms: int) -> None:
        a = self.pool.num_categories
        if self.ring.shape[0] < a:
            self.ring = np.vstack(
                [self.ring, np.zeros((a - self.ring.shape[0], self.ring.shape[1] or self.params.window))]
            )

    def update(self, batch: EventBatch) -> None:
        adv = np.abs(batch.advantages)
        cat = self.fold_arms[0]  # each row's arm (the base fold's)
        w = self.params.window
        if self.ring.shape[1] != w:  # window changed live (PATCH): start the windows afresh
            self.ring = np.zeros((self.pool.num_categories, w))
            self.ring_pos[:] = 0
            self.n_win[:] = 0
        # every arm at once: the values of each arm in row order (then sample order), nan padding dropped
        na = self.pool.num_categories
        if batch.dense:  # every row has G values: rank the rows within their arm, not all n x G values
            rows, width = adv.shape
            k = self.fold_arms[1]
            row_rank = np.empty(rows, dtype=np.int64)
            row_rank[np.argsort(cat, kind="stable")] = np.arange(rows) - np.repeat(np.cumsum(k) - k, k)
            vals, arm, count = adv.ravel(), np.repeat(cat, width), k * width
            rank = (row_rank[:, None] * width + np.arange(width)).ravel()
        else:
            vals = adv.ravel()
            arm = np.repeat(cat, adv.shape[1])
            ok = ~np.isnan(vals)
            vals, arm = vals[ok], arm[ok]
            count = np.bincount(arm, minlength=na)
            rank = np.empty(len(arm), dtype=np.int64)  # position of each value among its arm's values
            rank[np.argsort(arm, kind="stable")] = np.arange(len(arm)) - np.repeat(np.cumsum(count) - count, count)
        skip = np.maximum(count - w, 0)  # only an arm's last w values enter its window
        keep = rank >= skip[arm]
        arm, rank = arm[keep], rank[keep]
        self.ring[arm, (self.ring_pos[arm] + rank - skip[arm]) % w] = vals[keep]
        kept = count - skip
        self.ring_pos[:] = (self.ring_pos + kept) % w
        self.n_resp += count
        self.n_win[:] = np.minimum(w, self.n_win + kept)

    def arm_values(self) -> np.ndarray:
        mu = self.ring.sum(axis=1) / np.maximum(self.n_win, 1)
        total = self.n_resp.sum()
        return mu + self.params.c * np.sqrt(2 * np.log(total + 1) / (self.n_resp + 1))

    def arm_probs(self) -> np.ndarray:
        p = softmax(self.arm_values(), self.params.temperature)
        f = self.params.uniform_share
        if f == 0:
            return p
        return (1 - f) * p + f * self.pool.size_shares()
