"""The built-in arithmetic family: a task a ~1M-parameter character-level model can learn on a CPU.

Level d (category "d{d}", difficulty d) holds problems whose operands have d digits, e.g. "12+47=" -> "59".
Generation is deterministic per seed; ids are stable ("arith-d2-000017")."""
from __future__ import annotations

import operator
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from curriculum.items import Item

OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul}


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

    @model_validator(mode="after")
    def _range(self) -> "ArithmeticSource":
        if self.min_digits > self.max_digits:
            raise ValueError("min_digits must be <= max_digits")
        return self

    def level(self, d: int) -> list[Item]:
        rng = np.random.default_rng([self.seed, d])
        lo, hi = (0 if d == 1 else 10 ** (d - 1)), 10**d
        a = rng.integers(lo, hi, self.items_per_level)
        b = rng.integers(lo, hi, self.items_per_level)
        op = rng.integers(0, len(self.ops), self.items_per_level)
        out = []
        for k in range(self.items_per_level):
            sym = self.ops[op[k]]
            x, y = int(a[k]), int(b[k])
            out.append(Item(id=f"{self.id_prefix}-d{d}-{k:06d}", prompt=f"{x}{sym}{y}=", category=f"d{d}",
                            answer=str(OPS[sym](x, y)), difficulty=float(d), metadata={"verifier": self.verifier}))
        return out

    def items(self) -> list[Item]:
        return [it for d in range(self.min_digits, self.max_digits + 1) for it in self.level(d)]
