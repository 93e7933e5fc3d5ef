"""filter: balanced online difficulty filtering (Bae et al. 2025, "Online Difficulty Filtering for
Reasoning Oriented Reinforcement Learning").

GRPO learns nothing from a group whose rollouts all agree, and most from prompts the policy solves about half
the time. Each item keeps an estimate of the current policy's pass rate, an EMA over its group means

    p_i <- p_i + beta (mean_g - p_i)          (the first group sets p_i; beta = 0.5 favours recent groups)

and a selection takes, from k*n random eligible candidates, in this order of tiers:

    0. unseen items (they must be measured once);
    1. items whose estimate lies in the band [low, high] (default [0.2, 0.8]), however old it is;
    2. items outside the band whose estimate is older than `max_age` steps (policy versions): the policy has
       moved since, so an item written off as too hard (or too easy) deserves another try — closest to the
       band first;
    3. the rest, closest to 0.5 first.

An old in-band estimate stays in tier 1: on a pool much larger than max_age x batch nearly every revisit is
older than max_age, and treating those as unknowns would stop the band from filtering at all. The
trainer-side half of the same idea — dropping degenerate groups (DAPO's dynamic sampling) — lives in the
trainer. Late results update an item's estimate like current ones (the EMA weighs groups, not versions).
"""
from __future__ import annotations

import numpy as np
from pydantic import Field, model_validator

from curriculum.events import EventBatch
from curriculum.params import ItemLevelParams
from curriculum.registry import register
from curriculum.sampling import first_per_group
from curriculum.strategy import Strategy


class FilterParams(ItemLevelParams):
    low: float = Field(0.2, ge=0, le=1, description="lower edge of the pass-rate band")
    high: float = Field(0.8, ge=0, le=1, description="upper edge of the pass-rate band")
    beta: float = Field(0.5, gt=0, le=1, description="EMA rate of the per-item pass-rate estimate")
    max_age: int = Field(50, ge=1, description="steps after which an item's estimate is stale and it is re-explored")

    @model_validator(mode="after")
    def _band(self) -> FilterParams:
        if self.low > self.high:
            raise ValueError("low must be <= high")
        return self


@register
class Filter(Strategy):
    name = "filter"
    description = "Balanced online difficulty filtering: unseen first, then pass rate in [low, high]."
    Params = FilterParams
    item_state = {"p_est": (np.float64, np.nan), "seen_step": (np.int64, -1)}

    def update(self, batch: EventBatch) -> None:
        it, m, beta = batch.item, batch.mean, self.params.beta
        self.seen_step[it] = self.steps
        if batch.unique_items:
            p = self.p_est[it]
            self.p_est[it] = np.where(np.isnan(p), m, p + beta * (m - p))
            return
        for i, mj in zip(it.tolist(), m.tolist()):  # an item repeated in one batch: apply in order
            p = self.p_est[i]
            self.p_est[i] = mj if np.isnan(p) else p + beta * (mj - p)

    def choose(self, n: int, candidates: np.ndarray) -> np.ndarray:
        tier, dist = self._rank(candidates)
        order = np.lexsort((dist, tier))  # stable: ties keep the random candidate order
        return candidates[order[:n]]

    def choose_in_arms(self, counts: np.ndarray, candidates: np.ndarray, arm: np.ndarray) -> np.ndarray:
        # choose() inside every arm at once: the same order (tier, then distance, then candidate order) per arm
        tier, dist = self._rank(candidates)
        # np.lexsort((dist, tier, arm)) as two stable sorts (by distance, then by arm and tier as one small key):
        # the same order, and the second is a radix sort
        if len(counts) < 1 << 12:
            order = np.argsort(dist, kind="stable")
            order = order[np.argsort((arm * 4 + tier).astype(np.int16)[order], kind="stable")]
        else:
            order = np.lexsort((dist, tier, arm))
        return candidates[first_per_group(order, arm, counts)]

    def _rank(self, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(tier, distance) of each candidate: see the module docstring; lower is preferred."""
        p = self.p_est[candidates]
        lo, hi = self.params.low, self.params.high
        unseen = np.isnan(p)
        in_band = (p >= lo) & (p <= hi)  # (nan compares False)
        # np.where chains: the values np.select gives, at a fraction of its per-call cost
        tier = np.where(unseen, 0, np.where(in_band, 1, 3))
        out = np.flatnonzero(tier == 3)  # the age matters only for these: read it only for them (10^6-item arrays)
        if len(out):
            tier[out[self.steps - self.seen_step[candidates[out]] > self.params.max_age]] = 2
        q = np.where(unseen, 0.0, p)
        dist = np.where(tier == 2, np.maximum(lo - q, q - hi), np.where(tier == 3, np.abs(q - 0.5), 0.0))
        return tier, dist

    def details(self) -> dict:
        p = self.p_est
        seen = ~np.isnan(p)
        band = seen & (p >= self.params.low) & (p <= self.params.high)
        return {"items_seen": int(seen.sum()), "items_in_band": int(band.sum())}
