"""drop_experiment leaves nothing of a finished run behind: no owner or weight-store actor, no queue, metrics or
weight version in Redis (the evidence matrix runs many cells on one stack). A neighbour is left untouched."""
import json

import ray
import redis
import torch

from deploy.pipeline import drop_experiment
from services.incluster import InClusterClient
from services.keys import NAMESPACE
from workers.grpo import Group
from workers.queue import RolloutQueue
from workers.trainer import metrics_key
from workers.weights import WeightSubscriber, publish

ITEMS = [{"id": f"q{i}", "prompt": f"{i}+1=", "category": f"d{i % 2}", "answer": str(i + 1)} for i in range(8)]


def actors() -> set[str]:
    return {a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if a["namespace"] == NAMESPACE}


def test_drop_removes_the_run_and_only_that_run(api, redis_url):
    inc, r = InClusterClient(redis_url), redis.Redis.from_url(redis_url)
    before = actors()
    for name in ("done", "neighbour"):
        api.create_experiment(name, "sec", items=ITEMS, group_size=2)
        api.lease(name, 2)  # the owner actor exists once it served a call
        RolloutQueue(redis_url, name).put([Group([1], [[2], [3]], [[-0.1], [-0.2]], [1.0, 0.0], "d0", 0, "q0")])
        publish(redis_url, name, 0, {"w": torch.zeros(2)})
        r.rpush(metrics_key(name), json.dumps({"step": 1}))
    made = actors() - before
    assert len(made) >= 4  # an owner and a weight store per experiment

    drop_experiment(inc, redis_url, "done")

    assert inc.names() == ["neighbour"]
    left = actors() - before
    assert left and all("done" not in a for a in left) and any("neighbour" in a for a in left)
    assert RolloutQueue(redis_url, "done").depth() == 0 and RolloutQueue(redis_url, "neighbour").depth() == 1
    assert WeightSubscriber(redis_url, "done").latest_version() == -1
    assert WeightSubscriber(redis_url, "neighbour").latest_version() == 0
    assert r.llen(metrics_key("done")) == 0 and r.llen(metrics_key("neighbour")) == 1
    drop_experiment(inc, redis_url, "done")  # dropping twice is harmless: a rerun's fresh start does it first
    assert inc.names() == ["neighbour"]
    drop_experiment(inc, redis_url, "neighbour")
