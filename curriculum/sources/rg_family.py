"""A reasoning-gym dataset as a fixed-pool family: one difficulty knob's values are the levels (arms), graded
exactly, with the same four noise variants as the arithmetic family (curriculum/sources/noise.py).

The default is the evidence benchmark's second family: `basic_arithmetic` with one-digit operands, + and -, and
the number of terms as the knob ("Calculate 4 - 1 - 7." -> "-4"; level t3 = 3 terms). Prompts stay under 32
characters and answers under 4, so they fit the tiny model's 128 positions with no instruction (METHODS.md §I).
Grading is exact match on the dataset's own answer (not its `score_answer`, whose substring partial credit would
make a one-digit answer an easy target), so a level's pass rate means the same as the arithmetic family's.

Item k of level L comes from entry i of the dataset configured at L, where the indices are drawn from the
family's generator (`problems`, as ArithmeticSource.problems): the pool, the SFT warm start and the held-out set
draw from the same distribution with their own seeds.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from curriculum.sources.noise import NoisyFamily

RG_SIZE = 2**31 - 1  # reasoning-gym datasets are lazy: any index of a dataset this size is an entry


@lru_cache(maxsize=32)
def _dataset(name: str, config: tuple, seed: int):
    import reasoning_gym

    return reasoning_gym.create_dataset(name, size=RG_SIZE, seed=seed, **dict(config))


class RGFamilySource(NoisyFamily):
    kind: Literal["rg_family"] = "rg_family"
    dataset: str = Field("basic_arithmetic", min_length=1, description="reasoning-gym dataset with integer answers")
    knob: list[str] = Field(default_factory=lambda: ["min_terms", "max_terms"], min_length=1,
                            description="config fields set to the level's value")
    levels: list[int] = Field(default_factory=lambda: [2, 3, 4, 5], min_length=1,
                              description="knob values that become levels, ascending")
    config: dict[str, Any] = Field(default_factory=lambda: {
        "min_digits": 1, "max_digits": 1, "operators": ["+", "-"], "allow_parentheses": False,
        "allow_negation": False, "format_style": "simple", "whitespace": "single"},
        description="fixed config fields of every level")
    prefix: str = Field("t", pattern=r"^[a-zA-Z]$", description="category = prefix + level value (t3: 3 terms)")
    id_prefix: str = Field("rgf", min_length=1, max_length=64, description="prefix of item ids")
    verifier: Literal["exact", "digits"] = Field("exact", description="reward: exact match or per-digit credit")
    noise_level: int | None = Field(None, description="level whose prompts the coin category garbles (default: "
                                    "the first)")

    @model_validator(mode="after")
    def _levels(self) -> RGFamilySource:
        if self.levels != sorted(set(self.levels)) or self.levels[0] < 0:
            raise ValueError("levels must be distinct non-negative integers in ascending order")
        if self.noise_level is not None and self.noise_level not in self.levels:
            raise ValueError(f"noise_level {self.noise_level} is not one of the levels {self.levels}")
        return self

    def _level_dataset(self, level: int):
        cfg = {**self.config, **{k: level for k in self.knob}}
        frozen = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in cfg.items()))
        try:
            return _dataset(self.dataset, frozen, (self.seed * 1009 + level) % RG_SIZE)
        except Exception as e:  # unknown dataset or a config it rejects: name the level
            raise ValueError(f"level {level}: {type(e).__name__}: {e}") from None

    def problems(self, level: int, n: int, rng: np.random.Generator) -> list[tuple[str, str]]:
        """n (prompt, answer) pairs of the level whose knob value is `level`, drawn from rng."""
        ds = self._level_dataset(level)
        return [(e["question"], str(e["answer"])) for e in (ds[int(i)] for i in rng.integers(0, RG_SIZE, n))]

    def level_values(self) -> list[int]:
        return list(self.levels)

    def category(self, level: int) -> str:
        return f"{self.prefix}{level}"

    def coin_level(self) -> int:
        return self.levels[0] if self.noise_level is None else self.noise_level
