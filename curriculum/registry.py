"""Strategy registry: name -> class, with typed params and clear validation errors."""
from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from pydantic import ValidationError

from curriculum.items import ItemPool
from curriculum.params import StrategyParams
from curriculum.strategy import Strategy

_REGISTRY: dict[str, type[Strategy]] = {}

#: the strategy used when a request or `curriculum run` names none: the one the strategy benchmark measures
#: best on the simulated student with a noisy category (docs/results.md, "Strategies on the simulated student")
DEFAULT_STRATEGY: dict[str, Any] = {"name": "compose", "params": {"arm": {"name": "dump"}, "item": {"name": "filter"}}}


class InvalidParams(ValueError):
    """Bad strategy name or params; `errors` lists (field, message) pairs."""

    def __init__(self, message: str, errors: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


def register(cls: type[Strategy]) -> type[Strategy]:
    if not cls.name:
        raise TypeError(f"{cls.__name__} has no name")
    _REGISTRY[cls.name] = cls
    return cls


def _load_all() -> None:
    import curriculum.strategies as pkg

    for m in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(f"curriculum.strategies.{m.name}")


def strategy_class(name: str) -> type[Strategy]:
    _load_all()
    if name not in _REGISTRY:
        raise InvalidParams(f"strategy.name: unknown strategy {name!r}; known: {', '.join(sorted(_REGISTRY))}",
                            [("strategy.name", f"unknown strategy {name!r}")])
    return _REGISTRY[name]


def strategy_names() -> list[str]:
    _load_all()
    return sorted(_REGISTRY)


def format_validation_error(e: ValidationError, prefix: str = "strategy.params") -> list[tuple[str, str]]:
    out = []
    for err in e.errors():
        loc = ".".join(str(x) for x in (prefix, *err["loc"]) if x != "")
        out.append((loc, err["msg"]))
    return out


def validate_params(name: str, params: dict[str, Any] | None) -> StrategyParams:
    cls = strategy_class(name)
    try:
        return cls.Params.model_validate(params or {})
    except ValidationError as e:
        errs = format_validation_error(e)
        raise InvalidParams("; ".join(f"{loc}: {msg}" for loc, msg in errs), errs) from None


def make_strategy(name: str, pool: ItemPool, params: dict[str, Any] | None = None, *, seed: int = 0,
                  group_size: int = 8) -> Strategy:
    """Build a strategy by name; raises InvalidParams naming the bad field."""
    cls = strategy_class(name)
    return cls(pool, validate_params(name, params), seed=seed, group_size=group_size)


def describe_strategies() -> list[dict[str, Any]]:
    _load_all()
    return [{"name": n, "description": c.description or (c.__doc__ or "").strip().splitlines()[0],
             "params": c.Params.model_json_schema()} for n, c in sorted(_REGISTRY.items())]
