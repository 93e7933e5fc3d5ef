"""The owner's bounded pool per arm over a TaskGenerator (curriculum.sources.generated).

* **Bounded, on demand.** Each arm keeps at most `per_arm` live items. Before a lease, an arm whose live items
  dropped below `low_water` is refilled to `per_arm` with the generator's next items (k = made, made + 1, ...).
* **Retired after use.** An item is retired once `max_uses` groups of it were reported; retired items are never
  selected again. They stay in the catalogue (ids are append-only: a late report of a retired item still resolves
  and counts), so memory grows with the items ever generated, while the choice set stays bounded.
* **Snapshots hold the configuration, not the items.** The state is the generator spec, the per-arm counters,
  the order in which runs of items entered the pool, and the per-item use counts. `rebuild` regenerates the same
  items at the same dense indices, because item k of arm a is a pure function of (spec, a, k).

Items added by hand (`add_items`) to a generated experiment are kept verbatim in the run list: they are not the
generator's to remake.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from curriculum.items import Item, ItemPool, grow
from curriculum.sources import parse_generator
from curriculum.sources.generated import TaskGenerator

HAND = -1  # arm_of of an item added by hand


class GeneratedPool:
    def __init__(self, generator: TaskGenerator | dict[str, Any]) -> None:
        self.gen = generator if isinstance(generator, TaskGenerator) else parse_generator(generator)
        self.made = np.zeros(len(self.gen.arms()), dtype=np.int64)  # items generated per arm (the next k)
        self.runs: list[list] = []  # pool order: [arm, first k, count] or [HAND, [item dicts]]
        self.arm_of = np.zeros(0, dtype=np.int64)  # per pool item: its generator arm, HAND if added by hand
        self.uses = np.zeros(0, dtype=np.int64)  # reported groups per item
        self.retired = np.zeros(0, dtype=bool)

    def _grow(self, n: int, arm: int) -> None:
        old = len(self.arm_of)
        self.arm_of = grow(self.arm_of, n, arm)[:n]
        self.arm_of[old:] = arm
        self.uses = grow(self.uses, n, 0)[:n]
        self.retired = grow(self.retired, n, False)[:n]

    def live(self) -> np.ndarray:
        """Live (not retired) generated items per arm."""
        keep = (self.arm_of >= 0) & ~self.retired
        return np.bincount(self.arm_of[keep], minlength=len(self.made))

    # -- changes (each one happens while a logged record applies, so replay repeats it) ----------
    def fill(self, pool: ItemPool) -> int:
        """Refill every arm below the low-water mark to `per_arm`; returns the items generated."""
        live, total = self.live(), 0
        for a in np.flatnonzero(live < self.gen.low_water).tolist():
            count = self.gen.per_arm - int(live[a])
            self._add_run(pool, a, int(self.made[a]), count)
            total += count
        return total

    def _add_run(self, pool: ItemPool, arm: int, start: int, count: int) -> None:
        before = pool.size
        # an id already in the pool (a hand-added item that took a generated id) is skipped, as pool.add does;
        # rebuild repeats the same runs in the same order, so it skips the same ids and the indices still match
        added, _existing = pool.add(self.gen.make_range(arm, start, count))
        self.made[arm] = start + count
        if self.runs and self.runs[-1][0] == arm and self.runs[-1][1] + self.runs[-1][2] == start:
            self.runs[-1][2] += count  # consecutive runs of one arm: one entry
        else:
            self.runs.append([arm, start, count])
        self._grow(before + added, arm)

    def note_added(self, pool: ItemPool, before: int) -> None:
        """Items added by hand since pool size `before`: kept verbatim for rebuild."""
        if pool.size > before:
            self.runs.append([HAND, [pool.item(i).model_dump(mode="json", exclude_defaults=True)
                                     for i in range(before, pool.size)]])
            self._grow(pool.size, HAND)

    def use(self, idx: np.ndarray) -> None:
        """Count one reported group per index; retire generated items that reached `max_uses`."""
        self._grow(max(len(self.arm_of), int(idx.max()) + 1 if len(idx) else 0), HAND)
        np.add.at(self.uses, idx, 1)
        self.retired |= (self.arm_of >= 0) & (self.uses >= self.gen.max_uses)

    def exclude(self, n: int) -> np.ndarray:
        """Bool mask over a pool of n items: the retired ones."""
        return grow(self.retired, n, False)[:n]

    # -- snapshot --------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"spec": self.gen.model_dump(mode="json"), "made": self.made.copy(),
                "runs": [list(r) for r in self.runs], "uses": self.uses.copy(), "retired": self.retired.copy()}

    @classmethod
    def rebuild(cls, d: dict) -> tuple[GeneratedPool, ItemPool]:
        """The generated pool and the item pool of a snapshot, regenerated from the spec and the run list."""
        gp, pool = cls(d["spec"]), ItemPool()
        for run in d["runs"]:
            if run[0] == HAND:
                before = pool.size
                pool.add([Item.model_validate(x) for x in run[1]])
                gp.note_added(pool, before)
            else:
                gp._add_run(pool, int(run[0]), int(run[1]), int(run[2]))
        if gp.made.tolist() != list(d["made"]):
            raise ValueError("generated pool snapshot: the runs do not add up to the counters")
        gp.uses, gp.retired = np.array(d["uses"], dtype=np.int64), np.array(d["retired"], dtype=bool)
        return gp, pool

    # -- reading ---------------------------------------------------------------------------------
    def describe(self) -> dict:
        live = self.live()
        arms = [{"name": a.name, "difficulty": a.difficulty, "config": a.config, "live": int(live[k]),
                 "generated": int(self.made[k])} for k, a in enumerate(self.gen.arms())]
        return {"kind": getattr(self.gen, "kind", type(self.gen).__name__), "per_arm": self.gen.per_arm,
                "low_water": self.gen.low_water, "max_uses": self.gen.max_uses,
                "retired": int(self.retired.sum()), "arms": arms}

    def arm_configs(self) -> dict[str, dict]:
        return {a.name: a.config for a in self.gen.arms()}
