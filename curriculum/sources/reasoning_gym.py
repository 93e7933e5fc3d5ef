"""reasoning-gym procedural datasets as item pools; each level (a dataset + its config) is a category.

Users define their own levels — including sub-levels between reasoning-gym's stock curriculum levels, which
are too coarse for small models (e.g. products 1x1, 1x2 and 2x2 digits). Items keep what the verifier needs
to re-create the entry and call the dataset's own `score_answer`."""
from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from curriculum.items import Item

ANSWER_SUFFIX = '\nGive the final answer on the last line as "Answer: <answer>".'


class Level(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=128, description="category name of this level")
    dataset: str = Field(min_length=1, description="reasoning-gym dataset name, e.g. 'products'")
    config: dict[str, Any] = Field(default_factory=dict, description="the dataset's config (e.g. min_digits)")
    size: int = Field(200, ge=1, le=1_000_000, description="items of this level")
    difficulty: float | None = Field(None, description="prior difficulty (default: the level's position)")


class ReasoningGymSource(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["reasoning_gym"] = "reasoning_gym"
    levels: list[Level] = Field(min_length=1, description="levels, easiest first")
    seed: int = Field(0, ge=0, description="dataset seed")
    instruction: str = Field(ANSWER_SUFFIX, description="text appended to every question")

    def items(self) -> list[Item]:
        import reasoning_gym

        out = []
        for pos, lv in enumerate(self.levels):
            try:
                ds = reasoning_gym.create_dataset(lv.dataset, size=lv.size, seed=self.seed, **lv.config)
            except Exception as e:  # unknown dataset / bad config: name the level
                raise ValueError(f"levels[{pos}] ({lv.name}): {type(e).__name__}: {e}") from None
            for i in range(lv.size):
                e = ds[i]
                out.append(Item(
                    id=f"rg-{lv.name}-{i:06d}", prompt=e["question"] + self.instruction, category=lv.name,
                    answer=str(e["answer"]), difficulty=float(pos if lv.difficulty is None else lv.difficulty),
                    metadata={"verifier": "reasoning_gym", "dataset": lv.dataset, "config": lv.config,
                              "seed": self.seed, "size": lv.size, "index": i,
                              "entry": json.loads(json.dumps(e.get("metadata", {}), default=str))}))
        return out
