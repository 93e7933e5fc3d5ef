"""irt: PUDF (Meng et al. 2024, "A Psychology-based Unified Dynamic Framework for Curriculum Learning").

Item response theory links the policy's ability theta to item difficulty b_i (2PL adds discrimination a):

    P(correct | theta, i) = sigmoid(a (theta - b_i))            (1PL: a = 1)

* Difficulty calibration from an "artificial crowd": every observed response is a crowd answer. Item i's
  difficulty starts at its prior (item.difficulty x `prior_scale`, else 0) and takes a gradient step on the
  log-likelihood of each new group:  b_i <- b_i - lr_b * a * (s_i/n_i - P(correct | theta, i)).
* Ability estimation (each step): theta = argmax_theta sum_k [s_k log P_k + (n_k - s_k) log(1 - P_k)] over
  the last `window` groups, by Newton's method:
      g = a sum_k (s_k - n_k P_k),   h = -a^2 sum_k n_k P_k (1 - P_k),   theta <- theta - g / h
* Selection (DDS-MAE): the items with difficulty at or below theta, closest to theta first; if too few,
  the easiest of the rest.

Calibration uses the ability at the step's start, the ability is re-estimated once per step (policy
version); late results join the open step.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from curriculum.events import EventBatch
from curriculum.params import ItemLevelParams
from curriculum.registry import register
from curriculum.strategy import Strategy


class IRTParams(ItemLevelParams):
    model: Literal["1pl", "2pl"] = Field("1pl", description="1PL (a = 1) or 2PL (a = discrimination)")
    discrimination: float = Field(1.0, gt=0, description="a of the 2PL model")
    prior_scale: float = Field(1.0, description="multiplier turning item.difficulty into an initial b")
    lr_b: float = Field(0.5, ge=0, description="step size of the difficulty calibration")
    window: int = Field(256, ge=1, description="recent groups used for the ability MLE")
    newton_steps: int = Field(10, ge=1, le=100, description="Newton iterations per ability estimate")


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def ability_mle(b: np.ndarray, s: np.ndarray, n: np.ndarray, a: float = 1.0, theta0: float = 0.0,
                steps: int = 10) -> float:
    """Maximum-likelihood ability for responses (s_k of n_k correct on items with difficulty b_k)."""
    theta = theta0
    for _ in range(steps):
        p = sigmoid(a * (theta - b))
        g = a * np.sum(s - n * p)
        h = -(a**2) * np.sum(n * p * (1 - p))
        if h > -1e-9:
            break
        new = float(np.clip(theta - g / h, -10, 10))  # all-correct / all-wrong have no finite MLE
        if new == theta:  # a fixed point: every further iteration gives it again (so stopping changes nothing)
            break
        theta = new
    return theta


@register
class IRT(Strategy):
    name = "irt"
    description = "PUDF: IRT difficulty calibration + ability MLE; select items near and below theta."
    Params = IRTParams
    item_state = {"b": (np.float64, np.nan)}
    state_attrs = ("theta", "hist_b", "hist_s", "hist_n", "hist_pos", "hist_len")

    def setup(self) -> None:
        self.theta = 0.0
        w = self.params.window
        self.hist_b, self.hist_s, self.hist_n = np.zeros(w), np.zeros(w), np.zeros(w)
        self.hist_pos = self.hist_len = 0

    @property
    def a(self) -> float:
        return self.params.discrimination if self.params.model == "2pl" else 1.0

    def on_grow(self, old_items: int, old_arms: int) -> None:
        new = np.isnan(self.b)
        prior = self.pool.difficulty[new] * self.params.prior_scale
        self.b[new] = np.nan_to_num(prior, nan=0.0)

    def update(self, batch: EventBatch) -> None:
        it = batch.item
        s, n = batch.reward_sum, batch.count.astype(np.float64)
        p = sigmoid(self.a * (self.theta - self.b[it]))
        np.add.at(self.b, it, -self.params.lr_b * self.a * (s / n - p))
        w = len(self.hist_b)
        if w != self.params.window:  # window changed live
            self.setup()
            w = len(self.hist_b)
        k = min(len(it), w)
        pos = (self.hist_pos + np.arange(k)) % w
        self.hist_b[pos], self.hist_s[pos], self.hist_n[pos] = self.b[it[-k:]], s[-k:], n[-k:]
        self.hist_pos = int((self.hist_pos + k) % w)
        self.hist_len = int(min(w, self.hist_len + k))
        m = self.hist_len
        self.theta = ability_mle(self.hist_b[:m], self.hist_s[:m], self.hist_n[:m], self.a, self.theta,
                                 self.params.newton_steps)

    def choose(self, n: int, candidates: np.ndarray) -> np.ndarray:
        gap = self.theta - self.b[candidates]  # >= 0: at or below ability
        below = gap >= 0
        key = np.where(below, gap, 1e6 - gap)  # below: closest to theta first; above: easiest first
        return candidates[np.argsort(key, kind="stable")[:n]]

    def arm_values(self) -> np.ndarray:
        """Mean calibrated difficulty per arm."""
        a = self.pool.num_categories
        cat = self.pool.category
        return np.bincount(cat, weights=self.b, minlength=a) / np.maximum(np.bincount(cat, minlength=a), 1)

    def details(self) -> dict:
        return {"theta": self.theta}
