"""compose: an arm-level strategy picks the category mix, an item-level strategy picks items inside each arm.

    counts ~ Multinomial(n, arm.arm_probs())             (sec / dump / progress)
    items_a = item.choose(counts_a, candidates drawn inside arm a)      (filter / pcl / posterior / irt)

Both observe every event; rollout counts come from the item-level strategy (e.g. CurES' allocation). The
sub-strategies get seeds derived from the composer's, and their snapshots nest in the composer's. Steps are
the composer's: the parts are its `step_parts()`, so the step ledger folds each step's evidence into both and
rewinds both with the composer's state; the parts' clocks are the composer's. The composer's `noise_guard`
acts on the arm draw (the parts' own guards are not used: the item-level part only ever sees candidates of
the arm that was drawn).
"""
from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from curriculum.events import EventBatch
from curriculum.params import GuardedParams, StrategyParams
from curriculum.registry import register, strategy_class, validate_params
from curriculum.sampling import draw_by_arms, grouped_candidates
from curriculum.strategy import Strategy

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
        self._adopt(self.arm)
        self._adopt(self.item)
        self.arm.fold_guard = self.item.fold_guard = False  # only the composer's own guard is read

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

    def step_parts(self) -> list[Strategy]:
        return [self.arm, self.item]

    def update(self, batch: EventBatch) -> None:
        self.arm._fold(batch, self.fold_arms)  # the same batch: the per-arm sums are shared, not recounted
        self.item._fold(batch, self.fold_arms)

    def arm_probs(self) -> np.ndarray:
        return self.arm.arm_probs()

    def arm_values(self) -> np.ndarray | None:
        return self.arm.arm_values()

    def _select(self, n: int, exclude: np.ndarray | None) -> np.ndarray:
        probs = self.gated_arm_probs()
        if type(self.item).choose_in_arms is not Strategy.choose_in_arms:
            idx = self._select_in_arms(n, probs, exclude)
            if idx is not None:
                return idx
        return self._select_arm_by_arm(n, probs, exclude)

    def _select_in_arms(self, n: int, probs: np.ndarray, exclude: np.ndarray | None) -> np.ndarray | None:
        """Every arm's candidates drawn, and chosen from, at once (the item part's choose_in_arms); None where
        an arm has too few eligible candidates (then the arm-by-arm draw hands its share to the others)."""
        sizes = self.pool.arm_sizes()
        p = np.where(sizes > 0, probs, 0.0)
        if p.sum() <= 0:
            return None
        counts = self.rng.multinomial(n, p / p.sum())
        want = np.array([self.item.candidate_count(int(c)) if c else 0 for c in counts.tolist()], dtype=np.int64)
        got = grouped_candidates(self.rng, want, *self.pool.arm_order(), exclude)
        if got is None:
            return None
        idx = self.item.choose_in_arms(counts, *got)
        return idx if idx is not None and len(idx) == n else None

    def _select_arm_by_arm(self, n: int, probs: np.ndarray, exclude: np.ndarray | None) -> np.ndarray:
        members = self.pool.arm_members()
        taken = self.scratch_mask()
        item = self.item

        def take(a: int, c: int) -> np.ndarray:
            cand = item.random_candidates(item.candidate_count(c), exclude, members=members[a], taken=taken)
            got = item.choose(min(c, len(cand)), cand)
            taken[got] = True
            return got

        idx = draw_by_arms(self.rng, n, probs, self.pool.arm_sizes(), take)
        taken[idx] = False  # take() marked exactly the items chosen
        return idx

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
