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


def _as(x: Any, dtype: Any) -> np.ndarray:
    """np.asarray(x, dtype), without its call when x already is such an array (the common case)."""
    return x if type(x) is np.ndarray and x.dtype == dtype else np.asarray(x, dtype=dtype)


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
        n = len(self.item)
        self.item = _as(self.item, np.int64)
        r = _as(self.rewards, np.float64)
        if r.ndim != 2 or r.shape[0] != n:
            r = np.atleast_2d(r)
            if r.shape[0] != n:
                r = r.reshape(n, -1)
        self.rewards = r
        pv = _as(self.policy_version, np.int64)
        self.policy_version = pv if pv.shape == (n,) else pv.reshape(n)
        if self.features:
            self.features = {k: np.asarray(v, dtype=np.float64).reshape(n, -1) for k, v in self.features.items()}
        # a finite total means no nan at all (the common case); fmin ignores nan: a row's minimum is nan only
        # when the row has no reward
        self._dense: bool | None = math.isfinite(r.sum()) if r.size else True  # no nan padding at all
        if n and (r.shape[1] == 0 or (not self._dense and np.isnan(np.fmin.reduce(r, axis=1)).any())):
            raise ValueError("every group needs at least one reward")
        self._stats: dict[str, np.ndarray] | None = None
        self._unique: bool | None = None

    # the group statistics are derived on first use, once per batch: a report that only joins a step's
    # evidence (curriculum.steps) never pays for them; the step's canonical batch derives them once
    def _derived(self) -> dict[str, np.ndarray]:
        if self._stats is None:
            r = self.rewards
            n, width = r.shape
            if self.dense:  # no padding: the same values as below, with fewer passes
                count = np.full(n, width, dtype=np.int64)
                reward_sum = r.sum(axis=1)
                mean = reward_sum / max(width, 1)
                dev = r - mean[:, None]
                rmax, rmin = r.max(axis=1), r.min(axis=1)
            else:
                valid = ~np.isnan(r)
                count = valid.sum(axis=1)
                reward_sum = np.where(valid, r, 0.0).sum(axis=1)
                mean = reward_sum / np.maximum(count, 1)
                dev = np.where(valid, r - mean[:, None], 0.0)
                rmax = np.where(valid, r, -np.inf).max(axis=1)
                rmin = np.where(valid, r, np.inf).min(axis=1)
            std = np.sqrt((dev**2).sum(axis=1) / np.maximum(count, 1))
            abs_adv = np.abs(dev).sum(axis=1) / np.maximum(count, 1) / (std + ADV_EPS)
            self._stats = {"count": count, "reward_sum": reward_sum, "mean": mean, "std": std, "abs_adv": abs_adv,
                           "degenerate": (rmax - rmin) <= 1e-12}
        return self._stats

    count = property(lambda self: self._derived()["count"], doc="valid rewards per group (int)")
    reward_sum = property(lambda self: self._derived()["reward_sum"], doc="sum of each group's rewards")
    mean = property(lambda self: self._derived()["mean"], doc="mean_g per group")
    std = property(lambda self: self._derived()["std"], doc="std_g per group (population)")
    abs_adv = property(lambda self: self._derived()["abs_adv"], doc="mean |A| per group")
    degenerate = property(lambda self: self._derived()["degenerate"], doc="all rewards of the group equal")

    @property
    def dense(self) -> bool:
        """No padding: every group has the full width of rewards (False may also mean a non-finite reward)."""
        if self._dense is None:
            self._dense = not np.isnan(self.rewards).any()
        return self._dense

    @property
    def unique_items(self) -> bool:
        """No item has two groups in this batch (the common case: a step's items are one selection)."""
        if self._unique is None:
            si = np.sort(self.item)
            self._unique = bool(len(si) < 2 or (si[1:] != si[:-1]).all())
        return self._unique

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
        rewards = np.concatenate([b.rewards if b.rewards.shape[1] == width else
                                  np.pad(b.rewards, ((0, 0), (0, width - b.rewards.shape[1])), constant_values=np.nan)
                                  for b in batches])
        names = sorted({k for b in batches for k in b.signals})
        feats = {}
        for k in sorted({k for b in batches for k in b.features}):
            d = max(b.features[k].shape[1] for b in batches if k in b.features)
            feats[k] = np.vstack([np.pad(b.features[k], ((0, 0), (0, d - b.features[k].shape[1])),
                                         constant_values=np.nan) if k in b.features else np.full((len(b), d), np.nan)
                                  for b in batches])
        out = object.__new__(cls)  # the rows were validated in their batches
        out.item = np.concatenate([b.item for b in batches])
        out.rewards = rewards
        out.policy_version = np.concatenate([b.policy_version for b in batches])
        out.signals = {k: np.concatenate([b.signals.get(k, np.full(len(b), np.nan)) for b in batches]) for k in names}
        out.features = feats
        out._stats, out._unique = None, None
        out._dense = all(b._dense and b.rewards.shape[1] == width for b in batches) or None
        return out

    def canonical(self) -> EventBatch:
        """The same rows in an order that depends only on their content (item, version, rewards, signals), so
        a step's evidence folds identically however it was split into reports and in whatever order."""
        order = np.argsort(self.item, kind="stable")
        si = self.item[order]
        if len(si) < 2 or (si[1:] != si[:-1]).all():  # items unique: the item alone is the whole sort key
            out = self._rows(order)
            out._unique = True
            return out
        keys = [*(c for k in sorted(self.features, reverse=True) for c in self.features[k].T[::-1]),
                *(self.signals[k] for k in sorted(self.signals, reverse=True)), *self.rewards.T[::-1],
                self.policy_version, self.item]
        out = self._rows(np.lexsort(keys))
        out._unique = False
        return out

    def subset(self, mask: np.ndarray) -> EventBatch:
        return self._rows(mask)

    def _rows(self, sel: np.ndarray) -> EventBatch:
        """The rows `sel` (mask or indices) of this batch, without validating them again; statistics already
        derived are carried over (they are per row)."""
        out = object.__new__(EventBatch)
        out.item, out.rewards, out.policy_version = self.item[sel], self.rewards[sel], self.policy_version[sel]
        out.signals = {k: v[sel] for k, v in self.signals.items()}
        out.features = {k: v[sel] for k, v in self.features.items()}
        out._stats = None if self._stats is None else {k: v[sel] for k, v in self._stats.items()}
        out._unique, out._dense = None, self._dense or None
        return out

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
