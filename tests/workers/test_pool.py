"""The elastic pool on a real multi-node Ray (`ray.cluster_utils.Cluster`): GPU nodes that join get students,
dead students are replaced, scaling down retires students cleanly.

The student here is a small real actor with the rollout actor's lifecycle (run / stop / heartbeat): the pool is
generic over the actor class, and what is under test is the supervision, not generation."""
from __future__ import annotations

import os
import signal
import sys
import threading
import time

import pytest
import ray
from ray import cloudpickle
from ray.cluster_utils import Cluster

from services.keys import NAMESPACE
from workers.pool import pool_name, scale_workers, start_pool

cloudpickle.register_pickle_by_value(sys.modules[__name__])


class Student:
    def __init__(self, worker_id: str, tag: str) -> None:
        self.id, self.tag = worker_id, tag
        self.stop_event = threading.Event()
        self.batches = 0

    def run(self) -> dict:
        while not self.stop_event.wait(0.05):
            self.batches += 1
        return self.heartbeat()

    def stop(self) -> None:
        self.stop_event.set()

    def heartbeat(self) -> dict:
        return {"id": self.id, "pid": os.getpid(), "node": ray.get_runtime_context().get_node_id(),
                "batches": self.batches, "tag": self.tag}


def wait_for(pred, timeout: float = 60.0, what: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def cluster():
    if ray.is_initialized():  # the single-node session Ray; ray_local restarts it for later tests
        ray.shutdown()
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "num_gpus": 0})
    ray.init(address=c.address, namespace=NAMESPACE, log_to_driver=False)
    yield c
    ray.shutdown()
    c.shutdown()


def running(pool) -> dict:
    s = ray.get(pool.status.remote())
    return {k: w for k, w in s["workers"].items() if "error" not in w}


def test_gpu_node_that_joins_gets_a_student(cluster):
    pool = start_pool("gpu-exp", Student, {"tag": "gpu"}, target=1, resources={"num_gpus": 1, "num_cpus": 0},
                      interval=0.2)
    try:
        time.sleep(2)
        s = ray.get(pool.status.remote())
        assert s["live"] == 1 and [w["error"] for w in s["workers"].values()] == ["pending"]  # no GPU yet
        node = cluster.add_node(num_cpus=1, num_gpus=1)
        [w] = wait_for(lambda: list(running(pool).values()), what="a student on the GPU node")
        assert w["node"] == node.node_id
    finally:
        ray.get(pool.shutdown.remote())
        ray.kill(pool)


def test_dead_students_are_replaced_and_scaling_retires_cleanly(cluster):
    pool = start_pool("cpu-exp", Student, {"tag": "cpu"}, target=2, resources={"num_cpus": 0.25}, interval=0.2)
    try:
        first = wait_for(lambda: (r := running(pool)) and len(r) == 2 and r, what="two students")
        victim = next(iter(first.values()))
        os.kill(victim["pid"], signal.SIGKILL)  # a crash, not a polite stop
        after = wait_for(lambda: (r := running(pool)) and len(r) == 2 and victim["id"] not in r and r,
                         what="the dead student's replacement")
        s = ray.get(pool.status.remote())
        assert s["restarts"] == 1 and len(set(after) - set(first)) == 1
        # the CLI path: `curriculum workers scale 1 -e cpu-exp` finds the pool by name on the cluster
        s = scale_workers("cpu-exp", 1)
        assert (s["target"], s["live"], s["retired"], s["retired_clean"]) == (1, 1, 1, 1)
        assert len(running(pool)) == 1
        s = scale_workers("cpu-exp", 3)
        wait_for(lambda: len(running(pool)) == 3, what="scale up to 3")
    finally:
        out = ray.get(pool.shutdown.remote())
        ray.kill(pool)
    assert out["retired"] == 4 and out["restarts"] == 1


def test_scaling_an_unknown_experiment_says_so(cluster):
    with pytest.raises(RuntimeError, match="no worker pool for experiment 'nope'"):
        scale_workers("nope", 2)
    assert pool_name("x") == "pool:x"
