"""Request and response models of the REST API (API.md). Validation errors name the field."""
from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from curriculum.events import RewardEvent
from curriculum.experiment import RewardRange
from curriculum.items import Item
from curriculum.registry import DEFAULT_STRATEGY
from services.ids import new_rollout_id

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"


class StrategySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64, description="registered strategy name (GET /v1/strategies)")
    params: dict[str, Any] = Field(default_factory=dict, description="the strategy's hyperparameters")


class CreateExperiment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME_PATTERN, description="experiment name")
    strategy: StrategySpec = Field(default_factory=lambda: StrategySpec.model_validate(copy.deepcopy(DEFAULT_STRATEGY)),
                                   description="the curriculum; omitted = the service's measured default")
    group_size: int = Field(8, ge=1, le=4096, description="default rollouts per item")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="seed of the strategy's RNG")
    items: list[Item] | None = Field(None, description="the item pool (exclusive with source)")
    source: dict[str, Any] | None = Field(None, description="a task source generating the pool (exclusive with items)")
    reward_range: RewardRange = Field((0.0, 1.0), description="[low, high] of the rewards workers report; "
                                      "strategies see them mapped onto [0, 1]")

    @model_validator(mode="after")
    def _one_pool(self) -> CreateExperiment:
        if self.items is not None and self.source is not None:
            raise ValueError("items and source are mutually exclusive")
        return self


class AddItems(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[Item] = Field(min_length=1)


class PatchStrategy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    params: dict[str, Any]


class ReportRequest(BaseModel):
    # Results travel in this model from the edge (or the in-cluster client) to the owner, unchanged: every result
    # has its `rollout_id` once the request is built, before the first attempt, so retries cannot double-apply.
    # (A comment, not a docstring: the OpenAPI document stays as API.md has it.)
    model_config = ConfigDict(extra="forbid")
    batch_id: str | None = Field(None, max_length=256)
    results: list[RewardEvent] = Field(min_length=1, max_length=100_000)

    @model_validator(mode="after")
    def _idempotency_keys(self) -> ReportRequest:
        if not all(r.rollout_id for r in self.results):  # a copy: the caller's objects stay as they were
            self.results = [r if r.rollout_id else r.model_copy(update={"rollout_id": new_rollout_id()})
                            for r in self.results]
        return self


class LeaseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    size: int = Field(ge=1, le=100_000, description="items wanted")
    worker: str = Field("anonymous", min_length=1, max_length=256, description="who leases (for audit)")
    lease_seconds: float = Field(
        300.0, gt=0, le=7 * 86400, description="seconds until an unreported item is eligible again"
    )
    report: ReportRequest | None = Field(None, description="optional: results to report first, in the same call "
                                         "(one round trip per rollout loop; all-or-nothing)")
    lease_key: str | None = Field(None, min_length=1, max_length=256,
                                  description="idempotency key: while that lease lives, the same key returns the same "
                                  "batch instead of leasing more (every rank asks for 'the batch of step N')")


class StrategyRef(BaseModel):
    name: str
    params: dict[str, Any]


class Summary(BaseModel):
    name: str
    strategy: StrategyRef
    group_size: int
    num_items: int
    categories: list[str]
    policy_version: int
    events: int
    created_at: float
    seed: int = 0
    reward_range: tuple[float, float] = (0.0, 1.0)


class ExperimentList(BaseModel):
    experiments: list[Summary]


class BatchItem(BaseModel):
    id: str
    prompt: str
    category: str
    answer: str | None = None
    num_samples: int
    max_tokens: int | None = None
    metadata: dict[str, Any] | None = None


class ReportAck(BaseModel):
    accepted: int
    duplicates: int


class Batch(BaseModel):
    batch_id: str
    policy_version: int
    items: list[BatchItem]
    reported: ReportAck | None = Field(None, description="the ack of `report`, when the request carried one")


class AddItemsAck(BaseModel):
    added: int
    existing: int


class Arm(BaseModel):
    name: str
    weight: float
    value: float | None
    pass_rate: float | None
    items: int
    events: int
    config: dict[str, Any] | None = Field(None, description="the arm's difficulty configuration (generated sources)")


class State(BaseModel):
    strategy: StrategyRef
    events: int
    policy_version: int
    degenerate_ratio: float
    arms: list[Arm]
    details: dict[str, Any]


class StrategyInfo(BaseModel):
    name: str
    description: str
    params: dict[str, Any]


class StrategyList(BaseModel):
    strategies: list[StrategyInfo]


class ErrorBody(BaseModel):
    code: str
    message: str


class Error(BaseModel):
    error: ErrorBody
