"""Generated sources: a `TaskGenerator` makes items on demand instead of listing a fixed pool.

A generator declares its arms (one difficulty configuration each: a chain horizon, a reasoning-gym attribute
level) and makes item k of arm a from (generator spec, arm, seed, k) alone:

    item = generator.make(a, k)        # the same spec always gives the same item, on any machine

So a snapshot of an experiment over a generator holds the spec and a few counters, never the items: restore
regenerates them (curriculum.generated_pool keeps the bounded live pool per arm). `items()` still returns a first
pool of `per_arm` items per arm, so a generator works wherever a fixed source does (CLI, `curriculum run`).
"""
from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from curriculum.items import Item


class GeneratedArm(BaseModel):
    """One difficulty configuration of a generator: an arm of the curriculum."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=128, description="category (arm) name")
    difficulty: float = Field(description="the level's prior difficulty (ordered arms: horizon, attribute level)")
    config: dict[str, Any] = Field(default_factory=dict, description="what the generator makes at this level")


class TaskGenerator(BaseModel):
    """Base of the generator sources. Subclasses add a `kind` literal and implement `build_arms` and `problem`."""

    model_config = ConfigDict(extra="forbid")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="generator seed")
    per_arm: int = Field(64, ge=1, le=100_000, description="live items kept per arm (the bounded pool)")
    refill_below: int | None = Field(None, ge=0, description="refill an arm to per_arm when its live items drop "
                                      "below this (default per_arm // 2)")
    max_uses: int = Field(1, ge=1, le=1_000, description="reported groups after which an item is retired")
    id_prefix: str = Field("gen", min_length=1, max_length=64, description="prefix of item ids")
    _arm_cache: list[GeneratedArm] | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _bounds(self) -> TaskGenerator:
        if self.refill_below is not None and self.refill_below > self.per_arm:
            raise ValueError(f"refill_below ({self.refill_below}) must be <= per_arm ({self.per_arm})")
        return self

    @property
    def low_water(self) -> int:
        return self.per_arm // 2 if self.refill_below is None else self.refill_below

    # -- what a subclass implements ------------------------------------------------------------
    def build_arms(self) -> list[GeneratedArm]:
        """The arms, easiest first (called once; `arms()` caches them)."""
        raise NotImplementedError

    def problem(self, arm: GeneratedArm, rng: np.random.Generator, k: int) -> tuple[str, str, dict[str, Any]]:
        """(prompt, answer, metadata) of item k of `arm`; all randomness from `rng` (seeded by seed, arm, k)."""
        raise NotImplementedError

    # -- shared --------------------------------------------------------------------------------
    def arms(self) -> list[GeneratedArm]:
        if self._arm_cache is None:
            self._arm_cache = self.build_arms()
        return self._arm_cache

    def make(self, arm: int, k: int) -> Item:
        """Item k of arm `arm`: a pure function of the spec, the arm and k."""
        spec = self.arms()[arm]
        prompt, answer, meta = self.problem(spec, np.random.default_rng([self.seed, arm, k]), k)
        return Item(id=f"{self.id_prefix}-{spec.name}-{k:07d}", prompt=prompt, category=spec.name, answer=answer,
                    difficulty=spec.difficulty, metadata={**meta, "arm_config": spec.config})

    def make_range(self, arm: int, start: int, count: int) -> list[Item]:
        return [self.make(arm, k) for k in range(start, start + count)]

    def problems(self, level: int, n: int, rng: np.random.Generator) -> list[tuple[str, str]]:
        """n fresh (prompt, answer) pairs of the arm whose difficulty is `level`, drawn from `rng` (the SFT warm
        start's interface, as ArithmeticSource.problems)."""
        arms = [a for a in self.arms() if a.difficulty == level]
        if not arms:
            raise ValueError(f"no arm of difficulty {level}; arms: {[a.name for a in self.arms()]}")
        out = []
        for _ in range(n):
            prompt, answer, _meta = self.problem(arms[0], rng, int(rng.integers(0, 2**31 - 1)))
            out.append((prompt, answer))
        return out

    def items(self) -> list[Item]:
        """A first pool: `per_arm` items of every arm (what a fixed-pool consumer gets)."""
        return [it for a in range(len(self.arms())) for it in self.make_range(a, 0, self.per_arm)]
