"""coach: a difficulty ladder moved by the learner's pass rate, as reasoning-gym's coaching curricula are moved
by hand (reasoning-gym's `CurriculumExperiment.update_difficulty` / `increment_attr_level`; Stojanovski et al.
2025, "REASONING GYM: Reasoning Environments for Reinforcement Learning with Verifiable Rewards").

The arms with a prior difficulty form a ladder, easiest first (e.g. the levels of a reasoning-gym attribute from
the `rg_levels` source). The learner trains at one level at a time: all draws go to the current level, except a
`replay` share spread over the levels below it. After each step (one policy version), with p = the mean reward of
the last `window` groups at the current level (at least `min_groups` of them):

    p >= raise_at    ->  level + 1  (if not at the top)
    p <  lower_below ->  level - 1  (if not at the bottom)

and the window restarts at the new level. `frozen` keeps the level fixed (the fixed-difficulty baseline). Arms
without a prior difficulty (e.g. a noise category) are not on the ladder and are never drawn.
"""
from __future__ import annotations

import numpy as np
from pydantic import Field, model_validator

from curriculum.events import EventBatch
from curriculum.params import StrategyParams
from curriculum.registry import register
from curriculum.strategy import Strategy


class LadderParams(StrategyParams):
    """What every difficulty ladder (coach, horizon) takes: how it reads the current level and which arms it holds."""

    window: int = Field(64, ge=1, description="latest groups at the current level that the pass rate averages")
    min_groups: int = Field(32, ge=1, description="groups at a level before it can be left")
    start: int = Field(0, ge=0, description="the starting level (position on the ladder; clamped to the top)")
    replay: float = Field(0.0, ge=0, lt=1, description="share of draws spread over the levels below the current")
    frozen: bool = Field(False, description="never move (the fixed-difficulty baseline)")
    arms: list[str] = Field(default_factory=list, description="the ladder's arms (empty: every arm with a prior "
                            "difficulty); the others are never drawn, e.g. a longer horizon kept for evaluation")

    @model_validator(mode="after")
    def _window(self) -> LadderParams:
        if self.min_groups > self.window:
            raise ValueError("min_groups must be <= window")
        return self


class CoachParams(LadderParams):
    raise_at: float = Field(0.7, gt=0, le=1, description="pass rate at the current level that moves one level up")
    lower_below: float = Field(0.2, ge=0, lt=1, description="pass rate at the current level that moves one down")

    @model_validator(mode="after")
    def _order(self) -> CoachParams:
        if self.lower_below >= self.raise_at:
            raise ValueError("lower_below must be < raise_at")
        return self


@register
class Coach(Strategy):
    name = "coach"
    description = "Difficulty ladder (e.g. reasoning-gym attribute levels): up past raise_at, down below lower_below."
    Params = CoachParams
    draws_arms = True
    state_attrs = ("level", "recent", "moves")

    def setup(self) -> None:
        self.level = -1  # position on the ladder; -1 until the pool has a ladder
        self.recent: list[float] = []  # group means at the current level, oldest first
        self.moves: list[list[int]] = []  # [step, new level] of every move
        self._ladder = np.zeros(0, dtype=np.int64)

    def ladder(self) -> np.ndarray:
        """Arm indices with a prior difficulty, easiest first (cached: it changes only when the pool grows)."""
        return self._ladder

    def _rank_arms(self) -> np.ndarray:
        d = self.pool.difficulty
        members = self.pool.arm_members()
        key = np.array([np.nanmean(d[m]) if len(m) and np.isfinite(d[m]).any() else np.nan for m in members])
        ranked = np.flatnonzero(np.isfinite(key))
        if self.params.arms:
            ranked = ranked[np.isin(np.asarray(self.pool.categories, dtype=object)[ranked], self.params.arms)]
        return ranked[np.lexsort((ranked, key[ranked]))]

    def on_grow(self, old_items: int, old_arms: int) -> None:
        self._ladder = self._rank_arms()  # the mean difficulty of each arm's items
        if self.level < 0 and len(self.ladder()):
            self.level = min(self.params.start, len(self.ladder()) - 1)

    def current_arm(self) -> int:
        lad = self.ladder()
        return int(lad[self.level]) if self.level >= 0 and len(lad) else -1

    # -- the rule ------------------------------------------------------------------------------
    def update(self, batch: EventBatch) -> None:
        arm = self.current_arm()
        if arm < 0:
            return
        at = self.pool.category[batch.item] == arm
        self.recent = (self.recent + batch.mean[at].tolist())[-self.params.window:]
        move = 0 if self.params.frozen else self.decide()
        top = len(self.ladder()) - 1
        if move and 0 <= self.level + move <= top:
            self.level += move
            self.recent = []
            self.moves.append([self.steps, self.level])

    def level_pass_rate(self) -> float | None:
        return float(np.mean(self.recent)) if self.recent else None

    def decide(self) -> int:
        """+1, -1 or 0 from the pass rate at the current level."""
        p = self.params
        if len(self.recent) < p.min_groups:
            return 0
        rate = self.level_pass_rate()
        return 1 if rate >= p.raise_at else (-1 if rate < p.lower_below else 0)

    def arm_probs(self) -> np.ndarray:
        probs = np.zeros(self.pool.num_categories)
        lad = self.ladder()
        if self.level < 0 or not len(lad):  # no ladder: nothing to pace, draw uniformly
            return np.full(self.pool.num_categories, 1.0 / max(self.pool.num_categories, 1))
        below = lad[: self.level]
        share = self.params.replay if len(below) else 0.0
        probs[lad[self.level]] = 1.0 - share
        if len(below):
            probs[below] += share / len(below)
        return probs

    def details(self) -> dict:
        arm = self.current_arm()
        return {"level": self.level, "level_arm": self.pool.categories[arm] if arm >= 0 else None,
                "level_pass_rate": self.level_pass_rate(), "level_groups": len(self.recent),
                "moves": [list(m) for m in self.moves[-20:]]}
