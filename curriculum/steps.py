"""The step ledger: a curriculum step is a policy version, however many reports it arrives in.

Every clock — TD updates, moving averages, schedules, token budgets, staleness — counts policy versions, never
observe() calls: with K rollout workers one training step arrives as K reports, in any order, and the strategy
must end up in the same state as if the step had arrived in one call (API.md, "A curriculum step"). The ledger
guarantees it for every strategy: the open step's evidence is kept (in a canonical order), and the state is
always "the step's start, with the step's whole evidence folded in at once". That makes one call and K calls
(any order) bit-for-bit equal.

**Lazy fold.** observe() only files a report with the open step (O(report), no statistics, no copy of any
per-item array). The fold runs when the state is next read — select(), describe(), state_dict(), any state
attribute (`Settled`) — or when the step closes: K reports that arrive between two reads cost one fold of the
step. A report that arrives after the step was already folded (a read came in between) rewinds the state the
step changed to its value at the step's start and folds the step's whole evidence again; the cost is
O(step) per read, never O(pool).

The first result of a newer version closes the step. Late results (a version older than the open step) join
the open step: they are evidence about a policy at most a few versions old, and dropping them would waste
rollouts already paid for. A version that brings more than `MAX_STEP_GROUPS` groups (a client that never sets
policy_version) is split into steps of that many groups, so cost stays bounded.

What a step changes, and so what the ledger saves at its start: the per-arm arrays (but those select()
changes), the strategy's `step_attrs`, the counters, and the per-item arrays at the step's items only (O(step),
never O(pool)). Sub-strategies (`step_parts()`, e.g. compose's two parts) follow the owner's steps; reading
their state settles the owner's (their `_root`).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from curriculum.events import EventBatch
from curriculum.items import grow

MAX_STEP_GROUPS = 16384  # a version with more groups than this is split into several steps (see above)


def copy_state(x: Any) -> Any:
    """Deep copy of numpy arrays inside dicts and lists (other values are immutable here)."""
    if isinstance(x, np.ndarray):
        return x.copy()
    if isinstance(x, dict):
        return {k: copy_state(v) for k, v in x.items()}
    if isinstance(x, list):
        return [copy_state(v) for v in x]
    return x


class Settled:
    """A state attribute of a strategy: reading it first folds the reports still waiting (the lazy fold), so
    whoever reads sees every report observed so far. Writing is plain."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return self
        root = obj._root or obj
        if root._pending:
            root._settle()
        try:
            return obj.__dict__[self.name]
        except KeyError:
            raise AttributeError(self.name) from None

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__[self.name] = value


class StepLedger:
    """observe() and the per-policy-version bookkeeping: open step, pending reports, checkpoint, rewind, fold
    (mixed into Strategy, which supplies the array names, the pool and `_fold`)."""

    pool: Any
    version: int
    steps: int
    events: int
    degenerate: int
    _pending: list[EventBatch] = []  # class default (never appended to): nothing waits before _init_ledger
    _root: StepLedger | None = None  # the strategy whose steps these are (compose / gated parts); None: self

    def _init_ledger(self) -> None:
        self.steps = 0  # curriculum steps begun (policy versions seen; the open one included): the clock
        self.version = -1  # policy version of the open step (-1: none yet)
        self._pending = []  # reports of the open step not folded yet
        self._step_groups = 0  # groups of the open step, folded or pending
        self._step: EventBatch | None = None  # the open step's folded evidence, canonical order
        self._start: dict[str, Any] = {}  # what the open step changed, as it was at the step's start
        self._touched = np.zeros(0, dtype=np.int64)  # items the open step's folded evidence touches

    def step_parts(self) -> list[StepLedger]:
        """Sub-strategies whose steps are this one's (their folds run inside this one's)."""
        return []

    def _adopt(self, part: StepLedger) -> None:
        """Make `part` (and its own parts) follow this strategy's steps: reading them settles the root."""
        part._root = self._root or self
        for p in part.step_parts():
            part._adopt(p)

    def observe(self, batch: EventBatch) -> None:
        """File reported groups with their step. Versions newer than the open step close it (in version
        order); older ones join the open step (the late rule); see the module docstring."""
        self.sync()
        if len(batch) == 0:
            return
        it = batch.item
        if int(it.view(np.uint64).max()) >= self.pool.size:  # one pass: a negative index is huge as unsigned
            raise IndexError(f"item index out of range for a pool of {self.pool.size} items")
        pv = batch.policy_version
        hi = int(pv.max())
        if hi <= self.version:  # the common case with many workers: all of it belongs to the open step
            self._add_to_step(batch)
            return
        lo = int(pv.min())
        late = pv <= self.version
        if late.any():
            self._add_to_step(batch.subset(late))
        for v in ([hi] if lo == hi else np.unique(pv[~late]).tolist()):
            self._close_step()
            self.version = int(v)
            self._add_to_step(batch if lo == hi else batch.subset(pv == v))

    def _close_step(self) -> None:
        self._settle()
        self._step, self._start, self._touched = None, {}, np.zeros(0, dtype=np.int64)
        self._step_groups = 0
        for p in self.step_parts():
            p._close_step()

    def _add_to_step(self, b: EventBatch) -> None:
        room = MAX_STEP_GROUPS - self._step_groups
        if len(b) > room:  # split, in report order, into steps of MAX_STEP_GROUPS
            if room > 0:
                self._add_to_step(b.subset(np.arange(len(b)) < room))
            self._close_step()
            self._add_to_step(b.subset(np.arange(len(b)) >= room))
            return
        if self._step_groups == 0:
            self._begin_step()
        self._pending.append(b)
        self._step_groups += len(b)

    def _begin_step(self) -> None:
        """A step starts: count it (here and in the parts, whose clocks are this one's)."""
        self.steps += 1
        for p in self.step_parts():
            p._begin_step()

    def _settle(self) -> None:
        """Fold the reports waiting: the step's first fold saves its start; a later one rewinds to it first."""
        pending = self._pending
        if not pending:
            return
        self._pending = []
        folded = self.__dict__.get("_step")
        new = pending[0] if len(pending) == 1 else EventBatch.concat(pending)
        step = (new if folded is None else EventBatch.concat([folded, new])).canonical()
        if folded is None:
            self._checkpoint()
            self._remember(step.item if step.unique_items else np.unique(step.item))  # canonical: sorted by item
        else:
            self._rewind()
            self._remember(np.setdiff1d(new.item, self._touched))
        self._step = step
        self._fold(step)

    def _checkpoint(self) -> None:
        """The step's first fold: remember everything it may change except per-item values (see _remember)."""
        d = self.__dict__  # (inside the fold nothing waits: plain reads, not the Settled descriptors)
        self._start = {"arm": {n: d[n].copy() for n in self._arm_names()},
                       "attr": {n: copy_state(d[n]) for n in self._step_attr_names()},
                       "events": d["events"], "degenerate": d["degenerate"], "items": {}}
        for p in self.step_parts():
            p._checkpoint()

    def _remember(self, items: np.ndarray) -> None:
        """Per-item values of items the step touches for the first time (still their step-start values);
        `_touched` lists the items (sorted) in the same order as the saved rows. `items` is sorted, unique."""
        saved = self._start["items"]
        d = self.__dict__
        if len(self._touched) == 0:
            for n in self._item_names():
                saved[n] = d[n][items]
            self._touched = items
        else:
            touched = np.concatenate([self._touched, items])
            order = np.argsort(touched, kind="stable")  # kept sorted: the state must not depend on report order
            for n in self._item_names():
                saved[n] = np.concatenate([saved[n], d[n][items]])[order]
            self._touched = touched[order]
        for p in self.step_parts():
            p._remember(items)

    def _rewind(self) -> None:
        """Put back what the open step changed, so its evidence can be folded again as a whole."""
        st = self._start
        fills = self._arm_fills()
        for n, v in st["arm"].items():
            setattr(self, n, grow(v.copy(), self.pool.num_categories, fills[n]))
        for n, v in st["attr"].items():
            setattr(self, n, copy_state(v))
        self.events, self.degenerate = st["events"], st["degenerate"]
        for n in self._item_names():
            getattr(self, n)[self._touched] = st["items"][n]
        for p in self.step_parts():
            p._rewind()

    def ledger_state(self) -> dict:
        (self._root or self)._settle()
        return {"version": self.version, "step": None if self._step is None else self._step.to_dict(),
                "start": copy_state(self._start), "touched": self._touched.copy()}

    def load_ledger_state(self, d: dict) -> None:
        self._pending = []
        self.version = d["version"]
        self._step = None if d["step"] is None else EventBatch.from_dict(d["step"])
        self._step_groups = 0 if self._step is None else len(self._step)
        self._start, self._touched = copy_state(d["start"]), np.array(d["touched"], dtype=np.int64)

    # supplied by Strategy
    def sync(self) -> None: ...
    def _fold(self, batch: EventBatch) -> None: ...
    def _item_names(self) -> list[str]: ...
    def _arm_names(self) -> list[str]: ...
    def _arm_fills(self) -> dict[str, Any]: ...
    def _step_attr_names(self) -> tuple[str, ...]: ...
