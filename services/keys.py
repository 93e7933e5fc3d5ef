"""Names shared by every process of a deployment: the Ray namespace, named actors and the Redis key layout.

The one place these strings live. It imports nothing, so every layer may use it (`workers/` included: the
import test, tests/test_imports.py, lists it beside the client modules).

Redis, per experiment, under `cur:exp:{name}:`
  config               JSON {name, strategy, params, group_size, seed, reward_range, created_at}  (services.store)
  log                  stream of owner records (field `r`, JSON), trimmed at each snapshot             (services.store)
  snap                 hash {data, last_id}: the owner's latest snapshot                               (services.store)
  rollouts             stream of finished rollout groups, consumer group `trainers`                    (workers.queue)
  rollouts:dead        dead-letter stream of groups delivered too often                                (workers.queue)
  rollouts:counters    hash of queue counters                                                          (workers.queue)
  trainer              list of per-step trainer metrics (JSON)                                         (workers.trainer)
  weights:version      the latest published policy version                                             (workers.weights)
and the set `cur:experiments` of experiment names.

Ray named actors, all in namespace `curriculum`: `owner:{name}` (services.owner), `pool:{name}`
(workers.pool), `weights:{name}` (workers.weights).
"""
from __future__ import annotations

NAMESPACE = "curriculum"  # the Ray namespace of owners, pools, weight stores (and of drivers that find them)

PREFIX = "cur"
EXPERIMENTS = f"{PREFIX}:experiments"  # set of experiment names


def experiment_key(name: str, part: str) -> str:
    """`cur:exp:{name}:{part}`: one of the experiment's Redis keys (see the table above)."""
    return f"{PREFIX}:exp:{name}:{part}"


def rollouts_key(name: str) -> str:
    return experiment_key(name, "rollouts")


def dead_letter_key(name: str) -> str:
    return experiment_key(name, "rollouts:dead")


def queue_counters_key(name: str) -> str:
    return experiment_key(name, "rollouts:counters")


def trainer_metrics_key(name: str) -> str:
    return experiment_key(name, "trainer")


def weights_version_key(name: str) -> str:
    return experiment_key(name, "weights:version")


def owner_name(name: str) -> str:
    return f"owner:{name}"


def pool_name(name: str) -> str:
    return f"pool:{name}"


def weights_actor_name(name: str) -> str:
    return f"weights:{name}"
