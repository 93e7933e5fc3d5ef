"""Reward events: one item's group result, and the columnar batch that strategies observe.

The controller derives group statistics itself rather than trusting the reporter:

    mean_g = (1/G) sum_i r_i            std_g = sqrt((1/G) sum_i (r_i - mean_g)^2)   (population std)
    A_i    = (r_i - mean_g) / (std_g + eps)                                          (GRPO advantage)
    mean|A| = (1/G) sum_i |A_i|         degenerate = all r_i equal (zero advantage, zero gradient)

For binary rewards with pass rate p, mean|A| = 2 sqrt(p(1-p)) (up to eps): largest at p = 0.5.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

ADV_EPS = 1e-6


class RewardEvent(BaseModel):
    """One item's group of per-sample rewards, as a rollout worker reports it."""

    model_config = ConfigDict(extra="forbid")

    item_id: str = Field(min_length=1, max_length=256)
    rewards: list[float] = Field(min_length=1, max_length=4096)
    policy_version: int | None = Field(default=None, ge=0, description="policy that generated the samples; "
                                       "omitted = the experiment's current version")
    rollout_id: str | None = Field(default=None, min_length=1, max_length=256)
    signals: dict[str, float] = Field(default_factory=dict, description="extra per-group signals, e.g. tokens, angle. "
                                      "`tokens`: completion tokens generated for the group, summed over its samples "
                                      "(>= 0); the experiment's cost accounting counts them (state details.cost)")

    @field_validator("rewards")
    @classmethod
    def _finite(cls, v: list[float]) -> list[float]:
        for k, r in enumerate(v):
            if not math.isfinite(r):
                raise ValueError(f"rewards[{k}] is {r}: rewards must be finite numbers")
        return v

    @field_validator("signals")
    @classmethod
    def _finite_signals(cls, v: dict[str, float]) -> dict[str, float]:
        for k, r in v.items():
            if not math.isfinite(r):
                raise ValueError(f"signals[{k!r}] is {r}: signals must be finite numbers")
            if k == "tokens" and r < 0:
                raise ValueError(f"signals['tokens'] is {r}: a token count cannot be negative")
        return v


@dataclass
class EventBatch:
    """A columnar batch of group results, with the group statistics derived once, vectorised.

    `rewards` is (n, G_max) padded with nan where groups have fewer samples.
    """

    item: np.ndarray  # int64 (n,) dense item indices
    rewards: np.ndarray  # float64 (n, G_max), nan-padded
    policy_version: np.ndarray  # int64 (n,)
    signals: dict[str, np.ndarray] = field(default_factory=dict)  # name -> float64 (n,), nan where absent

    def __post_init__(self) -> None:
        self.item = np.asarray(self.item, dtype=np.int64)
        self.rewards = np.atleast_2d(np.asarray(self.rewards, dtype=np.float64))
        if self.rewards.shape[0] != len(self.item):
            self.rewards = self.rewards.reshape(len(self.item), -1)
        self.policy_version = np.asarray(self.policy_version, dtype=np.int64).reshape(len(self.item))
        valid = ~np.isnan(self.rewards)
        self.count = valid.sum(axis=1)
        if len(self.item) and self.count.min() == 0:
            raise ValueError("every group needs at least one reward")
        r0 = np.where(valid, self.rewards, 0.0)
        self.reward_sum = r0.sum(axis=1)
        self.mean = self.reward_sum / np.maximum(self.count, 1)
        dev = np.where(valid, self.rewards - self.mean[:, None], 0.0)
        self.std = np.sqrt((dev**2).sum(axis=1) / np.maximum(self.count, 1))
        self.abs_adv = np.abs(dev).sum(axis=1) / np.maximum(self.count, 1) / (self.std + ADV_EPS)
        rmax = np.where(valid, self.rewards, -np.inf).max(axis=1)
        rmin = np.where(valid, self.rewards, np.inf).min(axis=1)
        self.degenerate = (rmax - rmin) <= 1e-12

    def __len__(self) -> int:
        return len(self.item)

    @property
    def advantages(self) -> np.ndarray:
        """(n, G_max) GRPO advantages, nan-padded."""
        return (self.rewards - self.mean[:, None]) / (self.std[:, None] + ADV_EPS)

    @classmethod
    def from_arrays(cls, item: Sequence[int], rewards: Sequence[Sequence[float]] | np.ndarray,
                    policy_version: Sequence[int] | int = 0, signals: dict | None = None) -> EventBatch:
        n = len(item)
        if isinstance(rewards, np.ndarray) and rewards.ndim == 2:
            mat = rewards.astype(np.float64)
        else:
            width = max((len(r) for r in rewards), default=1)
            mat = np.full((n, width), np.nan)
            for k, r in enumerate(rewards):
                mat[k, : len(r)] = r
        pv = np.full(n, policy_version, dtype=np.int64) if np.isscalar(policy_version) else policy_version
        return cls(np.asarray(item, dtype=np.int64), mat, np.asarray(pv, dtype=np.int64),
                   {k: np.asarray(v, dtype=np.float64) for k, v in (signals or {}).items()})

    @classmethod
    def from_events(cls, events: Iterable[RewardEvent], indices: Sequence[int], default_version: int = 0,
                    reward_range: tuple[float, float] = (0.0, 1.0)) -> EventBatch:
        """Columnar batch from validated events; `indices` are their dense item indices (pool.indices_of).
        Rewards are mapped from `reward_range` onto [0, 1]: r' = (r - low) / (high - low)."""
        events = list(events)
        names = sorted({k for e in events for k in e.signals})
        signals = {k: np.array([e.signals.get(k, np.nan) for e in events]) for k in names}
        lo, hi = reward_range
        width = max((len(e.rewards) for e in events), default=1)
        mat = np.full((len(events), width), np.nan)
        for k, e in enumerate(events):
            mat[k, : len(e.rewards)] = e.rewards
        if (lo, hi) != (0.0, 1.0):
            mat = (mat - lo) / (hi - lo)
        versions = [default_version if e.policy_version is None else e.policy_version for e in events]
        return cls.from_arrays(indices, mat, versions, signals)

    @classmethod
    def concat(cls, batches: Sequence[EventBatch]) -> EventBatch:
        """One batch of all rows (rewards nan-padded to the widest group; absent signals are nan)."""
        width = max(b.rewards.shape[1] for b in batches)
        rewards = np.vstack([np.pad(b.rewards, ((0, 0), (0, width - b.rewards.shape[1])), constant_values=np.nan)
                             for b in batches])
        names = sorted({k for b in batches for k in b.signals})
        signals = {k: np.concatenate([b.signals.get(k, np.full(len(b), np.nan)) for b in batches]) for k in names}
        return cls(np.concatenate([b.item for b in batches]), rewards,
                   np.concatenate([b.policy_version for b in batches]), signals)

    def canonical(self) -> EventBatch:
        """The same rows in an order that depends only on their content (item, version, rewards, signals), so
        a step's evidence folds identically however it was split into reports and in whatever order."""
        keys = [*(self.signals[k] for k in sorted(self.signals, reverse=True)), *self.rewards.T[::-1],
                self.policy_version, self.item]
        return self.subset(np.lexsort(keys))

    def subset(self, mask: np.ndarray) -> EventBatch:
        return EventBatch(self.item[mask], self.rewards[mask], self.policy_version[mask],
                          {k: v[mask] for k, v in self.signals.items()})

    def to_dict(self) -> dict:
        """Plain-list form for logs (JSON)."""
        return {
            "item": self.item.tolist(),
            "rewards": [r[~np.isnan(r)].tolist() for r in self.rewards],
            "policy_version": self.policy_version.tolist(),
            "signals": {k: [None if np.isnan(x) else float(x) for x in v] for k, v in self.signals.items()},
        }

    @classmethod
    def from_dict(cls, d: dict) -> EventBatch:
        sig = {k: [np.nan if x is None else x for x in v] for k, v in d.get("signals", {}).items()}
        return cls.from_arrays(d["item"], d["rewards"], d["policy_version"], sig)
