"""posterior: CurES (Zeng et al. 2025, "CurES: From Gradient Analysis to Efficient Curriculum Learning for
Reasoning LLMs").

Each item has a Beta(s + 1, f + 1) posterior over its pass rate (s successes = reward sum, f = samples - s):

    p_i     = (s_i + 1) / (N_i + 2)
    sigma_i = sqrt(p_i (1 - p_i))
    t_i     = (s_i + 1) / t_scale                          (per-item temperature, as in the CurES code)
    P(select i) ∝ exp(sigma_i / t_i)                       (prompts with the largest reward variance)
    n_i ∝ sigma_i,  n_min <= n_i <= n_max,  sum_i n_i = B   (rollout allocation, n in [4, 8] as in the code)

The CurES code (epic_sampler.py) uses t_i = (s_i + 1) / 0.01 — a temperature that grows with an item's
successes, so items already solved often are spread out; with t_scale = 0.01 the weights are nearly flat and
selection is close to uniform sampling without replacement: the method's gain comes mostly from allocation.
The paper's sigma for allocation is the standard deviation of the per-sample gradient norm (eq. 127),
computed from per-sample gradients of the policy; the controller never sees gradients, so sqrt(p(1-p)) — the
same quantity for a reward that is a Bernoulli variable with unit-norm gradients — stands in for it.

B is the batch's rollout budget: group_size x items selected. Selection draws n of k*n random candidates
without replacement (Gumbel top-k over log-weights); allocation is water-filling with clipping followed by
largest-remainder rounding, so the counts sum exactly to B whenever n*n_min <= B <= n*n_max. Late results
count like current ones (the posterior is a sum of counts).
"""
from __future__ import annotations

import numpy as np
from pydantic import Field, model_validator

from curriculum.params import ItemLevelParams
from curriculum.registry import register
from curriculum.strategy import Strategy


class PosteriorParams(ItemLevelParams):
    t_scale: float = Field(0.01, gt=0, description="per-item temperature t_i = (s_i + 1) / t_scale")
    n_min: int = Field(4, ge=1, description="fewest rollouts per selected item")
    n_max: int = Field(8, ge=1, description="most rollouts per selected item")

    @model_validator(mode="after")
    def _bounds(self) -> PosteriorParams:
        if self.n_min > self.n_max:
            raise ValueError("n_min must be <= n_max")
        return self


def allocate_budget(sigma: np.ndarray, budget: int, lo: int, hi: int) -> np.ndarray:
    """Integers n_i ∝ sigma_i within [lo, hi] summing to budget (clamped to the feasible range)."""
    n = len(sigma)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    budget = int(np.clip(budget, n * lo, n * hi))
    w = np.asarray(sigma, dtype=np.float64) + 1e-9
    x = np.zeros(n)
    fixed = np.zeros(n, dtype=bool)
    for _ in range(n + 1):  # water-filling: clip, fix, redistribute the rest
        free = ~fixed
        x[free] = (budget - x[fixed].sum()) * w[free] / w[free].sum()
        over, under = free & (x > hi), free & (x < lo)
        if not (over.any() or under.any()):
            break
        # fix only the side that violates more, so the remaining mass stays feasible
        side = over if (x[over] - hi).sum() >= (lo - x[under]).sum() else under
        x[side] = np.where(over[side], hi, lo)
        fixed |= side
        if fixed.all():
            break
    out = np.clip(np.floor(x), lo, hi).astype(np.int64)
    frac = x - np.floor(x)
    # largest remainder first, among those with room; each item at most once while enough have room: the picks
    # of the one-at-a-time loop below, in one sort (the loop cost a numpy round trip per rollout handed out)
    short, room = budget - int(out.sum()), out < hi
    if 0 < short <= int(room.sum()):
        pick = np.flatnonzero(room)[np.argsort(-frac[room], kind="stable")[:short]]
        out[pick] += 1
        frac[pick] = -1
    extra, room = int(out.sum()) - budget, out > lo
    if 0 < extra <= int(room.sum()):
        pick = np.flatnonzero(room)[np.argsort(frac[room], kind="stable")[:extra]]
        out[pick] -= 1
        frac[pick] = 2
    while out.sum() < budget:
        room = out < hi
        k = int(np.argmax(np.where(room, frac, -np.inf)))
        out[k] += 1
        frac[k] = -1
    while out.sum() > budget:
        room = out > lo
        k = int(np.argmin(np.where(room, frac, np.inf)))
        out[k] -= 1
        frac[k] = 2
    return out


@register
class Posterior(Strategy):
    name = "posterior"
    description = "CurES: Beta posterior per item, sample ∝ exp(sigma/t), rollouts allocated ∝ sigma."
    Params = PosteriorParams

    def sigma(self, idx: np.ndarray) -> np.ndarray:
        p = (self.reward_sum[idx] + 1) / (self.n_samples[idx] + 2)
        return np.sqrt(np.clip(p * (1 - p), 0, None))

    def log_weights(self, idx: np.ndarray) -> np.ndarray:
        """log of the selection weight exp(sigma_i / t_i)."""
        return self.sigma(idx) * self.params.t_scale / (self.reward_sum[idx] + 1)

    def choose(self, n: int, candidates: np.ndarray) -> np.ndarray:
        logw = self.log_weights(candidates)
        keys = logw + self.rng.gumbel(size=len(candidates))
        return candidates[np.argsort(-keys, kind="stable")[:n]]

    def allocate(self, indices: np.ndarray) -> np.ndarray:
        return allocate_budget(self.sigma(indices), self.group_size * len(indices), self.params.n_min,
                               self.params.n_max)
