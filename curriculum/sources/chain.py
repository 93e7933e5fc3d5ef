"""h1 chains (Motwani et al. 2025, "Bootstrapping LLMs to Reason over Longer Horizons via RL"): short problems
composed so that the answer of step i is an operand of step i+1; the horizon h is the difficulty.

The prompt gives step 1 and the templates of steps 2..h; only the final answer y_h is graded (exact match):

    arithmetic step 1:     "a=7+5;b=a-3;c=b*2;c="                                   -> "18"
    reasoning-gym step 1:  "a=How many 1 bits are there in ... number 13?\\nb=a+4;b=" -> "7"

One arm per horizon ("h1".."hH", difficulty h). Steps 2..h draw an operator and an operand from the item's own
RNG; the operator is chosen among those that keep the value in [0, `value_max`] (or [-value_max, value_max] with
`allow_negative`), so answers stay short enough for the tiny character model (BOS + prompt + answer + EOS within
`max_positions`, METHODS.md §I). The reference is computed step by step here (no eval); a reasoning-gym step 1
takes the dataset's own integer answer.

With `guided`, each horizon h >= 2 also gets a guided arm "h{h}g" (difficulty h - 0.5) whose prompt states the
results of steps 1..h-1: an EGSR-lite at arm level ("Learning Like Humans", Zhang et al. 2025, guides with a
reference solution; here the reference is the chain's own intermediate results, graded on the final answer
only). On a ladder (`horizon`, `coach`) the guided arm comes first, and the guidance is withdrawn when its pass
rate passes the gate. Unlike EGSR, guided groups are trained on as they are (no re-scoring under the unguided
prompt), and guidance is per arm, not per never-solved item.
"""
from __future__ import annotations

import operator
import string
from typing import Any, Literal

import numpy as np
from pydantic import Field, PrivateAttr, model_validator

from curriculum.sources.generated import GeneratedArm, TaskGenerator

OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul}
NAMES = string.ascii_lowercase
RG_SIZE = 2**31 - 1  # reasoning-gym datasets are lazy: any index of a dataset this size is an entry
TRIES = 64  # draws of step 1 before a chain that stays too long is an error


class ChainSource(TaskGenerator):
    kind: Literal["chain"] = "chain"
    id_prefix: str = Field("chain", min_length=1, max_length=64, description="prefix of item ids")
    min_horizon: int = Field(1, ge=1, le=26, description="shortest chain (steps)")
    max_horizon: int = Field(5, ge=1, le=26, description="longest chain (steps)")
    dataset: str | None = Field(None, description="reasoning-gym dataset of step 1 (integer answers, e.g. "
                                "'count_bits', 'basic_arithmetic'); none = arithmetic 'a=x+y'")
    config: dict[str, Any] = Field(default_factory=dict, description="the dataset's config (reasoning-gym step 1)")
    digits: int = Field(1, ge=1, le=3, description="operand digits of an arithmetic step 1")
    ops: list[Literal["+", "-", "*"]] = Field(default_factory=lambda: ["+", "-"], min_length=1,
                                              description="operators of steps 2..h")
    operand_max: int = Field(9, ge=1, le=999, description="largest operand of steps 2..h")
    value_max: int = Field(99, ge=1, le=10**6, description="bound on |intermediate value| (keeps answers short)")
    allow_negative: bool = Field(False, description="let intermediate values go below 0 (down to -value_max)")
    max_positions: int = Field(128, ge=16, description="the policy's positions: BOS + prompt + answer + EOS")
    guided: bool = Field(False, description="add a guided arm 'h{h}g' below each horizon h >= 2 whose prompt shows "
                         "the results of steps 1..h-1 (EGSR-lite: the chain's intermediate results as guidance)")
    _dataset: Any = PrivateAttr(None)

    @model_validator(mode="after")
    def _horizons(self) -> ChainSource:
        if self.min_horizon > self.max_horizon:
            raise ValueError("min_horizon must be <= max_horizon")
        return self

    def build_arms(self) -> list[GeneratedArm]:
        step1 = {"dataset": self.dataset, "config": self.config} if self.dataset else {"digits": self.digits}
        arms = []
        for h in range(self.min_horizon, self.max_horizon + 1):
            config = {"horizon": h, "step1": step1, "ops": list(self.ops)}
            if self.guided and h >= 2:  # between h - 1 and h on the ladder: guidance withdrawn at the next stage
                arms.append(GeneratedArm(name=f"h{h}g", difficulty=h - 0.5, config={**config, "guided": True}))
            arms.append(GeneratedArm(name=f"h{h}", difficulty=float(h), config=config))
        return arms

    # -- step 1 --------------------------------------------------------------------------------
    def _rg(self):
        if self._dataset is None:
            import reasoning_gym

            try:
                self._dataset = reasoning_gym.create_dataset(self.dataset, size=RG_SIZE, seed=self.seed,
                                                             **self.config)
            except Exception as e:  # unknown dataset or bad config: say which field
                raise ValueError(f"dataset {self.dataset!r}: {type(e).__name__}: {e}") from None
        return self._dataset

    def first_step(self, rng: np.random.Generator) -> tuple[str, int] | None:
        """(text of step 1 without its name, its answer), or None when the drawn entry has no integer answer."""
        if self.dataset is None:
            lo, hi = (0 if self.digits == 1 else 10 ** (self.digits - 1)), 10**self.digits
            x, y = (int(v) for v in rng.integers(lo, hi, 2))
            return f"{x}+{y}", x + y
        entry = self._rg()[int(rng.integers(0, RG_SIZE))]
        try:
            return entry["question"] + "\n", int(str(entry["answer"]).strip())
        except ValueError:
            return None

    # -- steps 2..h ----------------------------------------------------------------------------
    def next_step(self, value: int, rng: np.random.Generator) -> tuple[str, int]:
        """(operator, operand) of the next step: drawn among the choices that keep the value in bounds."""
        b = int(rng.integers(1, self.operand_max + 1))
        lo = -self.value_max if self.allow_negative else 0
        fits = [op for op in self.ops if lo <= OPS[op](value, b) <= self.value_max]
        if not fits:  # no operator keeps the bound with this operand: the identity operand always does
            op = self.ops[int(rng.integers(0, len(self.ops)))]
            return op, (1 if op == "*" else 0)
        return fits[int(rng.integers(0, len(fits)))], b

    def chain(self, horizon: int, rng: np.random.Generator, guided: bool = False) -> tuple[str, list[int]]:
        """The prompt and the value after every step (the last one is the graded answer). `guided` states the
        result of every step but the last right after it ("a=7+5;a=12;b=a-3;b=9;c=b*2;c=")."""
        first = None
        while first is None:
            first = self.first_step(rng)
        text, value = first
        values = [value]
        parts = [f"a={text}" + ("" if text.endswith("\n") else ";")]
        for i in range(1, horizon):
            if guided:
                parts.append(f"{NAMES[i - 1]}={value};")
            op, b = self.next_step(value, rng)
            value = OPS[op](value, b)
            values.append(value)
            parts.append(f"{NAMES[i]}={NAMES[i - 1]}{op}{b};")
        return "".join(parts) + f"{NAMES[horizon - 1]}=", values

    def problem(self, arm: GeneratedArm, rng: np.random.Generator, k: int) -> tuple[str, str, dict[str, Any]]:
        h, guided = int(arm.config["horizon"]), bool(arm.config.get("guided", False))
        for _ in range(TRIES):
            prompt, values = self.chain(h, rng, guided)
            answer = str(values[-1])
            if len(prompt) + len(answer) + 2 <= self.max_positions:
                return prompt, answer, {"verifier": "exact", "horizon": h, "steps": values, "guided": guided}
        raise ValueError(f"horizon {h}: chains do not fit in max_positions={self.max_positions} "
                         f"(prompt + answer + BOS + EOS); lower max_horizon or value_max, or pick a shorter dataset")
