"""The built-in arithmetic family: a task a ~1M-parameter character-level model can learn on a CPU.

Level d (category "d{d}", difficulty d) holds problems whose operands have d digits, e.g. "12+47=" -> "59".
Generation is deterministic per seed; ids are stable ("arith-d2-000017"). `problems` draws fresh problems of a
level from any generator (the SFT warm start uses it: unlimited data, like pretraining).

`noise_items` > 0 adds the category "noise": prompts of the same shape with an operator the family does not
define ("12?47="), graded by the `coin` verifier — 1 or 0 with probability 1/2 whatever the completion. It
stands for what real datasets hold: ambiguous questions, flaky graders. Its groups are rarely degenerate and have
large |advantage|, yet they teach nothing; a curriculum that chases reward variance is drawn to them.
"""
from __future__ import annotations

import operator
import re
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from curriculum.items import Item

OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul}
NOISE = "noise"


class ArithmeticSource(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["arithmetic"] = "arithmetic"
    min_digits: int = Field(1, ge=1, le=12, description="digits of the easiest level")
    max_digits: int = Field(4, ge=1, le=12, description="digits of the hardest level")
    items_per_level: int = Field(500, ge=1, le=1_000_000, description="problems per level")
    ops: list[Literal["+", "-", "*"]] = Field(default_factory=lambda: ["+"], min_length=1, description="operators")
    seed: int = Field(0, ge=0, description="generator seed")
    id_prefix: str = Field("arith", min_length=1, max_length=64, description="prefix of item ids")
    verifier: Literal["exact", "digits"] = Field("digits", description="reward: exact match or per-digit partial credit")
    noise_items: int = Field(0, ge=0, le=1_000_000, description="items of the 'noise' category (graded at random)")
    noise_digits: int = Field(2, ge=1, le=12, description="operand digits of the noise prompts")

    @model_validator(mode="after")
    def _range(self) -> "ArithmeticSource":
        if self.min_digits > self.max_digits:
            raise ValueError("min_digits must be <= max_digits")
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
        return [Item(id=f"{self.id_prefix}-d{d}-{k:06d}", prompt=p, category=f"d{d}", answer=a, difficulty=float(d),
                     metadata={"verifier": self.verifier}) for k, (p, a) in enumerate(pairs)]

    def noise(self) -> list[Item]:
        pairs = self.problems(self.noise_digits, self.noise_items, np.random.default_rng([self.seed, 7919]))
        # no difficulty: the category is not a level of the family (level-pacing strategies see it as unranked)
        return [Item(id=f"{self.id_prefix}-{NOISE}-{k:06d}", prompt=re.sub(r"[-+*]", "?", p, count=1),
                     category=NOISE, answer=None, metadata={"verifier": "coin"}) for k, (p, _) in enumerate(pairs)]

    def items(self) -> list[Item]:
        return [it for d in range(self.min_digits, self.max_digits + 1) for it in self.level(d)] + self.noise()
