"""compose: an arm-level strategy picks the category mix, an item-level strategy picks items inside each arm.

    counts ~ Multinomial(n, arm.arm_probs())             (sec / dump / progress)
    items_a = item.choose(counts_a, candidates drawn inside arm a)      (filter / pcl / posterior / irt)

Both observe every event; rollout counts come from the item-level strategy (e.g. CurES' allocation). The
sub-strategies get seeds derived from the composer's, and their snapshots nest in the composer's. Steps are
the composer's: it folds each step's evidence into both parts and rewinds both with its own state, so the
parts' clocks are the composer's. The composer's `noise_guard` acts on the arm draw (the parts' own guards
are not used: the item-level part only ever sees candidates of the arm that was drawn).
"""
from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from curriculum.events import EventBatch
from curriculum.registry import register, strategy_class, validate_params
from curriculum.strategy import GuardedParams, Strategy, StrategyParams

ARM_LEVEL = ("sec", "dump", "progress")
ITEM_LEVEL = ("filter", "pcl", "posterior", "irt", "mopps", "greso")


class Part(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class ComposeParams(GuardedParams):
    arm: Part = Field(default_factory=lambda: Part(name="sec"), description=f"arm-level strategy: {ARM_LEVEL}")
    item: Part = Field(default_factory=lambda: Part(name="filter"), description=f"item-level strategy: {ITEM_LEVEL}")

    @field_validator("arm")
    @classmethod
    def _arm(cls, v: Part) -> Part:
        if v.name not in ARM_LEVEL:
            raise ValueError(f"arm.name must be an arm-level strategy {ARM_LEVEL}, got {v.name!r}")
        validate_params(v.name, v.params)
        return v

    @field_validator("item")
    @classmethod
    def _item(cls, v: Part) -> Part:
        if v.name not in ITEM_LEVEL:
            raise ValueError(f"item.name must be an item-level strategy {ITEM_LEVEL}, got {v.name!r}")
        validate_params(v.name, v.params)
        return v


@register
class Compose(Strategy):
    name = "compose"
    description = "Arm-level strategy (sec/dump/progress) x item-level strategy (filter/pcl/posterior/irt)."
    Params = ComposeParams
    draws_arms = True

    def setup(self) -> None:
        p = self.params
        seeds = np.random.SeedSequence(self.seed).spawn(2)
        self.arm = strategy_class(p.arm.name)(self.pool, p.arm.params, seed=int(seeds[0].generate_state(1)[0]),
                                              group_size=self.group_size)
        self.item = strategy_class(p.item.name)(self.pool, p.item.params, seed=int(seeds[1].generate_state(1)[0]),
                                                group_size=self.group_size)

    def check_params(self, updates: dict) -> StrategyParams:
        new = super().check_params(updates)
        if (new.arm.name, new.item.name) != (self.arm.name, self.item.name):
            raise ValueError("compose: the sub-strategy names cannot change while running; create a new experiment")
        return new

    def set_params(self, updates: dict) -> StrategyParams:
        new = super().set_params(updates)
        self.arm.set_params(new.arm.params)
        self.item.set_params(new.item.params)
        return new

    def on_grow(self, old_items: int, old_arms: int) -> None:
        self.arm.sync()
        self.item.sync()

    def update(self, batch: EventBatch) -> None:
        self.arm._fold(batch)
        self.item._fold(batch)

    # the parts' step bookkeeping follows the composer's
    def _checkpoint(self) -> None:
        super()._checkpoint()
        self.arm._checkpoint()
        self.item._checkpoint()

    def _remember(self, items: np.ndarray) -> None:
        super()._remember(items)
        self.arm._remember(items)
        self.item._remember(items)

    def _rewind(self) -> None:
        super()._rewind()
        self.arm._rewind()
        self.item._rewind()

    def _close_step(self) -> None:
        super()._close_step()
        self.arm._close_step()
        self.item._close_step()

    def arm_probs(self) -> np.ndarray:
        return self.arm.arm_probs()

    def arm_values(self) -> np.ndarray | None:
        return self.arm.arm_values()

    def _select(self, n: int, exclude: np.ndarray | None) -> np.ndarray:
        members = self.pool.arm_members()
        probs = self.gated_arm_probs()
        probs[[len(m) == 0 for m in members]] = 0
        taken = np.zeros(self.pool.size, dtype=bool) if exclude is None else exclude.copy()
        out: list[np.ndarray] = []
        need = n
        for _ in range(len(members) + 1):
            if need <= 0 or probs.sum() <= 0:
                break
            counts = self.rng.multinomial(need, probs / probs.sum())
            for a in np.flatnonzero(counts):
                c = int(counts[a])
                cand = self.item.random_candidates(self.item.candidate_count(c), taken, members=members[a])
                got = self.item.choose(min(c, len(cand)), cand)
                taken[got] = True
                out.append(got)
                need -= len(got)
                if len(got) < c:
                    probs[a] = 0
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)

    def allocate(self, indices: np.ndarray) -> np.ndarray:
        return self.item.allocate(indices)

    def state_dict(self) -> dict:
        d = super().state_dict()
        d["arm_strategy"], d["item_strategy"] = self.arm.state_dict(), self.item.state_dict()
        return d

    def load_state_dict(self, d: dict) -> None:
        super().load_state_dict(d)
        self.setup()
        self.arm.load_state_dict(d["arm_strategy"])
        self.item.load_state_dict(d["item_strategy"])

    def details(self) -> dict:
        return {"arm": self.arm.details(), "item": self.item.details()}
