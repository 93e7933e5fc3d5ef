"""reasoning-gym difficulty attributes as arms: one arm per attribute level of a dataset's curriculum.

reasoning-gym ships, for most datasets, a `*Curriculum` whose attributes (e.g. basic_arithmetic's `num_terms`
and `num_digits`) have a list of levels; its own server lets a user set the levels by hand. Here level L of the
chosen attributes is an arm ("L0", "L1", ..., difficulty L), made on demand: item k of arm L is entry k of the
dataset configured at level L (seeded per arm), graded by the dataset's own `score_answer` (the `reasoning_gym`
verifier re-creates the entry from the item's metadata). A strategy such as `coach` then moves the level from
the learner's pass rate instead of a person.

`attributes` names the attributes that move with the level (default: all of them; an attribute with fewer levels
stays at its top). `config` fixes other fields (e.g. `operators: ["+", "-"]`). `instruction` is appended to every
question; it defaults to none, because the tiny model has 128 positions (METHODS.md §I).
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any, Literal

import numpy as np
from pydantic import Field, PrivateAttr, model_validator

from curriculum.sources.generated import GeneratedArm, TaskGenerator

RG_SIZE = 2**31 - 1  # reasoning-gym datasets are lazy: any index of a dataset this size is an entry


class RGLevelsSource(TaskGenerator):
    kind: Literal["rg_levels"] = "rg_levels"
    id_prefix: str = Field("rgl", min_length=1, max_length=64, description="prefix of item ids")
    dataset: str = Field(min_length=1, description="reasoning-gym dataset with a curriculum, e.g. 'basic_arithmetic'")
    attributes: list[str] | None = Field(None, min_length=1, description="attributes that move with the level "
                                         "(default: all of the dataset's curriculum)")
    levels: list[int] | None = Field(None, min_length=1, description="levels that become arms, ascending "
                                     "(default: 0 .. the highest level of the chosen attributes)")
    config: dict[str, Any] = Field(default_factory=dict, description="fixed config fields at every level")
    instruction: str = Field("", description="text appended to every question")
    _datasets: dict[int, Any] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _ascending(self) -> RGLevelsSource:
        if self.levels is not None and (self.levels != sorted(set(self.levels)) or self.levels[0] < 0):
            raise ValueError("levels must be distinct non-negative integers in ascending order")
        return self

    def _curriculum(self):
        from reasoning_gym.factory import create_curriculum, has_curriculum

        if not has_curriculum(self.dataset):
            raise ValueError(f"dataset {self.dataset!r} has no reasoning-gym curriculum (no difficulty attributes)")
        cur = create_curriculum(self.dataset)
        names = self.attributes or list(cur.attributes)
        unknown = [a for a in names if a not in cur.attributes]
        if unknown:
            raise ValueError(f"attributes: {unknown} not in {self.dataset}'s curriculum {sorted(cur.attributes)}")
        return cur, names

    def build_arms(self) -> list[GeneratedArm]:
        cur, names = self._curriculum()
        top = max(len(cur.attributes[a].levels) for a in names) - 1
        levels = self.levels if self.levels is not None else list(range(top + 1))
        if levels[-1] > top:
            raise ValueError(f"levels: {levels[-1]} is above the highest level {top} of {names}")
        arms = []
        for lv in levels:
            for a in names:
                cur.set_attr_level(a, min(lv, len(cur.attributes[a].levels) - 1))
            try:
                cfg = dataclasses.asdict(cur.generate_configuration(dict(self.config)))
            except Exception as e:  # a fixed field the dataset does not have, or a value it rejects
                raise ValueError(f"config: {type(e).__name__}: {e}") from None
            cfg = json.loads(json.dumps({k: v for k, v in cfg.items() if k not in ("seed", "size")}, default=str))
            arms.append(GeneratedArm(name=f"L{lv}", difficulty=float(lv), config=cfg))
        return arms

    def arm_seed(self, arm: GeneratedArm) -> int:
        return (self.seed * 1009 + int(arm.difficulty)) % (2**31 - 1)

    def _dataset(self, arm: GeneratedArm):
        lv = int(arm.difficulty)
        if lv not in self._datasets:
            import reasoning_gym

            try:
                self._datasets[lv] = reasoning_gym.create_dataset(self.dataset, size=RG_SIZE,
                                                                  seed=self.arm_seed(arm), **arm.config)
            except Exception as e:
                raise ValueError(f"level {lv}: {type(e).__name__}: {e}") from None
        return self._datasets[lv]

    def problem(self, arm: GeneratedArm, rng: np.random.Generator, k: int) -> tuple[str, str, dict[str, Any]]:
        e = self._dataset(arm)[k]
        meta = {"verifier": "reasoning_gym", "dataset": self.dataset, "config": arm.config,
                "seed": self.arm_seed(arm), "size": RG_SIZE, "index": k,
                "entry": json.loads(json.dumps(e.get("metadata", {}), default=str))}
        return e["question"] + self.instruction, str(e["answer"]), meta
