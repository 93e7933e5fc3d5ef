"""The built-in arithmetic family: a task a ~1M-parameter character-level model can learn on a CPU.

Level d (category "d{d}", difficulty d) holds problems whose operands have d digits, e.g. "12+47=" -> "59".
Generation is deterministic per seed; ids are stable ("arith-d2-000017"). `problems` draws fresh problems of a
level from any generator (the SFT warm start uses it: unlimited data, like pretraining).

`noise` chooses which kind of label noise the pool carries, as real post-training data does:

* "none": every item is graded against its right answer.
* "coin": an extra category "noise" of `noise_items` prompts of the same shape with an operator the family does
  not define ("12?47="), graded by the `coin` verifier (1 or 0 with probability 1/2 whatever the completion): a
  flaky grader or an ambiguous question, in a category of its own. Its groups are rarely degenerate and have
  large |advantage|, yet they teach nothing; a curriculum that chases reward variance is drawn to them.
* "mislabeled": `noise_fraction` of the items of EVERY level carry a wrong reference answer (off by 1-9, so the
  last digit differs) and are graded 0 whatever the policy says: mislabeled references, as scraped math sets have.
  There is no arm to avoid; only per-item evidence (an item that stays at 0 while its level improves) finds them.
* "judge": `noise_fraction` of the items of every level are graded by the `lenient` verifier, which also accepts
  a wrong number ending in the right digit: a lenient LLM judge or a loose regex that a policy can learn to game.

Noisy items say so in `metadata["noise"]` (for analysis; strategies do not read metadata). Without `noise`,
`noise_items` > 0 means "coin" (the field's meaning before the variants existed).
"""
from __future__ import annotations

import operator
import re
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from curriculum.items import Item

OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul}
NOISE = "noise"
NoiseKind = Literal["none", "coin", "mislabeled", "judge"]


class ArithmeticSource(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["arithmetic"] = "arithmetic"
    min_digits: int = Field(1, ge=1, le=12, description="digits of the easiest level")
    max_digits: int = Field(4, ge=1, le=12, description="digits of the hardest level")
    items_per_level: int = Field(500, ge=1, le=1_000_000, description="problems per level")
    ops: list[Literal["+", "-", "*"]] = Field(default_factory=lambda: ["+"], min_length=1, description="operators")
    seed: int = Field(0, ge=0, description="generator seed")
    id_prefix: str = Field("arith", min_length=1, max_length=64, description="prefix of item ids")
    verifier: Literal["exact", "digits"] = Field(
        "digits", description="reward: exact match or per-digit partial credit"
    )
    noise: NoiseKind = Field("none", description="label noise: none, coin (a category graded at random), "
                             "mislabeled (wrong references in every level), judge (a lenient grader in every level)")
    noise_fraction: float = Field(0.15, ge=0.0, le=1.0, description="share of each level's items that are noisy "
                                  "(mislabeled, judge)")
    noise_items: int = Field(0, ge=0, le=1_000_000, description="items of the 'noise' category (coin)")
    noise_digits: int = Field(2, ge=1, le=12, description="operand digits of the noise prompts (coin)")

    @model_validator(mode="before")
    @classmethod
    def _legacy_coin(cls, data: Any) -> Any:
        if isinstance(data, dict) and "noise" not in data and data.get("noise_items"):
            return {**data, "noise": "coin"}
        return data

    @model_validator(mode="after")
    def _range(self) -> ArithmeticSource:
        if self.min_digits > self.max_digits:
            raise ValueError("min_digits must be <= max_digits")
        if self.noise == "coin" and self.noise_items == 0:
            raise ValueError("noise 'coin' needs noise_items > 0 (the size of the noise category)")
        if self.noise != "coin" and self.noise_items:
            raise ValueError(
                f"noise_items is the size of the coin category; it means nothing with noise {self.noise!r}"
            )
        return self

    def problems(self, d: int, n: int, rng: np.random.Generator) -> list[tuple[str, str]]:
        """n (prompt, answer) pairs of level d drawn from rng."""
        lo, hi = (0 if d == 1 else 10 ** (d - 1)), 10**d
        a, b = rng.integers(lo, hi, n), rng.integers(lo, hi, n)
        op = rng.integers(0, len(self.ops), n)
        out = []
        for k in range(n):
            sym, x, y = self.ops[op[k]], int(a[k]), int(b[k])
            out.append((f"{x}{sym}{y}=", str(OPS[sym](x, y))))
        return out

    def level(self, d: int) -> list[Item]:
        pairs = self.problems(d, self.items_per_level, np.random.default_rng([self.seed, d]))
        # the noisy subset and its wrong labels come from their own stream: the problems do not depend on `noise`
        rng = np.random.default_rng([self.seed, d, 104_729])
        noisy = np.zeros(len(pairs), bool)
        if self.noise in ("mislabeled", "judge"):
            noisy[rng.permutation(len(pairs))[: round(self.noise_fraction * len(pairs))]] = True
        offsets = rng.integers(1, 10, len(pairs)) * rng.choice([-1, 1], len(pairs))
        items = []
        for k, (p, a) in enumerate(pairs):
            meta: dict[str, Any] = {"verifier": self.verifier}
            if noisy[k]:
                meta["noise"] = self.noise
                if self.noise == "mislabeled":
                    a = str(int(a) + int(offsets[k]))
                else:
                    meta["verifier"] = "lenient"
            items.append(Item(id=f"{self.id_prefix}-d{d}-{k:06d}", prompt=p, category=f"d{d}", answer=a,
                              difficulty=float(d), metadata=meta))
        return items

    def noise_category(self) -> list[Item]:
        if self.noise != "coin":
            return []
        pairs = self.problems(self.noise_digits, self.noise_items, np.random.default_rng([self.seed, 7919]))
        # no difficulty: the category is not a level of the family (level-pacing strategies see it as unranked)
        return [Item(id=f"{self.id_prefix}-{NOISE}-{k:06d}", prompt=re.sub(r"[-+*]", "?", p, count=1),
                     category=NOISE, answer=None, metadata={"verifier": "coin", "noise": "coin"})
                for k, (p, _) in enumerate(pairs)]

    def items(self) -> list[Item]:
        return [it for d in range(self.min_digits, self.max_digits + 1) for it in self.level(d)] + self.noise_category()
