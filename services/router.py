"""OwnerRouter: finds (or restores) experiment owners and forwards operations to them.

Used by the HTTP ingress (services.routes) and by the in-cluster client (services.incluster), so both paths
share one implementation. Requests travel as the typed models of services.schemas, unchanged, to the owner.
Stateless apart from a cache of actor handles: any number of ingress replicas can run it side by side.
"""
from __future__ import annotations

import os
import time
from typing import Any

import ray
from pydantic import ValidationError

from curriculum.items import Item
from curriculum.registry import InvalidParams, describe_strategies, validate_params
from services.errors import ServiceError, not_found
from services.keys import NAMESPACE, owner_name
from services.owner import ExperimentOwner
from services.schemas import CreateExperiment
from services.store import ExperimentStore

OwnerActor = ray.remote(ExperimentOwner)
OWNER_LOST = (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError)
RETRY_SECONDS = 30.0  # how long a call waits for a crashed owner to come back
MAX_PENDING = int(os.environ.get("CURRICULUM_OWNER_MAX_PENDING", 512))  # owner calls queued from one process
# before callers get 429 (backpressure instead of an unbounded queue)


def too_busy(name: str) -> ServiceError:
    return ServiceError(429, "too_many_requests", f"the owner of {name!r} has too many calls queued; retry later")


class OwnerRouter:
    def __init__(self, redis_url: str, snapshot_every: int = 1000, snapshot_seconds: float = 30.0) -> None:
        self.store = ExperimentStore(redis_url)
        self.redis_url = redis_url
        self.snapshot = (snapshot_every, snapshot_seconds)
        self._owners: dict[str, Any] = {}

    # -- owners --------------------------------------------------------------------------------
    def owner(self, name: str, restore: bool = True):
        h = self._owners.get(name)
        if h is not None:
            return h
        try:
            h = ray.get_actor(owner_name(name), namespace=NAMESPACE)
        except ValueError:
            if not restore or self.store.config(name) is None:
                raise not_found(name) from None
            # get_if_exists: two replicas restoring the same experiment end up with one owner
            h = OwnerActor.options(name=owner_name(name), namespace=NAMESPACE, lifetime="detached",
                                   get_if_exists=True, max_restarts=-1, num_cpus=0,
                                   max_pending_calls=MAX_PENDING).remote(
                name, self.redis_url, *self.snapshot)
        self._owners[name] = h
        return h

    def call_ref(self, name: str, method: str, *args):
        try:
            return getattr(self.owner(name), method).remote(*args)
        except ray.exceptions.PendingCallsLimitExceeded:
            raise too_busy(name) from None

    def _lost(self, name: str, deadline: float) -> None:
        """The owner's actor died or restarts: forget its handle; past the deadline, answer 503."""
        self._owners.pop(name, None)
        if time.monotonic() > deadline:
            raise ServiceError(503, "owner_unavailable", f"the owner of {name!r} is restarting; retry") from None

    def call(self, name: str, method: str, *args):
        """Synchronous owner call; waits out an owner restart (records are idempotent by rollout_id)."""
        deadline = time.monotonic() + RETRY_SECONDS
        while True:
            try:
                return ServiceError.unwrap(ray.get(self.call_ref(name, method, *args)))
            except OWNER_LOST:
                self._lost(name, deadline)
                time.sleep(0.2)

    async def acall(self, name: str, method: str, *args):
        import asyncio

        deadline = time.monotonic() + RETRY_SECONDS
        while True:
            try:
                return ServiceError.unwrap(await self.call_ref(name, method, *args))
            except OWNER_LOST:
                self._lost(name, deadline)
                await asyncio.sleep(0.2)

    # -- experiments ---------------------------------------------------------------------------
    def prepare(self, req: CreateExperiment) -> tuple[dict, list[dict]]:
        """Validate a create request completely (strategy, params, pool) before anything is written."""
        try:
            params = validate_params(req.strategy.name, req.strategy.params)
        except InvalidParams as e:
            raise ServiceError(422, "invalid_strategy", str(e)) from None
        generator = None
        if req.source is not None:
            items, generator = pool_from_source(req.source)
        else:
            items = req.items or []
        ids = set()
        for k, it in enumerate(items):
            if it.id in ids:
                raise ServiceError(422, "duplicate_item", f"items[{k}].id: duplicate item id {it.id!r}")
            ids.add(it.id)
        config = {"name": req.name, "strategy": req.strategy.name, "params": params.model_dump(mode="json"),
                  "group_size": req.group_size, "seed": req.seed, "reward_range": list(req.reward_range)}
        if generator is not None:  # the owner makes the items on demand (bounded pool per arm)
            config["generator"] = generator
        return config, [it.model_dump(mode="json", exclude_defaults=True) for it in items]

    def create(self, req: CreateExperiment) -> dict:
        config, items = self.prepare(req)
        if not self.store.create(config, items):
            raise ServiceError(409, "already_exists", f"name: experiment {req.name!r} already exists")
        return self.call(req.name, "summary")

    def names(self) -> list[str]:
        return self.store.names()

    def delete(self, name: str) -> None:
        if self.store.config(name) is None:
            raise not_found(name)
        try:
            ray.kill(ray.get_actor(owner_name(name), namespace=NAMESPACE), no_restart=True)
        except ValueError:
            pass
        self._owners.pop(name, None)
        self.store.delete(name)

    @staticmethod
    def strategies() -> list[dict]:
        return describe_strategies()


def pool_from_source(spec: dict) -> tuple[list[Item], dict | None]:
    """(items, None) of a fixed-pool source, or ([], the validated spec) of a generator source; 422 for a bad one."""
    try:
        from curriculum.sources import TaskGenerator, parse_source
    except ImportError:
        raise ServiceError(422, "invalid_source", "source: task sources are not available in this build") from None
    try:
        src = parse_source(spec)
        if isinstance(src, TaskGenerator):
            return [], src.model_dump(mode="json")
        return src.items(), None
    except ValidationError as e:
        msg = "; ".join(f"source.{'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors())
        raise ServiceError(422, "invalid_source", msg) from None
    except (ValueError, KeyError, OSError) as e:
        raise ServiceError(422, "invalid_source", f"source: {e}") from None
