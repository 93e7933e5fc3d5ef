"""Reward events: one item's group result, and the columnar batch that strategies observe.

The controller derives group statistics itself rather than trusting the reporter:

    mean_g = (1/G) sum_i r_i            std_g = sqrt((1/G) sum_i (r_i - mean_g)^2)   (population std)
    A_i    = (r_i - mean_g) / (std_g + eps)                                          (GRPO advantage)
    mean|A| = (1/G) sum_i |A_i|         degenerate = all r_i equal (zero advantage, zero gradient)

For binary rewards with pass rate p, mean|A| = 2 sqrt(p(1-p)) (up to eps): largest at p = 0.5.

`features` are what the policy itself says about the prompt (e.g. the `hf` backend's angle concentration and
prompt embedding, docs/architecture.md "Features"): per item, a few named numbers or short vectors. The batch keeps
each as an (n, d) matrix, a row of nan where a report did not send it.
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

ADV_EPS = 1e-6
MAX_FEATURES = 8  # names per event
MAX_FEATURE_DIM = 4096  # numbers per feature (a 4096-wide model's pooled hidden state fits)
FEATURE_NAME = r"^[a-z][a-z0-9_]{0,31}$"
FeatureName = Annotated[str, StringConstraints(pattern=FEATURE_NAME)]
Feature = float | Annotated[list[float], Field(min_length=1, max_length=MAX_FEATURE_DIM)]


def check_features(v: Any) -> Any:
    """Clear messages for bad features (the typed validation after this one would answer with a union's noise)."""
    if not isinstance(v, dict):
        return v
    if len(v) > MAX_FEATURES:
        raise ValueError(f"at most {MAX_FEATURES} features per result, got {len(v)}")
    for name, x in v.items():
        if not isinstance(name, str) or not re.match(FEATURE_NAME, name):
            raise ValueError(f"feature name {name!r} must match {FEATURE_NAME}")
        xs = x if isinstance(x, list) else [x]
        if isinstance(x, list) and not 1 <= len(x) <= MAX_FEATURE_DIM:
            raise ValueError(f"features[{name!r}] has {len(x)} numbers; 1 to {MAX_FEATURE_DIM} are allowed")
        for k, e in enumerate(xs):
            where = f"features[{name!r}]" + (f"[{k}]" if isinstance(x, list) else "")
            if isinstance(e, bool) or not isinstance(e, (int, float)):
                raise ValueError(f"{where} is {e!r}: a feature is a number or a list of numbers")
            if isinstance(e, int) and abs(e) > 2**1023:  # math.isfinite would raise OverflowError
                raise ValueError(f"{where} is out of the range of a float: features must be finite numbers")
            if not math.isfinite(e):
                raise ValueError(f"{where} is {e}: features must be finite numbers")
    return v


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
    features: dict[FeatureName, Feature] = Field(
        default_factory=dict, max_length=MAX_FEATURES,
        description="optional: what the policy itself says about this prompt, by name: a finite number or a list "
        f"of 1 to {MAX_FEATURE_DIM} finite numbers; at most {MAX_FEATURES} names matching {FEATURE_NAME}. The `hf` "
        "backend sends `angle` (the angle concentration of the prompt's last-layer token states, GAIN-RL; read by "
        "the `gain` strategy) and `embedding` (their mean, read by `pcl`). A name keeps one length within a report.")

    @field_validator("rewards")
    @classmethod
    def _finite(cls, v: list[float]) -> list[float]:
        for k, r in enumerate(v):
            if not math.isfinite(r):
                raise ValueError(f"rewards[{k}] is {r}: rewards must be finite numbers")
        return v

    @field_validator("features", mode="before")
    @classmethod
    def _check_features(cls, v: Any) -> Any:
        return check_features(v)

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
    features: dict[str, np.ndarray] = field(default_factory=dict)  # name -> float64 (n, d), nan rows where absent

    def __post_init__(self) -> None:
        self.item = np.asarray(self.item, dtype=np.int64)
        self.rewards = np.atleast_2d(np.asarray(self.rewards, dtype=np.float64))
        if self.rewards.shape[0] != len(self.item):
            self.rewards = self.rewards.reshape(len(self.item), -1)
        self.policy_version = np.asarray(self.policy_version, dtype=np.int64).reshape(len(self.item))
        self.features = {k: np.asarray(v, dtype=np.float64).reshape(len(self.item), -1)
                         for k, v in self.features.items()}
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

    def feature(self, name: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(values (n, d), present (n,)) of a reported feature, or None when no row sent it; a row is present when
        all of its numbers are (a row padded to a wider width by `concat` is not)."""
        f = self.features.get(name)
        if f is None:
            return None
        return f, ~np.isnan(f).any(axis=1)

    @property
    def advantages(self) -> np.ndarray:
        """(n, G_max) GRPO advantages, nan-padded."""
        return (self.rewards - self.mean[:, None]) / (self.std[:, None] + ADV_EPS)

    @classmethod
    def from_arrays(cls, item: Sequence[int], rewards: Sequence[Sequence[float]] | np.ndarray,
                    policy_version: Sequence[int] | int = 0, signals: dict | None = None,
                    features: dict | None = None) -> EventBatch:
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
                   {k: np.asarray(v, dtype=np.float64) for k, v in (signals or {}).items()},
                   {k: np.asarray(v, dtype=np.float64).reshape(n, -1) for k, v in (features or {}).items()})

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
        return cls.from_arrays(indices, mat, versions, signals, feature_matrices(events))

    @classmethod
    def concat(cls, batches: Sequence[EventBatch]) -> EventBatch:
        """One batch of all rows (rewards nan-padded to the widest group; absent signals are nan)."""
        width = max(b.rewards.shape[1] for b in batches)
        rewards = np.vstack([np.pad(b.rewards, ((0, 0), (0, width - b.rewards.shape[1])), constant_values=np.nan)
                             for b in batches])
        names = sorted({k for b in batches for k in b.signals})
        signals = {k: np.concatenate([b.signals.get(k, np.full(len(b), np.nan)) for b in batches]) for k in names}
        feats = {}
        for k in sorted({k for b in batches for k in b.features}):
            d = max(b.features[k].shape[1] for b in batches if k in b.features)
            feats[k] = np.vstack([np.pad(b.features[k], ((0, 0), (0, d - b.features[k].shape[1])),
                                         constant_values=np.nan) if k in b.features else np.full((len(b), d), np.nan)
                                  for b in batches])
        return cls(np.concatenate([b.item for b in batches]), rewards,
                   np.concatenate([b.policy_version for b in batches]), signals, feats)

    def canonical(self) -> EventBatch:
        """The same rows in an order that depends only on their content (item, version, rewards, signals), so
        a step's evidence folds identically however it was split into reports and in whatever order."""
        keys = [*(c for k in sorted(self.features, reverse=True) for c in self.features[k].T[::-1]),
                *(self.signals[k] for k in sorted(self.signals, reverse=True)), *self.rewards.T[::-1],
                self.policy_version, self.item]
        return self.subset(np.lexsort(keys))

    def subset(self, mask: np.ndarray) -> EventBatch:
        return EventBatch(self.item[mask], self.rewards[mask], self.policy_version[mask],
                          {k: v[mask] for k, v in self.signals.items()}, {k: v[mask] for k, v in self.features.items()})

    def to_dict(self) -> dict:
        """Plain-list form for logs (JSON)."""
        return {
            "item": self.item.tolist(),
            "rewards": [r[~np.isnan(r)].tolist() for r in self.rewards],
            "policy_version": self.policy_version.tolist(),
            "signals": {k: [None if np.isnan(x) else float(x) for x in v] for k, v in self.signals.items()},
            **({"features": {k: [None if np.isnan(r).all() else [None if np.isnan(x) else float(x) for x in r]
                                 for r in v]
                             for k, v in self.features.items()}} if self.features else {}),
        }

    @classmethod
    def from_dict(cls, d: dict) -> EventBatch:
        sig = {k: [np.nan if x is None else x for x in v] for k, v in d.get("signals", {}).items()}
        feats = {}
        for k, rows in d.get("features", {}).items():
            width = max((len(r) for r in rows if r is not None), default=1)
            feats[k] = np.array([[np.nan] * width if r is None else [np.nan if x is None else x for x in r]
                                 for r in rows], dtype=np.float64).reshape(len(rows), width)
        return cls.from_arrays(d["item"], d["rewards"], d["policy_version"], sig, feats)


def feature_matrices(events: Sequence[RewardEvent]) -> dict[str, np.ndarray]:
    """name -> (n, d) matrix of the events' features (a scalar is d = 1; nan rows where an event sent none)."""
    out = {}
    for k in sorted({k for e in events for k in e.features}):
        rows = [e.features.get(k) for e in events]
        d = max(len(r) if isinstance(r, list) else 1 for r in rows if r is not None)
        m = np.full((len(events), d), np.nan)
        for i, r in enumerate(rows):
            if r is not None:
                r = r if isinstance(r, list) else [r]
                m[i, : len(r)] = r
        out[k] = m
    return out
