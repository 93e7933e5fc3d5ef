"""Weight sync for small models and the CPU default: tensors in the Ray object store, the version in Redis.

The trainer `publish`es a state dict: it is `ray.put` once, its ObjectRef is held by a named `WeightStore`
actor (so it outlives the call), and `cur:exp:{experiment}:weights:version` is bumped in Redis. Rollout
workers poll that key between batches (one GET) and fetch the tensors only when the version moved. At scale on
GPUs, an NCCL broadcast (as OpenRLHF and verl do) replaces the object store hop; the version protocol stays.
"""
from __future__ import annotations

import ray
import redis

from services.keys import NAMESPACE, weights_actor_name
from services.keys import weights_version_key as version_key


class WeightStore:
    """Holds the ObjectRefs of the latest weight versions (refs are passed wrapped in lists so that Ray
    hands over the reference, not the value)."""

    def __init__(self, keep: int = 2) -> None:
        self.refs: dict[int, ray.ObjectRef] = {}
        self.keep = keep

    def put(self, version: int, wrapped: list) -> None:
        self.refs[version] = wrapped[0]
        for v in sorted(self.refs)[: -self.keep]:
            del self.refs[v]

    def get(self, version: int) -> list:
        return [self.refs.get(version)]

    def latest(self) -> int:
        return max(self.refs, default=-1)


def weight_store(experiment: str):
    return ray.remote(WeightStore).options(name=weights_actor_name(experiment), namespace=NAMESPACE, get_if_exists=True,
                                           lifetime="detached", num_cpus=0).remote()


class WeightPublisher:
    """The trainer's side: one store handle and one Redis connection for the whole run (publish is per step)."""

    def __init__(self, redis_url: str, experiment: str) -> None:
        self.store = weight_store(experiment)
        self.r = redis.Redis.from_url(redis_url)
        self.key = version_key(experiment)

    def publish(self, version: int, state_dict: dict) -> None:
        cpu = {k: v.detach().to("cpu", copy=True) for k, v in state_dict.items()}
        ray.get(self.store.put.remote(version, [ray.put(cpu)]))
        self.r.set(self.key, version)  # only once the tensors are reachable: subscribers never see a dangling version


def publish(redis_url: str, experiment: str, version: int, state_dict: dict) -> None:
    """One-off publish (tests, tools); the trainer keeps a WeightPublisher."""
    WeightPublisher(redis_url, experiment).publish(version, state_dict)


class WeightSubscriber:
    def __init__(self, redis_url: str, experiment: str, version: int = -1) -> None:
        self.r = redis.Redis.from_url(redis_url)
        self.experiment, self.version = experiment, version

    def latest_version(self) -> int:
        v = self.r.get(version_key(self.experiment))
        return int(v) if v is not None else -1

    def poll(self) -> tuple[int, dict] | None:
        """(version, state_dict) when a newer version was published, else None."""
        v = self.latest_version()
        if v <= self.version:
            return None
        ref = ray.get(weight_store(self.experiment).get.remote(v))[0]
        if ref is None:  # already superseded; take it next poll
            return None
        self.version = v
        return v, ray.get(ref)

    def delete(self) -> None:
        self.r.delete(version_key(self.experiment))
        try:
            ray.kill(ray.get_actor(weights_actor_name(self.experiment), namespace=NAMESPACE))
        except ValueError:
            pass
