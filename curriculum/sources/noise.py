"""Label noise shared by the fixed-pool task families (arithmetic, rg_family): what `noise` means and how a
level's items carry it, written once so that every family gets the same four variants.

* "none": every item is graded against its right answer.
* "coin": an extra category "noise" of `noise_items` prompts of a level's shape whose first operator is replaced
  by one the family does not define ("12?47="), graded by the `coin` verifier (1 or 0 with probability 1/2
  whatever the completion): a flaky grader or an ambiguous question, in a category of its own. Its groups are
  rarely degenerate and have large |advantage|, yet they teach nothing; a curriculum that chases reward variance
  is drawn to them.
* "mislabeled": `noise_fraction` of the items of EVERY level carry a wrong reference answer (off by 1-9, so the
  last digit differs unless the sign flips) and are graded 0 whatever the policy says: mislabeled references, as
  scraped math sets have. There is no arm to avoid; only per-item evidence (an item that stays at 0 while its
  level improves) finds them.
* "judge": `noise_fraction` of the items of every level are graded by the `lenient` verifier, which also accepts
  a wrong number ending in the right digit: a lenient LLM judge or a loose regex that a policy can learn to game.

Noisy items say so in `metadata["noise"]` (for analysis; strategies do not read metadata). Without `noise`,
`noise_items` > 0 means "coin" (the field's meaning before the variants existed). Answers must be integers.
"""
from __future__ import annotations

import re
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from curriculum.items import Item

NOISE = "noise"
NoiseKind = Literal["none", "coin", "mislabeled", "judge"]


class NoisyFamily(BaseModel):
    """Base of a fixed-pool family with integer answers: `items_per_level` problems per level, noise applied
    per item. A subclass gives `problems(level, n, rng)`, `level_values()`, `category(level)` and `coin_level()`."""

    model_config = ConfigDict(extra="forbid")
    items_per_level: int = Field(500, ge=1, le=1_000_000, description="problems per level")
    seed: int = Field(0, ge=0, description="generator seed")
    noise: NoiseKind = Field("none", description="label noise: none, coin (a category graded at random), "
                             "mislabeled (wrong references in every level), judge (a lenient grader in every level)")
    noise_fraction: float = Field(0.15, ge=0.0, le=1.0, description="share of each level's items that are noisy "
                                  "(mislabeled, judge)")
    noise_items: int = Field(0, ge=0, le=1_000_000, description="items of the 'noise' category (coin)")

    @model_validator(mode="before")
    @classmethod
    def _legacy_coin(cls, data: Any) -> Any:
        if isinstance(data, dict) and "noise" not in data and data.get("noise_items"):
            return {**data, "noise": "coin"}
        return data

    @model_validator(mode="after")
    def _noise_fields(self) -> NoisyFamily:
        if self.noise == "coin" and self.noise_items == 0:
            raise ValueError("noise 'coin' needs noise_items > 0 (the size of the noise category)")
        if self.noise != "coin" and self.noise_items:
            raise ValueError(
                f"noise_items is the size of the coin category; it means nothing with noise {self.noise!r}"
            )
        return self

    # -- what a family gives -------------------------------------------------------------------------------
    def problems(self, level: int, n: int, rng: np.random.Generator) -> list[tuple[str, str]]:
        raise NotImplementedError

    def level_values(self) -> list[int]:
        raise NotImplementedError

    def category(self, level: int) -> str:
        raise NotImplementedError

    def coin_level(self) -> int:
        """The level whose prompts the coin category garbles."""
        raise NotImplementedError

    # -- shared --------------------------------------------------------------------------------------------
    def level(self, d: int) -> list[Item]:
        pairs = self.problems(d, self.items_per_level, np.random.default_rng([self.seed, d]))
        # the noisy subset and its wrong labels come from their own stream: the problems do not depend on `noise`
        rng = np.random.default_rng([self.seed, d, 104_729])
        noisy = np.zeros(len(pairs), bool)
        if self.noise in ("mislabeled", "judge"):
            noisy[rng.permutation(len(pairs))[: round(self.noise_fraction * len(pairs))]] = True
        offsets = rng.integers(1, 10, len(pairs)) * rng.choice([-1, 1], len(pairs))
        cat, items = self.category(d), []
        for k, (p, a) in enumerate(pairs):
            meta: dict[str, Any] = {"verifier": self.verifier}
            if noisy[k]:
                meta["noise"] = self.noise
                if self.noise == "mislabeled":
                    a = str(int(a) + int(offsets[k]))
                else:
                    meta["verifier"] = "lenient"
            items.append(Item(id=f"{self.id_prefix}-{cat}-{k:06d}", prompt=p, category=cat, answer=a,
                              difficulty=float(d), metadata=meta))
        return items

    def noise_category(self) -> list[Item]:
        if self.noise != "coin":
            return []
        pairs = self.problems(self.coin_level(), self.noise_items, np.random.default_rng([self.seed, 7919]))
        # no difficulty: the category is not a level of the family (level-pacing strategies see it as unranked)
        return [Item(id=f"{self.id_prefix}-{NOISE}-{k:06d}", prompt=re.sub(r"[-+*]", "?", p, count=1),
                     category=NOISE, answer=None, metadata={"verifier": "coin", "noise": "coin"})
                for k, (p, _) in enumerate(pairs)]

    def items(self) -> list[Item]:
        return [it for d in self.level_values() for it in self.level(d)] + self.noise_category()
