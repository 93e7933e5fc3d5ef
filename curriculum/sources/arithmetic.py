"""The built-in arithmetic family: a task a ~1M-parameter character-level model can learn on a CPU.

Level d (category "d{d}", difficulty d) holds problems whose operands have d digits, e.g. "12+47=" -> "59".
Generation is deterministic per seed; ids are stable ("arith-d2-000017"). `problems` draws fresh problems of a
level from any generator (the SFT warm start uses it: unlimited data, like pretraining).

`noise` chooses which kind of label noise the pool carries, as real post-training data does (none, coin,
mislabeled, judge: curriculum/sources/noise.py, shared with the rg_family source).
"""
from __future__ import annotations

import operator
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from curriculum.sources.noise import NOISE, NoiseKind, NoisyFamily

OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul}
__all__ = ["OPS", "NOISE", "NoiseKind", "ArithmeticSource"]


class ArithmeticSource(NoisyFamily):
    kind: Literal["arithmetic"] = "arithmetic"
    min_digits: int = Field(1, ge=1, le=12, description="digits of the easiest level")
    max_digits: int = Field(4, ge=1, le=12, description="digits of the hardest level")
    ops: list[Literal["+", "-", "*"]] = Field(default_factory=lambda: ["+"], min_length=1, description="operators")
    id_prefix: str = Field("arith", min_length=1, max_length=64, description="prefix of item ids")
    verifier: Literal["exact", "digits"] = Field(
        "digits", description="reward: exact match or per-digit partial credit"
    )
    noise_digits: int = Field(2, ge=1, le=12, description="operand digits of the noise prompts (coin)")

    @model_validator(mode="after")
    def _range(self) -> ArithmeticSource:
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

    def level_values(self) -> list[int]:
        return list(range(self.min_digits, self.max_digits + 1))

    def category(self, level: int) -> str:
        return f"d{level}"

    def coin_level(self) -> int:
        return self.noise_digits
