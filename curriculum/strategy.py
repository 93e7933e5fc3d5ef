"""The one interface every curriculum algorithm implements, and the bookkeeping they share.

A strategy turns observed rewards into the next selection:

    select(n, exclude) -> Selection(indices, num_samples, max_tokens)
    observe(EventBatch)
    state_dict() / load_state_dict()
    describe() -> {"arms": [...], "details": {...}}

Strategies are deterministic given their seed and the sequence of calls; the RNG state is part of the
snapshot. Two families share helpers here:

* arm-level strategies (sec, dump, progress) implement `arm_probs()`; the base draws per-arm counts and
  samples uniformly inside each arm without replacement (epoch-wise per arm);
* item-level strategies (filter, pcl, posterior) implement `choose(n, candidates)`, picking n of a set of
  candidate items; standalone they get random candidates from the whole pool, inside `compose` they get
  candidates from the arm that the arm-level strategy drew.
"""
from __future__ import annotations

from abc import ABC
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from curriculum.items import ItemPool, grow
from curriculum.events import EventBatch

RECENT = 0.02  # EMA rate for the "recent" per-arm pass rate and selection share (~50-event horizon)


class TokenBudget(BaseModel):
    """Train-Long-Think-Short token budget: B(t) = max(B_min, B0 * gamma^floor(t / T)).

    t counts the strategy's observe() calls (one per reported batch)."""

    model_config = ConfigDict(extra="forbid")
    b0: int = Field(1024, ge=1, description="initial budget B0 in tokens")
    b_min: int = Field(128, ge=1, description="floor B_min in tokens")
    gamma: float = Field(0.5, gt=0, le=1, description="decay factor per period")
    period: int = Field(100, ge=1, description="steps T between decays")

    @model_validator(mode="after")
    def _order(self) -> "TokenBudget":
        if self.b_min > self.b0:
            raise ValueError("token_budget.b_min must be <= token_budget.b0")
        return self

    def at(self, t: int) -> int:
        return int(max(self.b_min, self.b0 * self.gamma ** (t // self.period)))


class StrategyParams(BaseModel):
    """Base of every strategy's hyperparameters; unknown fields are rejected."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
    token_budget: TokenBudget | None = Field(None, description="optional token-budget schedule (Train-Long-Think-Short)")


@dataclass
class Selection:
    indices: np.ndarray  # int64, unique
    num_samples: np.ndarray  # int64, rollouts to spend per item
    max_tokens: int | None = None

    def __len__(self) -> int:
        return len(self.indices)


class ArmSampler:
    """Uniform sampling without replacement inside groups of items (epoch-wise per group).

    Each group keeps a shuffled order and a cursor; a group is reshuffled when its cursor wraps.
    Drawing k items costs O(k) amortised, independent of the pool size."""

    def __init__(self) -> None:
        self.order = np.zeros(0, dtype=np.int64)
        self.offsets = np.zeros(1, dtype=np.int64)
        self.cursor = np.zeros(0, dtype=np.int64)
        self.n_items = 0

    def sync(self, groups: list[np.ndarray], n_items: int, rng: np.random.Generator) -> None:
        if n_items == self.n_items and len(groups) == len(self.cursor):
            return
        self.order = np.concatenate([rng.permutation(g) for g in groups]) if groups else np.zeros(0, np.int64)
        self.offsets = np.concatenate([[0], np.cumsum([len(g) for g in groups])]).astype(np.int64)
        self.cursor = np.zeros(len(groups), dtype=np.int64)
        self.n_items = n_items

    def draw(self, group: int, k: int, rng: np.random.Generator, exclude: np.ndarray | None,
             taken: np.ndarray | None = None) -> np.ndarray:
        lo, hi = int(self.offsets[group]), int(self.offsets[group + 1])
        size = hi - lo
        out: list[np.ndarray] = []
        got, scanned = 0, 0
        while got < k and scanned < size:
            c = int(self.cursor[group])
            if c >= size:
                rng.shuffle(self.order[lo:hi])
                c = 0
            chunk = self.order[lo + c: lo + min(size, c + 2 * (k - got) + 8)]
            ok = np.ones(len(chunk), dtype=bool)
            if exclude is not None:
                ok &= ~exclude[chunk]
            if taken is not None:
                ok &= ~taken[chunk]
            pos = np.flatnonzero(ok)
            if len(pos) > k - got:  # stop the cursor right after the last item used
                pos = pos[: k - got]
                used = int(pos[-1]) + 1
            else:
                used = len(chunk)
            out.append(chunk[pos])
            if taken is not None:
                taken[chunk[pos]] = True
            got += len(pos)
            self.cursor[group] = c + used
            scanned += used
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)

    def state_dict(self) -> dict:
        return {"order": self.order.copy(), "offsets": self.offsets.copy(), "cursor": self.cursor.copy(),
                "n_items": self.n_items}

    def load_state_dict(self, d: dict) -> None:
        self.order, self.offsets, self.cursor = d["order"].copy(), d["offsets"].copy(), d["cursor"].copy()
        self.n_items = int(d["n_items"])


class Strategy(ABC):
    """Base class: common statistics, pool growth, state (de)serialisation, `describe()`.

    Subclasses declare their per-item and per-arm state in `item_state` / `arm_state`
    (name -> (dtype, fill)); those arrays are always exactly pool- / arm-sized, grow with the pool and go into the snapshot automatically,
    as do the attributes named in `state_attrs`."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    Params: ClassVar[type[StrategyParams]] = StrategyParams
    item_state: ClassVar[dict[str, tuple[Any, Any]]] = {}
    arm_state: ClassVar[dict[str, tuple[Any, Any]]] = {}
    state_attrs: ClassVar[tuple[str, ...]] = ()
    #: True for strategies that draw arms explicitly (their `weight` is the draw probability)
    draws_arms: ClassVar[bool] = False

    _COMMON_ITEM = {"n_groups": (np.int64, 0), "n_samples": (np.int64, 0), "reward_sum": (np.float64, 0.0),
                    "last_mean": (np.float64, np.nan)}
    _COMMON_ARM = {"arm_events": (np.int64, 0), "arm_pass": (np.float64, np.nan), "arm_share": (np.float64, 0.0)}

    def __init__(self, pool: ItemPool, params: dict | StrategyParams | None = None, *, seed: int = 0,
                 group_size: int = 8) -> None:
        self.pool = pool
        self.params = params if isinstance(params, self.Params) else self.Params.model_validate(params or {})
        self.seed = seed
        self.group_size = group_size
        self.rng = np.random.default_rng(seed)
        self.steps = 0  # observe() calls
        self.selections = 0  # select() calls
        self.events = 0
        self.degenerate = 0
        self.sampler = ArmSampler()
        self._n_items = self._n_arms = 0
        for name, (dt, fill) in {**self._COMMON_ITEM, **self.item_state}.items():
            setattr(self, name, np.full(0, fill, dtype=dt))
        for name, (dt, fill) in {**self._COMMON_ARM, **self.arm_state}.items():
            setattr(self, name, np.full(0, fill, dtype=dt))
        self.setup()
        self.sync()

    # -- hooks for subclasses ------------------------------------------------------------------
    def setup(self) -> None:
        """Initialise state that is not a per-item / per-arm array."""

    def on_grow(self, old_items: int, old_arms: int) -> None:
        """Called after the pool grew (new items/arms already have their fill values)."""

    def update(self, batch: EventBatch) -> None:
        """The strategy's own update rule (common statistics are already updated)."""

    def arm_probs(self) -> np.ndarray:
        """Arm-level strategies: probability of drawing each arm next."""
        raise NotImplementedError

    def arm_values(self) -> np.ndarray | None:
        """The strategy's own score per arm (Q, UCB, LP ...), or None."""
        return None

    def choose(self, n: int, candidates: np.ndarray) -> np.ndarray:
        """Item-level strategies: pick n of `candidates` (unique, eligible item indices)."""
        raise NotImplementedError

    def candidate_count(self, n: int) -> int:
        """How many random candidates `choose` should see for a selection of n."""
        return 4 * n

    def allocate(self, indices: np.ndarray) -> np.ndarray:
        """Rollouts per selected item; default: the experiment's group size for each."""
        return np.full(len(indices), self.group_size, dtype=np.int64)

    def details(self) -> dict:
        return {}

    # -- the interface -------------------------------------------------------------------------
    def select(self, n: int, exclude: np.ndarray | None = None) -> Selection:
        """Up to n unique items, none of them marked in `exclude` (a bool mask over the pool)."""
        self.sync()
        if exclude is not None and len(exclude) < self.pool.size:
            exclude = grow(exclude.astype(bool), self.pool.size, False)[: self.pool.size]
        idx = self._select(max(0, int(n)), exclude) if n > 0 and self.pool.size else np.zeros(0, np.int64)
        idx = np.asarray(idx, dtype=np.int64)
        self.selections += 1
        if len(idx):
            share = np.bincount(self.pool.category[idx], minlength=self.pool.num_categories) / len(idx)
            self.arm_share += RECENT * 5 * (share - self.arm_share)
        budget = self.params.token_budget
        return Selection(idx, self.allocate(idx), budget.at(self.steps) if budget else None)

    def _select(self, n: int, exclude: np.ndarray | None) -> np.ndarray:
        if self.draws_arms:
            return self.draw_by_arms(n, self.arm_probs(), exclude)
        cand = self.random_candidates(self.candidate_count(n), exclude)
        return self.choose(min(n, len(cand)), cand)

    def observe(self, batch: EventBatch) -> None:
        self.sync()
        if len(batch) == 0:
            return
        it = batch.item
        np.add.at(self.n_groups, it, 1)
        np.add.at(self.n_samples, it, batch.count)
        np.add.at(self.reward_sum, it, batch.reward_sum)
        self.last_mean[it] = batch.mean
        cat = self.pool.category[it]
        k = np.bincount(cat, minlength=self.pool.num_categories)
        s = np.bincount(cat, weights=batch.mean, minlength=self.pool.num_categories)
        seen = k > 0
        first = seen & np.isnan(self.arm_pass)
        self.arm_pass[first] = s[first] / k[first]
        rate = 1 - (1 - RECENT) ** k[seen]
        self.arm_pass[seen] += rate * (s[seen] / k[seen] - self.arm_pass[seen])
        self.arm_events += k
        self.events += len(batch)
        self.degenerate += int(batch.degenerate.sum())
        self.update(batch)
        self.steps += 1

    def check_params(self, updates: dict) -> StrategyParams:
        """Validate a partial update of the hyperparameters without applying it (raises ValueError)."""
        return self.Params.model_validate({**self.params.model_dump(), **updates})

    def set_params(self, updates: dict) -> StrategyParams:
        """Validate and apply a partial update of the hyperparameters (all-or-nothing)."""
        self.params = self.check_params(updates)
        return self.params

    # -- shared sampling helpers ---------------------------------------------------------------
    def sync(self) -> None:
        """Grow per-item / per-arm arrays to the pool's size."""
        n, a = self.pool.size, self.pool.num_categories
        if n == self._n_items and a == self._n_arms:
            return
        for name, (dt, fill) in {**self._COMMON_ITEM, **self.item_state}.items():
            setattr(self, name, grow(getattr(self, name), n, fill))
        for name, (dt, fill) in {**self._COMMON_ARM, **self.arm_state}.items():
            setattr(self, name, grow(getattr(self, name), a, fill))
        old = (self._n_items, self._n_arms)
        self._n_items, self._n_arms = n, a
        self.on_grow(*old)

    def pass_rate(self) -> np.ndarray:
        """Observed mean reward of every item (nan where unseen)."""
        ns = self.n_samples
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(ns > 0, self.reward_sum / ns, np.nan)

    def random_candidates(self, m: int, exclude: np.ndarray | None, members: np.ndarray | None = None) -> np.ndarray:
        """Up to m unique random eligible items (from `members`, default the whole pool), O(m) when the
        pool is large; exhaustive when m covers most of it."""
        size = self.pool.size if members is None else len(members)
        if size == 0 or m <= 0:
            return np.zeros(0, dtype=np.int64)
        if 2 * m >= size:
            allidx = np.arange(size, dtype=np.int64) if members is None else members
            if exclude is not None:
                allidx = allidx[~exclude[allidx]]
            return self.rng.permutation(allidx)[:m]
        for _ in range(4):
            pos = np.unique(self.rng.integers(0, size, size=int(1.3 * m) + 8))
            cand = pos if members is None else members[pos]
            if exclude is not None:
                cand = cand[~exclude[cand]]
            if len(cand) >= m or _ == 3:
                return self.rng.permutation(cand)[:m]
        return cand  # pragma: no cover

    def draw_by_arms(self, n: int, probs: np.ndarray, exclude: np.ndarray | None) -> np.ndarray:
        """n items: per-arm counts from `probs`, uniform (epoch-wise) inside each arm. Arms that run out
        of eligible items hand their remainder to the others."""
        members = self.pool.arm_members()
        self.sampler.sync(members, self.pool.size, self.rng)
        probs = np.asarray(probs, dtype=np.float64).copy()
        sizes = np.array([len(m) for m in members])
        probs[sizes == 0] = 0
        taken = np.zeros(self.pool.size, dtype=bool)
        out: list[np.ndarray] = []
        need = n
        for _ in range(len(members) + 1):
            if need <= 0 or probs.sum() <= 0:
                break
            counts = self.rng.multinomial(need, probs / probs.sum())
            for a in np.flatnonzero(counts):
                got = self.sampler.draw(a, int(counts[a]), self.rng, exclude, taken)
                out.append(got)
                need -= len(got)
                if len(got) < counts[a]:
                    probs[a] = 0  # exhausted for this call
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)

    # -- state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        d: dict[str, Any] = {
            "name": self.name, "params": self.params.model_dump(mode="json"), "seed": self.seed,
            "group_size": self.group_size, "rng": self.rng.bit_generator.state, "steps": self.steps,
            "selections": self.selections, "events": self.events, "degenerate": self.degenerate,
            "n_items": self._n_items, "n_arms": self._n_arms, "sampler": self.sampler.state_dict(),
        }
        for name in {**self._COMMON_ITEM, **self.item_state}:
            d[name] = getattr(self, name).copy()
        for name in {**self._COMMON_ARM, **self.arm_state}:
            d[name] = getattr(self, name).copy()
        for name in self.state_attrs:
            d[name] = _copy(getattr(self, name))
        return d

    def load_state_dict(self, d: dict) -> None:
        self.params = self.Params.model_validate(d["params"])
        self.seed, self.group_size = d["seed"], d["group_size"]
        self.rng = np.random.default_rng()
        self.rng.bit_generator.state = d["rng"]
        self.steps, self.selections, self.events, self.degenerate = d["steps"], d["selections"], d["events"], d["degenerate"]
        self.sampler.load_state_dict(d["sampler"])
        for name in {**self._COMMON_ITEM, **self.item_state, **self._COMMON_ARM, **self.arm_state}:
            setattr(self, name, np.array(d[name]))
        for name in self.state_attrs:
            setattr(self, name, _copy(d[name]))
        self._n_items, self._n_arms = d["n_items"], d["n_arms"]
        self.sync()

    # -- reading -------------------------------------------------------------------------------
    def arm_weights(self) -> np.ndarray:
        if self.draws_arms:
            return np.asarray(self.arm_probs(), dtype=np.float64)
        share = self.arm_share
        total = share.sum()
        if total <= 0:
            sizes = self.pool.arm_sizes().astype(np.float64)
            return sizes / max(sizes.sum(), 1)
        return share / total

    def describe(self) -> dict:
        self.sync()
        w = self.arm_weights()
        v = self.arm_values()
        sizes = self.pool.arm_sizes()
        arms = []
        for a, cat in enumerate(self.pool.categories):
            pr = self.arm_pass[a]
            arms.append({
                "name": cat, "weight": float(w[a]) if len(w) > a else 0.0,
                "value": None if v is None or not np.isfinite(v[a]) else float(v[a]),
                "pass_rate": None if np.isnan(pr) else float(pr),
                "items": int(sizes[a]), "events": int(self.arm_events[a]),
            })
        return {"strategy": {"name": self.name, "params": self.params.model_dump(mode="json")},
                "events": self.events, "steps": self.steps,
                "degenerate_ratio": self.degenerate / self.events if self.events else 0.0,
                "arms": arms, "details": self.details()}


def _copy(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return x.copy()
    if isinstance(x, dict):
        return {k: _copy(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_copy(v) for v in x]
    return x


def softmax(x: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(x, dtype=np.float64) / temperature
    z = z - np.max(z) if len(z) else z
    e = np.exp(z)
    return e / e.sum() if len(e) else e
