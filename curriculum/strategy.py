"""The one interface every curriculum algorithm implements:

    select(n, exclude) -> Selection(indices, num_samples, max_tokens)
    observe(EventBatch)
    state_dict() / load_state_dict()
    describe() -> {"arms": [...], "details": {...}}

Strategies are deterministic given their seed and the sequence of calls; the RNG state is part of the
snapshot. A step is a policy version: observe() and the step bookkeeping live in `curriculum.steps`; the
noise guard in `curriculum.noise_guard`; parameters in `curriculum.params`; sampling in `curriculum.sampling`.

Two families share the base:

* arm-level strategies (sec, dump, progress) implement `arm_probs()`; the base draws per-arm counts and
  samples uniformly inside each arm without replacement (epoch-wise per arm);
* item-level strategies (filter, pcl, posterior, irt) implement `choose(n, candidates)`, picking n of a set of
  candidate items (`params.candidates` per selected item); standalone they get random candidates from the
  whole pool, inside `compose` they get candidates from the arm that the arm-level strategy drew.
"""
from __future__ import annotations

from abc import ABC
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from curriculum import sampling
from curriculum.events import EventBatch
from curriculum.items import ItemPool, grow
from curriculum.noise_guard import GUARD_ARM, NoiseGuard, guard_params
from curriculum.params import StrategyParams
from curriculum.sampling import EMPTY, ArmSampler
from curriculum.steps import Settled, StepLedger, copy_state

RECENT = 0.02  # EMA rate for the "recent" per-arm pass rate and selection share (~50-event horizon)
_NAMES: dict[tuple[type, Any], tuple[str, ...]] = {}  # per class: the state arrays a step changes (see below)


@dataclass
class Selection:
    indices: np.ndarray  # int64, unique
    num_samples: np.ndarray  # int64, rollouts to spend per item
    max_tokens: int | None = None

    def __len__(self) -> int:
        return len(self.indices)


class Strategy(NoiseGuard, StepLedger, ABC):
    """Base class: common statistics, pool growth, state (de)serialisation, `describe()`.

    Subclasses declare their per-item and per-arm state in `item_state` / `arm_state`
    (name -> (dtype, fill)); those arrays are always exactly pool- / arm-sized, grow with the pool and go
    into the snapshot automatically, as do the attributes named in `state_attrs`."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    Params: ClassVar[type[StrategyParams]] = StrategyParams
    item_state: ClassVar[dict[str, tuple[Any, Any]]] = {}
    arm_state: ClassVar[dict[str, tuple[Any, Any]]] = {}
    state_attrs: ClassVar[tuple[str, ...]] = ()
    #: True for strategies that draw arms explicitly (their `weight` is the draw probability)
    draws_arms: ClassVar[bool] = False
    #: fold the noise guard's evidence; only strategies with a `noise_guard` param do (nothing reads the others'),
    #: and compose turns it off in its parts, whose guards nothing reads (compose draws arms through its own)
    fold_guard: bool = True

    _COMMON_ITEM = {"n_groups": (np.int64, 0), "n_samples": (np.int64, 0), "reward_sum": (np.float64, 0.0),
                    "last_mean": (np.float64, np.nan)}
    _COMMON_ARM = {"arm_events": (np.int64, 0), "arm_pass": (np.float64, np.nan), "arm_share": (np.float64, 0.0),
                   **GUARD_ARM}
    #: arm arrays that select() changes (not part of a step's rewind)
    _SELECT_ARM = ("arm_share",)
    #: `state_attrs` that update() changes (rewound at each report of the open step); default: all of them
    step_attrs: ClassVar[tuple[str, ...] | None] = None
    #: `item_state` arrays that select() changes (lease-time records): snapshotted, not part of a step's rewind
    select_items: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _settle_on_read(cls)

    def __init__(self, pool: ItemPool, params: dict | StrategyParams | None = None, *, seed: int = 0,
                 group_size: int = 8) -> None:
        self.pool = pool
        self.params = params if isinstance(params, self.Params) else self.Params.model_validate(params or {})
        self.seed = seed
        self.group_size = group_size
        self.rng = np.random.default_rng(seed)
        self.selections = 0  # select() calls
        self.events = 0
        self.degenerate = 0
        self._init_ledger()
        self.sampler = ArmSampler()
        self._n_items = self._n_arms = 0
        for name, (dt, fill) in {**self._item_spec(), **self._arm_spec()}.items():
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

    def choose_in_arms(self, counts: np.ndarray, candidates: np.ndarray, arm: np.ndarray) -> np.ndarray | None:
        """Item-level strategies, optional: choose() for several arms at once — counts[a] of the candidates of
        arm a (`candidates` grouped by `arm`, ascending, random order inside each). None (the default): not
        offered, and compose calls choose() arm by arm."""
        return None

    def candidate_count(self, n: int) -> int:
        """How many random candidates `choose` should see for a selection of n (`params.candidates` x n)."""
        return self.params.__dict__.get("candidates", 4) * n

    def allocate(self, indices: np.ndarray) -> np.ndarray:
        """Rollouts per selected item; default: the experiment's group size for each."""
        return np.full(len(indices), self.group_size, dtype=np.int64)

    def details(self) -> dict:
        return {}

    # -- the interface -------------------------------------------------------------------------
    def select(self, n: int, exclude: np.ndarray | None = None) -> Selection:
        """Up to n unique items, none of them marked in `exclude` (a bool mask over the pool)."""
        self.settle()
        self.sync()
        if exclude is not None and len(exclude) < self.pool.size:
            exclude = grow(exclude.astype(bool), self.pool.size, False)[: self.pool.size]
        idx = self._select(max(0, int(n)), exclude) if n > 0 and self.pool.size else EMPTY
        idx = np.asarray(idx, dtype=np.int64)
        self.selections += 1
        if len(idx):
            share = np.bincount(self.pool.category[idx], minlength=self.pool.num_categories) / len(idx)
            self.arm_share += RECENT * 5 * (share - self.arm_share)
        budget = self.params.token_budget
        return Selection(idx, self.allocate(idx), budget.at(self.steps) if budget else None)

    def _select(self, n: int, exclude: np.ndarray | None) -> np.ndarray:
        if self.draws_arms:
            return self.draw_by_arms(n, self.gated_arm_probs(), exclude)
        noisy = self.noise_gate()
        if noisy.any() and not noisy.all():
            return self.gated_choose(n, exclude, noisy)
        cand = self.random_candidates(self.candidate_count(n), exclude)  # all arms alike: nothing to prefer
        return self.choose(min(n, len(cand)), cand)

    def check_params(self, updates: dict) -> StrategyParams:
        """Validate a partial update of the hyperparameters without applying it (raises ValueError)."""
        return self.Params.model_validate({**self.params.model_dump(), **updates})

    def set_params(self, updates: dict) -> StrategyParams:
        """Validate and apply a partial update of the hyperparameters (all-or-nothing)."""
        self.params = self.check_params(updates)
        return self.params

    # -- the fold of one step's evidence ---------------------------------------------------------
    def _fold(self, batch: EventBatch, arms: tuple | None = None) -> None:
        """Common statistics, the noise guard, then the strategy's own update, for one step's evidence. `arms`:
        an owner's `fold_arms` for this very batch (compose's parts, a wrapper's inner strategy): the rows' arms
        and per-arm sums are the same, so they are not computed again (the same values, bit for bit)."""
        d = self.__dict__  # inside the fold nothing waits: plain reads, not the Settled descriptors
        it = batch.item
        guard = self._guard_folds()
        before = d["last_mean"][it] if guard else None  # (a fancy index: a copy)
        if batch.unique_items:  # one group per item: a plain indexed add is np.add.at's result, much cheaper
            d["n_groups"][it] += 1
            d["n_samples"][it] += batch.count
            d["reward_sum"][it] += batch.reward_sum
        else:
            np.add.at(d["n_groups"], it, 1)
            np.add.at(d["n_samples"], it, batch.count)
            np.add.at(d["reward_sum"], it, batch.reward_sum)
        mean = batch.mean
        d["last_mean"][it] = mean
        if arms is None:
            a = self.pool.num_categories
            cat = self.pool.category[it]
            # one bincount for the arm counts and mean sums (each in row order: the same sums as two bincounts)
            ks = np.bincount(np.concatenate([cat, cat + a]), np.concatenate([np.ones(len(cat)), mean]), 2 * a)
            s = ks[a:]
            kn = ks[:a].astype(np.int64)
            arms = (cat, kn, s)
        cat, kn, s = arms
        # the first group sets an arm's pass rate, then the EMA; arms without groups keep theirs (rate 0)
        pass_ = d["arm_pass"]
        avg = s / np.maximum(kn, 1.0)  # (arms without groups are not used: no 0/0 and no errstate to pay for)
        base = np.where(np.isnan(pass_) & (kn > 0), avg, pass_)
        d["arm_pass"] = np.where(kn > 0, base + (1 - (1 - RECENT) ** kn) * (avg - base), pass_)
        d["arm_events"] += kn
        self.fold_arms = arms  # for update() and parts: each row's arm, groups and sum of group means per arm
        d["events"] += len(batch)
        d["degenerate"] += int(np.count_nonzero(batch.degenerate))
        if guard:
            self._guard_fold(cat, batch, before)
            d["_gate"] = None  # the guard's evidence changed: noise_gate() computes again
        self.update(batch)

    def noise_gate(self) -> np.ndarray:
        """NoiseGuard.noise_gate(), computed once per fold of the guard's evidence (select() and describe() ask
        for it every time; it reads only the guard's arrays and parameters). Read-only: it is shared."""
        self.settle()
        key = (self.params, self.pool.num_categories)
        cached = self.__dict__.get("_gate")
        if cached is not None and cached[0] is key[0] and cached[1] == key[1]:
            return cached[2]
        gate = super().noise_gate()
        gate.flags.writeable = False
        self.__dict__["_gate"] = (*key, gate)
        return gate

    def _guard_folds(self) -> bool:
        """Whether the fold feeds the noise guard's arrays (else they never change, and no step saves them)."""
        return self.fold_guard and guard_params(self.params) is not None

    # what a step changes (StepLedger): per-arm arrays, `step_attrs`, counters, per-item arrays at its items
    def _item_spec(self) -> dict[str, tuple[Any, Any]]:
        return {**self._COMMON_ITEM, **self.item_state}

    def _arm_spec(self) -> dict[str, tuple[Any, Any]]:
        return {**self._COMMON_ARM, **self.arm_state}

    def _item_names(self) -> tuple[str, ...]:
        key = (type(self), "item")
        names = _NAMES.get(key)
        if names is None:
            names = _NAMES[key] = tuple(n for n in self._item_spec() if n not in self.select_items)
        return names

    def _arm_names(self) -> tuple[str, ...]:
        key = (type(self), self._guard_folds())
        names = _NAMES.get(key)
        if names is None:
            skip = (*self._SELECT_ARM, *(() if key[1] else GUARD_ARM))
            names = _NAMES[key] = tuple(n for n in self._arm_spec() if n not in skip)
        return names

    def _arm_fills(self) -> dict[str, Any]:
        return {n: fill for n, (_, fill) in self._arm_spec().items()}

    def _step_attr_names(self) -> tuple[str, ...]:
        return self.state_attrs if self.step_attrs is None else self.step_attrs

    # -- pool growth and sampling ----------------------------------------------------------------
    def sync(self) -> None:
        """Grow per-item / per-arm arrays to the pool's size."""
        n, a = self.pool.size, self.pool.num_categories
        if n == self._n_items and a == self._n_arms:
            return
        for name, (_dt, fill) in self._item_spec().items():
            setattr(self, name, grow(getattr(self, name), n, fill))
        for name, (_dt, fill) in self._arm_spec().items():
            setattr(self, name, grow(getattr(self, name), a, fill))
        old = (self._n_items, self._n_arms)
        self._n_items, self._n_arms = n, a
        self.on_grow(*old)
        for p in self.step_parts():
            p.sync()

    def pass_rate(self) -> np.ndarray:
        """Observed mean reward of every item (nan where unseen)."""
        ns = self.n_samples
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(ns > 0, self.reward_sum / ns, np.nan)

    def random_candidates(self, m: int, exclude: np.ndarray | None, members: np.ndarray | None = None,
                          taken: np.ndarray | None = None) -> np.ndarray:
        """Up to m unique random eligible items (from `members`, default the whole pool); see sampling."""
        return sampling.random_candidates(self.rng, m, self.pool.size, members, exclude, taken)

    def draw_by_arms(self, n: int, probs: np.ndarray, exclude: np.ndarray | None) -> np.ndarray:
        """n items: per-arm counts from `probs`, uniform (epoch-wise) inside each arm. Arms that run out
        of eligible items hand their remainder to the others."""
        members = self.pool.arm_members()
        self.sampler.sync(members, self.pool.size, self.rng)
        taken = self.scratch_mask()
        idx = sampling.draw_by_arms(self.rng, n, probs, self.pool.arm_sizes(),
                                    lambda a, c: self.sampler.draw(a, c, self.rng, exclude, taken),
                                    None if exclude is not None else self.sampler.draw_counts)
        taken[idx] = False  # the draws marked exactly the items drawn
        return idx

    def scratch_mask(self) -> np.ndarray:
        """A pool-sized bool mask, all False, kept between selections: allocating and zeroing 10^6 bytes per
        selection cost more than the selection itself. Whoever marks items in it clears them before returning."""
        m = self.__dict__.get("_scratch")
        if m is None or len(m) != self.pool.size:
            m = self.__dict__["_scratch"] = np.zeros(self.pool.size, dtype=bool)
        return m

    # -- state ---------------------------------------------------------------------------------
    def settle(self) -> None:
        """Fold the reports still waiting (of this strategy's steps' owner); see curriculum.steps."""
        (self._root or self)._settle()

    def state_dict(self) -> dict:
        self.settle()
        d: dict[str, Any] = {
            "name": self.name, "params": self.params.model_dump(mode="json"), "seed": self.seed,
            "group_size": self.group_size, "rng": self.rng.bit_generator.state, "steps": self.steps,
            "selections": self.selections, "events": self.events, "degenerate": self.degenerate,
            "n_items": self._n_items, "n_arms": self._n_arms, "sampler": self.sampler.state_dict(),
            **self.ledger_state(),
        }
        for name in {**self._item_spec(), **self._arm_spec()}:
            d[name] = getattr(self, name).copy()
        for name in self.state_attrs:
            d[name] = copy_state(getattr(self, name))
        return d

    def load_state_dict(self, d: dict) -> None:
        self.__dict__["_gate"] = None
        self.params = self.Params.model_validate(d["params"])
        self.seed, self.group_size = d["seed"], d["group_size"]
        self.rng = np.random.default_rng()
        self.rng.bit_generator.state = d["rng"]
        self.steps, self.selections = d["steps"], d["selections"]
        self.events, self.degenerate = d["events"], d["degenerate"]
        self.sampler.load_state_dict(d["sampler"])
        self.load_ledger_state(d)
        # state added to a strategy after a snapshot was written (e.g. calibration arrays) starts at its fill
        sizes = {**dict.fromkeys(self._item_spec(), d["n_items"]), **dict.fromkeys(self._arm_spec(), d["n_arms"])}
        for name, (dt, fill) in {**self._item_spec(), **self._arm_spec()}.items():
            setattr(self, name, np.array(d[name]) if name in d else np.full(sizes[name], fill, dtype=dt))
        for name in self.state_attrs:
            if name in d:
                setattr(self, name, copy_state(d[name]))
        self._n_items, self._n_arms = d["n_items"], d["n_arms"]
        self.sync()

    # -- reading -------------------------------------------------------------------------------
    def arm_weights(self) -> np.ndarray:
        if self.draws_arms:
            return self.gated_arm_probs()
        share = self.arm_share
        total = share.sum()
        if total <= 0:
            return self.pool.size_shares()
        return share / total

    def describe(self) -> dict:
        self.settle()
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
        noisy = self.noise_gate()
        details = {**self.details(), "noise_arms": [c for a, c in enumerate(self.pool.categories) if noisy[a]]}
        return {"strategy": {"name": self.name, "params": self.params.model_dump(mode="json")},
                "events": self.events, "steps": self.steps,
                "degenerate_ratio": self.degenerate / self.events if self.events else 0.0,
                "arms": arms, "details": details}


def _settle_on_read(cls: type[Strategy]) -> None:
    """Every state attribute of `cls` (per-item, per-arm, `state_attrs`, the counters, the open step) becomes a
    `Settled` descriptor: reading it folds the reports still waiting first."""
    names = [*cls._COMMON_ITEM, *cls.item_state, *cls._COMMON_ARM, *cls.arm_state, *cls.state_attrs,
             "events", "degenerate", "_step"]
    for n in names:
        have = getattr(cls, n, None)
        if isinstance(have, Settled):
            continue
        if have is not None:
            raise TypeError(f"{cls.__name__}: state attribute {n!r} clashes with a class attribute")
        setattr(cls, n, Settled(n))


_settle_on_read(Strategy)
