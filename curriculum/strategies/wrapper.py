"""A strategy around another one (`gated`, `screen`): the inner strategy is built from `params.inner`, folds
inside this one's steps (`step_parts`), gives the arm weights, follows parameter updates and pool growth, and
cannot be swapped while the experiment runs (its state would not match)."""
from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import Field, field_validator

from curriculum.params import StrategyParams
from curriculum.registry import DEFAULT_STRATEGY, strategy_class, validate_params
from curriculum.strategies.compose import Part
from curriculum.strategy import Strategy


class WrapperParams(StrategyParams):
    #: the wrapper's own strategy name: it cannot wrap itself
    wrapper: ClassVar[str] = ""
    inner: Part = Field(default_factory=lambda: Part(**DEFAULT_STRATEGY),
                        description="the wrapped strategy (name and params; default: the default strategy)")

    @field_validator("inner")
    @classmethod
    def _inner(cls, v: Part) -> Part:
        if v.name == cls.wrapper:
            raise ValueError(f"inner.name: a {cls.wrapper} strategy cannot wrap another {cls.wrapper} strategy")
        validate_params(v.name, v.params)
        return v


class Wrapper(Strategy):
    draws_arms = True

    def setup(self) -> None:
        self._build_inner()

    def _build_inner(self) -> None:
        p = self.params
        seed = int(np.random.SeedSequence(self.seed).spawn(1)[0].generate_state(1)[0])
        self.inner = strategy_class(p.inner.name)(self.pool, p.inner.params, seed=seed, group_size=self.group_size)
        self._adopt(self.inner)

    def check_params(self, updates: dict) -> StrategyParams:
        new = super().check_params(updates)
        if new.inner.name != self.inner.name:
            raise ValueError(f"{self.name}: the inner strategy cannot change while running; create a new experiment")
        return new

    def set_params(self, updates: dict) -> StrategyParams:
        new = super().set_params(updates)
        self.inner.set_params(new.inner.params)
        return new

    def on_grow(self, old_items: int, old_arms: int) -> None:
        self.inner.sync()

    def step_parts(self) -> list[Strategy]:
        return [self.inner]

    def arm_probs(self) -> np.ndarray:
        return self.inner.arm_weights()

    def arm_values(self) -> np.ndarray | None:
        return self.inner.arm_values()

    def state_dict(self) -> dict:
        return {**super().state_dict(), "inner_strategy": self.inner.state_dict()}

    def load_state_dict(self, d: dict) -> None:
        super().load_state_dict(d)
        self._build_inner()  # only the inner strategy: the wrapper's own counters are loaded
        self.inner.load_state_dict(d["inner_strategy"])
