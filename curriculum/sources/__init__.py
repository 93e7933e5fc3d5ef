"""Task sources: specs that generate item pools (the `source` of POST /v1/experiments, `curriculum run`).

    {"kind": "arithmetic", "min_digits": 1, "max_digits": 4, "items_per_level": 500, "ops": ["+"], "seed": 0}
    {"kind": "reasoning_gym", "levels": [{"name": "1x1", "dataset": "products", "config": {...}}, ...], ...}
    {"kind": "jsonl", "path": "items.jsonl", "fields": {"prompt": "question"}}
    {"kind": "rg_family", "levels": [2, 3, 4, 5], "items_per_level": 4000}    basic_arithmetic, terms as levels

Generated sources (curriculum.sources.generated) make their items on demand, one arm per difficulty
configuration; an experiment over one keeps a bounded pool per arm (curriculum.generated_pool):

    {"kind": "chain", "max_horizon": 5, "per_arm": 64}                         h1 chains, one arm per horizon
    {"kind": "rg_levels", "dataset": "basic_arithmetic", "attributes": ["num_terms"]}   attribute levels

Each item's metadata names its verifier (workers.verifiers) and carries what the verifier needs.
"""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, TypeAdapter

from curriculum.items import Item
from curriculum.sources.arithmetic import ArithmeticSource
from curriculum.sources.chain import ChainSource
from curriculum.sources.generated import GeneratedArm, TaskGenerator
from curriculum.sources.jsonl import JsonlSource
from curriculum.sources.reasoning_gym import ReasoningGymSource
from curriculum.sources.rg_family import RGFamilySource
from curriculum.sources.rg_levels import RGLevelsSource

AnySource = ArithmeticSource | ReasoningGymSource | JsonlSource | ChainSource | RGLevelsSource | RGFamilySource
SourceSpec = Annotated[AnySource, Field(discriminator="kind")]
_ADAPTER = TypeAdapter(SourceSpec)


def parse_source(spec: dict[str, Any]) -> AnySource:
    """Validate a source spec; pydantic ValidationError names the bad field. A generator is also built once
    (its arms and item 0 of each), so an unknown dataset or a chain that cannot fit raises ValueError here."""
    src = _ADAPTER.validate_python(spec)
    if isinstance(src, TaskGenerator):
        for a in range(len(src.arms())):
            src.make(a, 0)
    return src


def parse_generator(spec: dict[str, Any]) -> TaskGenerator:
    """A generator spec (ValueError for a fixed-pool source)."""
    src = parse_source(spec)
    if not isinstance(src, TaskGenerator):
        raise ValueError(f"source kind {spec.get('kind')!r} is a fixed pool, not a generator")
    return src


def items_from_source(spec: dict[str, Any]) -> list[Item]:
    return parse_source(spec).items()


__all__ = ["ArithmeticSource", "RGFamilySource", "ReasoningGymSource", "JsonlSource", "ChainSource", "RGLevelsSource",
           "TaskGenerator", "GeneratedArm", "parse_source", "parse_generator", "items_from_source"]
