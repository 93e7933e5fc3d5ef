"""Task sources: specs that generate item pools (the `source` of POST /v1/experiments, `curriculum run`).

    {"kind": "arithmetic", "min_digits": 1, "max_digits": 4, "items_per_level": 500, "ops": ["+"], "seed": 0}
    {"kind": "reasoning_gym", "levels": [{"name": "1x1", "dataset": "products", "config": {...}}, ...], ...}
    {"kind": "jsonl", "path": "items.jsonl", "fields": {"prompt": "question"}}

Each item's metadata names its verifier (workers.verifiers) and carries what the verifier needs.
"""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, TypeAdapter

from curriculum.items import Item
from curriculum.sources.arithmetic import ArithmeticSource
from curriculum.sources.jsonl import JsonlSource
from curriculum.sources.reasoning_gym import ReasoningGymSource

SourceSpec = Annotated[ArithmeticSource | ReasoningGymSource | JsonlSource, Field(discriminator="kind")]
_ADAPTER = TypeAdapter(SourceSpec)


def parse_source(spec: dict[str, Any]) -> ArithmeticSource | ReasoningGymSource | JsonlSource:
    """Validate a source spec; pydantic ValidationError names the bad field."""
    return _ADAPTER.validate_python(spec)


def items_from_source(spec: dict[str, Any]) -> list[Item]:
    return parse_source(spec).items()


__all__ = ["ArithmeticSource", "ReasoningGymSource", "JsonlSource", "parse_source", "items_from_source"]
