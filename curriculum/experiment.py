"""One experiment as a deterministic state machine: pool + strategy + leases + idempotency.

Every change is a *record* (a plain JSON-able dict) applied by `apply()`:

    {"op": "add_items", "items": [...]}
    {"op": "lease",     "n": 64, "worker": "w", "lease_seconds": 300, "now": t, "batch_id": "b-000001",
                        "lease_key": "run-7/step-12"}   (lease_key optional)
    {"op": "report",    "results": [...RewardEvent dicts...], "batch_id": "b-..", "now": t}
    {"op": "set_params", "params": {...}}

The service appends each record to a durable log *before* applying it; folding the same records through
a fresh `ExperimentState` (or a snapshot plus the log tail) reproduces the state exactly, including the
strategy's RNG, which leases are live, which lease keys map to which batch and which rollout ids were already
applied. Time enters only through
the recorded `now`, so lease expiry replays identically too. Validation happens before logging
(`validate_report`), so a logged record always applies cleanly.
"""
from __future__ import annotations

import heapq
from collections.abc import Iterable
from typing import Annotated, Any

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from curriculum.cost import CostLedger
from curriculum.dedup import SeenIds
from curriculum.events import EventBatch, RewardEvent
from curriculum.generated_pool import GeneratedPool
from curriculum.items import Item, ItemPool, grow
from curriculum.registry import make_strategy
from curriculum.strategy import Strategy


def _reward_range(v: tuple[float, float]) -> tuple[float, float]:
    lo, hi = v
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ValueError(f"reward_range must be two finite numbers [low, high] with low < high, got {list(v)}")
    return v


#: [low, high] of the rewards workers report; strategies see them mapped onto [0, 1]
RewardRange = Annotated[tuple[float, float], AfterValidator(_reward_range)]


class ExperimentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    strategy: str
    params: dict[str, Any] = Field(default_factory=dict)
    group_size: int = 8
    seed: int = 0
    reward_range: RewardRange = (0.0, 1.0)
    #: a generator source spec (curriculum.sources.generated): the pool is made on demand, bounded per arm
    generator: dict[str, Any] | None = None

    @classmethod
    def from_stored(cls, stored: dict[str, Any]) -> ExperimentConfig:
        """The experiment's part of a stored config: the store adds its own fields (created_at), and a config
        written before a field existed lacks it (the default holds)."""
        return cls(**{k: stored[k] for k in cls.model_fields if k in stored})


class InvalidReport(ValueError):
    """A report that cannot be applied; `code` is the API's error code, the message names the entry."""

    code = "validation_error"


class UnknownItems(InvalidReport):
    code = "unknown_item"

    def __init__(self, positions: list[tuple[int, str]]) -> None:
        self.positions = positions
        k, i = positions[0]
        super().__init__(f"results[{k}].item_id: unknown item id {i!r}"
                         + (f" (and {len(positions) - 1} more)" if len(positions) > 1 else ""))


class ExperimentState:
    def __init__(self, config: ExperimentConfig, items: Iterable[Item | dict] | ItemPool = (),
                 generated: GeneratedPool | None = None) -> None:
        self.config = config
        self.pool = items if isinstance(items, ItemPool) else ItemPool(items)
        self.generated = generated
        if generated is None and config.generator is not None:
            self.generated = GeneratedPool(config.generator)
            self.generated.fill(self.pool)  # the first pool: per_arm items of every arm
        self.strategy: Strategy = make_strategy(config.strategy, self.pool, config.params, seed=config.seed,
                                                group_size=config.group_size)
        self.leased_until = np.zeros(self.pool.size, dtype=np.float64)  # 0 = not leased
        self._expiry: list[tuple[float, int]] = []  # heap of (until, item)
        # idempotent leases: lease_key -> (until, the batch answered, as item indices); a key lives as long as its
        # lease. Indices, not item dicts: snapshots stay small, and pool items never change once added.
        self.keyed: dict[str, tuple[float, dict]] = {}
        self.seen = SeenIds()  # rollout ids of the last few policy versions (curriculum.dedup)
        self.batches = 0
        self.policy_version = 0
        self.duplicates = 0
        self.leases_expired = 0
        self.applied = 0  # records applied
        self.cost = CostLedger()  # rollouts and tokens spent, and wasted on degenerate groups (curriculum.cost)

    # -- records -------------------------------------------------------------------------------
    def apply(self, rec: dict) -> dict:
        op = rec["op"]
        self.applied += 1
        if op == "add_items":
            before = self.pool.size
            added, existing = self.pool.add(rec["items"])
            if self.generated is not None:
                self.generated.note_added(self.pool, before)
            self.leased_until = grow(self.leased_until, self.pool.size, 0.0)[: self.pool.size]
            return {"added": added, "existing": existing}
        if op == "lease":
            return self._lease(rec)
        if op == "report":
            return self._report(rec)
        if op == "set_params":
            self.strategy.set_params(rec["params"])
            self.config.params = self.strategy.params.model_dump(mode="json", exclude_unset=False)
            return {}
        raise ValueError(f"unknown record op {op!r}")

    def _expire(self, now: float) -> None:
        while self._expiry and self._expiry[0][0] <= now:
            until, i = heapq.heappop(self._expiry)
            if self.leased_until[i] == until:  # still the live lease
                self.leased_until[i] = 0.0
                self.leases_expired += 1
        if self.keyed:
            for key in [k for k, (until, _) in self.keyed.items() if until <= now]:
                del self.keyed[key]

    def keyed_batch(self, key: str | None, now: float) -> dict | None:
        """The batch already leased under `key`, while its lease lives (read-only: nothing to log)."""
        hit = self.keyed.get(key) if key is not None else None
        return self._batch(hit[1]) if hit is not None and hit[0] > now else None

    def leased_mask(self) -> np.ndarray:
        return self.leased_until > 0

    def _exclude(self) -> np.ndarray:
        """What a lease may not hand out: leased items, and retired generated ones."""
        if self.generated is None:
            return self.leased_mask()
        return self.leased_mask() | self.generated.exclude(self.pool.size)

    def _lease(self, rec: dict) -> dict:
        now = float(rec["now"])
        self._expire(now)
        key = rec.get("lease_key")
        if key is not None and key in self.keyed:  # the owner answers hits without logging; replay stays exact
            return self._batch(self.keyed[key][1])
        if self.generated is not None and self.generated.fill(self.pool):  # arms that ran low get new items
            self.leased_until = grow(self.leased_until, self.pool.size, 0.0)[: self.pool.size]
        before = self.pool.size
        sel = self.strategy.select(int(rec["n"]), self._exclude())
        if self.pool.size > before:  # a strategy added items (egsr's guided variants): kept like added ones
            if self.generated is not None:
                self.generated.note_added(self.pool, before)
            self.leased_until = grow(self.leased_until, self.pool.size, 0.0)[: self.pool.size]
        until = now + float(rec["lease_seconds"])
        self.leased_until[sel.indices] = until
        for i in sel.indices.tolist():
            heapq.heappush(self._expiry, (until, i))
        self.batches += 1
        batch = {"batch_id": rec["batch_id"], "policy_version": self.policy_version, "idx": sel.indices.tolist(),
                 "num_samples": [int(n) for n in sel.num_samples], "max_tokens": sel.max_tokens}
        if key is not None:
            self.keyed[key] = (until, batch)
        return self._batch(batch)

    def _batch(self, b: dict) -> dict:
        """The API's batch shape from leased indices."""
        pool, items = self.pool, []
        cats, answers, meta = pool.categories, pool._answers, pool._metadata
        for i, n in zip(b["idx"], b["num_samples"]):
            d = {"id": pool.ids[i], "prompt": pool.prompts[i], "category": cats[pool.category[i]],
                 "answer": answers[i], "num_samples": n}
            if meta[i]:
                d["metadata"] = meta[i]
            if b["max_tokens"] is not None:
                d["max_tokens"] = b["max_tokens"]
            items.append(d)
        return {"batch_id": b["batch_id"], "policy_version": b["policy_version"], "items": items}

    def validate_report(self, results: list[RewardEvent]) -> None:
        """Raise UnknownItems naming every unknown id, or InvalidReport naming the first reward outside
        `reward_range` or the first feature whose length differs from an earlier result's; nothing is changed."""
        bad = [(k, r.item_id) for k, r in enumerate(results) if self.pool.index_of(r.item_id) is None]
        if bad:
            raise UnknownItems(bad)
        lo, hi = self.config.reward_range
        for k, r in enumerate(results):
            for j, x in enumerate(r.rewards):
                if not lo <= x <= hi:
                    raise InvalidReport(f"results[{k}].rewards[{j}]: {x} is outside the experiment's reward_range "
                                        f"[{lo:g}, {hi:g}]")
        width: dict[str, tuple[int, int]] = {}  # feature name -> (its length, the first result that sent it)
        for k, r in enumerate(results):
            for name, f in r.features.items():
                d = len(f) if isinstance(f, list) else 1
                first = width.setdefault(name, (d, k))
                if first[0] != d:
                    raise InvalidReport(f"results[{k}].features.{name}: {d} numbers, but results[{first[1]}] sent "
                                        f"{first[0]}; a feature keeps one length within a report")

    def _report(self, rec: dict) -> dict:
        now = float(rec.get("now", 0.0))
        self._expire(now)
        fresh: list[RewardEvent] = []
        dup = 0
        batch_ids: dict[str, int] = {}
        for r in rec["results"]:
            ev = r if isinstance(r, RewardEvent) else RewardEvent.model_validate(r)
            if ev.rollout_id is not None:
                v = self.policy_version if ev.policy_version is None else ev.policy_version
                if ev.rollout_id in batch_ids or self.seen.is_duplicate(ev.rollout_id, v):
                    dup += 1
                    continue
                batch_ids[ev.rollout_id] = v
            fresh.append(ev)
        self.seen.add(batch_ids.items())
        self.duplicates += dup
        if fresh:
            idx = self.pool.indices_of([e.item_id for e in fresh])
            self.leased_until[idx] = 0.0  # a result ends the lease, whichever batch it came from
            # strategies see rewards on [0, 1] whatever the experiment's scale; no version = the current one
            batch = EventBatch.from_events(fresh, idx, default_version=self.policy_version,
                                           reward_range=self.config.reward_range)
            self.strategy.observe(batch)
            self.cost.add(batch)
            if self.generated is not None:
                self.generated.use(idx)  # retires items that reached max_uses
            self.policy_version = max(self.policy_version, int(batch.policy_version.max()))
            self.seen.advance(self.policy_version)
        return {"accepted": len(fresh), "duplicates": dup}

    # -- snapshot --------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        # a generated pool is stored as its generator spec and counters: restore regenerates the items
        pool = {"generated": self.generated.state_dict()} if self.generated else {"pool": self.pool.state_dict()}
        return {
            "config": self.config.model_dump(mode="json"),
            **pool,
            "strategy": self.strategy.state_dict(),
            "leased_until": self.leased_until.copy(),
            "seen": self.seen.state_dict(),
            "keyed": {k: [until, batch] for k, (until, batch) in self.keyed.items()},
            "counters": {"batches": self.batches, "policy_version": self.policy_version,
                         "duplicates": self.duplicates, "leases_expired": self.leases_expired,
                         "applied": self.applied},
            "cost": self.cost.state_dict(),
        }

    @classmethod
    def from_state_dict(cls, d: dict) -> ExperimentState:
        # "items" (one dict per item): snapshots written before the pool was stored in columns
        generated = None
        if "generated" in d:
            generated, pool = GeneratedPool.rebuild(d["generated"])
        else:
            pool = ItemPool.from_state_dict(d["pool"]) if "pool" in d else ItemPool(d["items"])
        st = cls(ExperimentConfig.model_validate(d["config"]), pool, generated)
        st.strategy.load_state_dict(d["strategy"])
        st.leased_until = np.array(d["leased_until"], dtype=np.float64)
        st._expiry = [(float(u), int(i)) for i, u in enumerate(st.leased_until) if u > 0]
        heapq.heapify(st._expiry)
        st.keyed = {k: (float(until), batch) for k, (until, batch) in d.get("keyed", {}).items()}
        c = d["counters"]
        st.seen = SeenIds.from_state_dict(d["seen"], c["policy_version"])
        st.batches, st.policy_version, st.duplicates = c["batches"], c["policy_version"], c["duplicates"]
        st.leases_expired, st.applied = c["leases_expired"], c["applied"]
        st.cost.load_state_dict(d.get("cost", {}))  # snapshots written before cost accounting: zeros
        return st

    # -- reading ---------------------------------------------------------------------------------
    def summary(self) -> dict:
        return {"name": self.config.name,
                "strategy": {"name": self.config.strategy, "params": self.strategy.params.model_dump(mode="json")},
                "group_size": self.config.group_size, "seed": self.config.seed, "num_items": self.pool.size,
                "reward_range": list(self.config.reward_range),
                "categories": list(self.pool.categories), "policy_version": self.policy_version,
                "events": self.strategy.events}

    def describe(self) -> dict:
        d = self.strategy.describe()
        d["policy_version"] = self.policy_version
        # each arm's configuration (None unless generated; the field is in the REST shape either way)
        configs = self.generated.arm_configs() if self.generated is not None else {}
        for arm in d["arms"]:
            arm["config"] = configs.get(arm["name"])
        if self.generated is not None:  # the bounded pool's counters
            d["details"] = {**d["details"], "generator": self.generated.describe()}
        d["details"] = {**d["details"], "duplicates": self.duplicates, "leases_expired": self.leases_expired,
                        "leased": int(self.leased_mask().sum()), "batches": self.batches,
                        "lease_keys": len(self.keyed), "cost": self.cost.metrics()}
        return d


def replay(config: ExperimentConfig, records: Iterable[dict], items: Iterable[Item | dict] = ()) -> ExperimentState:
    """Fold a record log through a fresh experiment (audit, recovery, after-the-fact debugging)."""
    st = ExperimentState(config, items)
    for rec in records:
        st.apply(rec)
    return st
