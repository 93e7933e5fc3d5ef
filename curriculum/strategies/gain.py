"""gain: GAIN-RL, "Angles Don't Lie: Unlocking Training-Efficient RL Through the Model's Own Signals" (Wang et al.,
arXiv 2506.02281, NeurIPS 2025).

The policy's own token states say which prompts it will learn from first: the angle concentration of a prompt's
last-layer token states (the mean cosine between them; the `hf` backend reports it as the feature `angle`,
workers/backends/angles.py) is high for prompts whose gradients are large early in training. Items are sorted
by concentration, highest first; with pos_i = rank_i / N (N = pool size) a step samples without replacement

    p_i ∝ exp(-1/2 ((pos_i - mu) / sigma)^2)                     (Gumbel-top-k, eligible items only)

and at the end of each step (policy version) the center moves by that step's accuracy and mean angle,

    delta = n tanh(alpha (acc - beta)) + n tanh(alpha angle)      mu <- mu + clip(delta, adj_min, adj_max)

acc = mean group pass rate of the step (rewards on [0, 1]), angle = mean reported concentration of its items.
The paper's constants (sigma = 1000, n = 500, adj_max = 1000 on a ~7.5k-prompt GSM8K pool, alpha = 2, beta = 0.5,
adj_min = 0) are given here as fractions of the pool, so the rule scales with it. With adj_min = 0 the center only
moves forward: the curriculum sweeps from high-concentration to low-concentration prompts.

Choices where the paper (or its code) differs or says nothing, all made explicit:

* The paper ranks every prompt once, before training, with the initial model; here an item's concentration is
  the latest one a worker reported for it (so the order follows the policy), or the item's `metadata["angle"]`
  (an offline prefill pass, the paper's ranking) until one is reported.
* Items with no concentration yet are **unmeasured**: they lead the order (in a fixed pseudo-random order, by
  item index and seed), so the sweep measures them first, as the paper's offline pass measures every prompt
  before training. When no item has a concentration at all (e.g. a `vllm` worker, which cannot read hidden
  states), sampling is uniform and `details.fallback` says why.
* A step without any reported angle moves the center by the accuracy term only (angle term 0).
* `acc_halving` reproduces the trl code's quirk (Ā/2, a correct answer scoring 2); off by default. The paper's
  verl variant, with 0/1 rewards, halves a 0/1 accuracy too, so its accuracy term is never positive.
"""
from __future__ import annotations

import numpy as np
from pydantic import Field, model_validator

from curriculum.events import EventBatch
from curriculum.params import StrategyParams
from curriculum.registry import register
from curriculum.strategy import Strategy

_MIX = np.uint64(0x9E3779B97F4A7C15)


class GainParams(StrategyParams):
    sigma: float = Field(0.134, gt=0, description="width of the Gaussian over the sorted order, as a share of the "
                         "pool (paper: 1000 of ~7.5k)")
    step: float = Field(0.067, ge=0, description="n: scale of the center's move per step, as a share of the pool "
                        "(paper: 500)")
    alpha: float = Field(2.0, ge=0, description="slope of both tanh terms (paper: 2)")
    beta: float = Field(0.5, ge=0, le=1, description="accuracy at which the accuracy term is zero (paper: 0.5)")
    adj_min: float = Field(0.0, description="smallest move of the center per step, share of the pool (paper: 0)")
    adj_max: float = Field(0.134, description="largest move of the center per step, share of the pool (paper: 1000)")
    mu0: float = Field(0.0, description="initial center, as a position in [0, 1] of the sorted order (paper: 0)")
    acc_halving: bool = Field(False, description="use accuracy / 2 as the trl code does (a correct answer scores 2)")
    feature: str = Field("angle", min_length=1, max_length=32, description="the reported feature to sort by")

    @model_validator(mode="after")
    def _clip(self) -> GainParams:
        if self.adj_min > self.adj_max:
            raise ValueError("adj_min must be <= adj_max")
        return self


@register
class Gain(Strategy):
    name = "gain"
    description = "GAIN-RL: Gaussian over items sorted by the policy's angle concentration; center moved by accuracy."
    Params = GainParams
    item_state = {"angle": (np.float64, np.nan)}
    state_attrs = ("mu", "last")

    def setup(self) -> None:
        self.mu = float(self.params.mu0)
        self.last = {"accuracy": None, "angle": None, "delta": 0.0}  # the last step's terms (describe)
        self._pos_key: tuple | None = None
        self._pos = np.zeros(0)

    def on_grow(self, old_items: int, old_arms: int) -> None:
        meta = self.pool._metadata  # the offline ranking pass, if one wrote `metadata["angle"]`
        for i in range(old_items, self.pool.size):
            m = meta[i]
            x = m.get("angle") if isinstance(m, dict) else None
            if isinstance(x, (int, float)) and not isinstance(x, bool) and np.isfinite(x):
                self.angle[i] = float(x)

    def update(self, batch: EventBatch) -> None:
        got = batch.feature(self.params.feature)
        angle = None
        if got is not None and got[1].any():
            vals, present = got
            self.angle[batch.item[present]] = vals[present, 0]  # canonical order: a repeated item keeps its last
            angle = float(vals[present, 0].mean())
        acc = float(batch.mean.mean()) if len(batch) else 0.0
        delta = self.clipped_delta(acc, angle)
        self.mu += delta
        self.last = {"accuracy": acc, "angle": angle, "delta": delta}

    def raw_delta(self, acc: float, angle: float | None) -> float:
        """n tanh(alpha (acc - beta)) + n tanh(alpha angle), unclipped (angle None: that term is 0)."""
        p = self.params
        a = acc / 2 if p.acc_halving else acc
        return float(p.step * (np.tanh(p.alpha * (a - p.beta)) + (0.0 if angle is None else np.tanh(p.alpha * angle))))

    def clipped_delta(self, acc: float, angle: float | None) -> float:
        p = self.params
        return float(np.clip(self.raw_delta(acc, angle), p.adj_min, p.adj_max))

    def positions(self) -> np.ndarray:
        """pos_i = rank_i / N: unmeasured items first (fixed pseudo-random order), then by concentration,
        highest first (ties by index). Cached until the concentrations or the pool change."""
        a = self.angle
        measured = ~np.isnan(a)
        key = (len(a), int(measured.sum()), float(np.nansum(a)), self.seed)
        if key != self._pos_key:
            idx = np.arange(len(a), dtype=np.uint64)
            scramble = (idx + np.uint64(self.seed & 0xFFFFFFFF)) * _MIX >> np.uint64(11)
            order = np.lexsort((scramble, np.where(measured, -a, 0.0), measured))
            pos = np.empty(len(a))
            pos[order] = np.arange(len(a)) / max(len(a), 1)
            self._pos, self._pos_key = pos, key
        return self._pos

    def log_weights(self, idx: np.ndarray) -> np.ndarray:
        if not np.isfinite(self.angle).any():  # nothing measured: uniform (see the module docstring)
            return np.zeros(len(idx))
        return -0.5 * ((self.positions()[idx] - self.mu) / self.params.sigma) ** 2

    def choose(self, n: int, candidates: np.ndarray) -> np.ndarray:
        """n of the candidates without replacement, P ∝ exp(log_weights): the Gumbel-top-k trick."""
        if n <= 0 or not len(candidates):
            return candidates[:0]
        g = self.log_weights(candidates) + self.rng.gumbel(size=len(candidates))
        top = np.argpartition(-g, n - 1)[:n] if n < len(candidates) else np.arange(len(candidates))
        return candidates[top[np.argsort(-g[top], kind="stable")]]

    def _select(self, n: int, exclude: np.ndarray | None) -> np.ndarray:
        eligible = np.arange(self.pool.size) if exclude is None else np.flatnonzero(~exclude)
        return self.choose(min(n, len(eligible)), eligible)

    def details(self) -> dict:
        measured = int(np.isfinite(self.angle).sum())
        out = {"mu": self.mu, "measured": measured, "last_accuracy": self.last["accuracy"],
               "last_angle": self.last["angle"], "last_delta": self.last["delta"]}
        if measured == 0:
            out["fallback"] = f"uniform: no item has a reported {self.params.feature!r} feature"
        return out
