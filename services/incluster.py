"""The in-cluster client: the operations of services.client.CurriculumClient, straight to the owner actors
through the router (no HTTP), for rollout workers and trainers inside the Ray cluster.

Arguments are validated once, here, into the request models of services.schemas (the same bounds and
field-named 422s as the REST edge); those models travel to the owner unchanged. A `ReportRequest` gets its
`rollout_id`s when it is built, before the router's first attempt, so a retried call cannot double-apply.
"""
from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, ValidationError

from curriculum.registry import format_validation_error
from services.errors import ServiceError
from services.router import OwnerRouter
from services.schemas import AddItems, CreateExperiment, LeaseRequest, PatchStrategy, ReportRequest


def validated(model: type[BaseModel], **fields: Any) -> Any:
    """Build a request model; invalid arguments raise ServiceError 422 naming the field (as the REST edge)."""
    try:
        return model(**fields)
    except ValidationError as e:
        msg = "; ".join(f"{loc}: {m}" for loc, m in format_validation_error(e, ""))
        raise ServiceError(422, "validation_error", msg) from None


class InClusterClient:
    """Needs a connected Ray and the controller's Redis URL (argument or CURRICULUM_REDIS_URL)."""

    def __init__(self, redis_url: str | None = None) -> None:
        redis_url = redis_url or os.environ.get("CURRICULUM_REDIS_URL")
        if not redis_url:
            raise ValueError("redis_url: pass the controller's Redis URL or set CURRICULUM_REDIS_URL")
        self.router = OwnerRouter(redis_url)

    def strategies(self) -> list[dict]:
        return self.router.strategies()

    def create_experiment(self, name: str, strategy: str | None = None, params: dict | None = None, *, items=None,
                          source: dict | None = None, group_size: int = 8, seed: int = 0,
                          reward_range: tuple[float, float] = (0.0, 1.0)) -> dict:
        spec = {} if strategy is None else {"strategy": {"name": strategy, "params": params or {}}}
        return self.router.create(CreateExperiment(name=name, **spec, items=items, source=source,
                                                   group_size=group_size, seed=seed, reward_range=reward_range))

    def names(self) -> list[str]:
        return self.router.names()

    def experiments(self) -> list[dict]:
        return [self.router.call(n, "summary") for n in self.router.names()]

    def experiment(self, name: str) -> dict:
        return self.router.call(name, "summary")

    def delete_experiment(self, name: str) -> None:
        self.router.delete(name)

    def add_items(self, name: str, items) -> dict:
        return self.router.call(name, "add_items", validated(AddItems, items=list(items)))

    def patch_strategy(self, name: str, params: dict) -> dict:
        return self.router.call(name, "set_params", validated(PatchStrategy, params=params))

    def lease(self, name: str, size: int, worker: str = "client", lease_seconds: float = 300.0,
              lease_key: str | None = None) -> dict:
        return self.next_batch(name, size, worker=worker, lease_seconds=lease_seconds, lease_key=lease_key)

    def next_batch(self, name: str, size: int, results=None, batch_id: str | None = None, worker: str = "client",
                   lease_seconds: float = 300.0, lease_key: str | None = None) -> dict:
        """Report `results` (if any) and lease the next batch in one call; see CurriculumClient.next_batch."""
        report = {"batch_id": batch_id, "results": list(results)} if results else None
        req = validated(LeaseRequest, size=size, worker=worker, lease_seconds=lease_seconds, lease_key=lease_key,
                        report=report)
        return self.router.call(name, "lease", req)

    def report(self, name: str, results, batch_id: str | None = None) -> dict:
        results = list(results)
        if not results:  # nothing to report: no call, no record
            return {"accepted": 0, "duplicates": 0}
        return self.router.call(name, "report", validated(ReportRequest, batch_id=batch_id, results=results))

    def state(self, name: str) -> dict:
        return self.router.call(name, "state_view")
