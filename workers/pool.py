"""The elastic pool: a supervisor that keeps `target` rollout actors alive.

It reconciles every `interval` seconds: dead actors (their `run()` call failed) are replaced, missing ones are
started — with the resources given (e.g. {"num_gpus": 1} on GPU clusters, so that pending actors make the
KubeRay autoscaler add a rollout-gpu node, and a node that joins gets a student), and extras are retired
cleanly (`stop()`, wait for `run()` to return, then kill). `set_target(n)` changes the size while a run goes
on; `curriculum workers scale N` calls it through `scale_workers`.
"""
from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import ray

from services.keys import NAMESPACE, pool_name


class WorkerPool:
    def __init__(self, actor_cls: type, actor_kwargs: dict, target: int, resources: dict | None = None,
                 interval: float = 1.0, stop_timeout: float = 60.0) -> None:
        self.cls = ray.remote(actor_cls) if not hasattr(actor_cls, "remote") else actor_cls
        self.kwargs, self.target = actor_kwargs, target
        self.resources = resources or {"num_cpus": 0.5}
        self.interval, self.stop_timeout = interval, stop_timeout
        self.live: dict[str, dict[str, Any]] = {}  # id -> {actor, run, started}
        self.restarts = self.retired = self.retired_clean = 0
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _start_one(self) -> None:
        wid = f"rollout-{uuid.uuid4().hex[:6]}"
        actor = self.cls.options(max_concurrency=4, **self.resources).remote(worker_id=wid, **self.kwargs)
        self.live[wid] = {"actor": actor, "run": actor.run.remote(), "started": time.time()}

    def _retire(self, wid: str) -> None:
        w = self.live.pop(wid)
        try:
            w["actor"].stop.remote()
            done, _ = ray.wait([w["run"]], timeout=self.stop_timeout)
            self.retired_clean += bool(done)  # run() returned: its last batch was finished and reported
        finally:
            ray.kill(w["actor"])
        self.retired += 1

    def reconcile(self) -> None:
        with self.lock:
            for wid, w in list(self.live.items()):
                done, _ = ray.wait([w["run"]], timeout=0)
                if done:  # run() ended without being asked to: the actor died (or crashed)
                    try:
                        ray.get(done[0])
                    except Exception:
                        pass
                    self.live.pop(wid)
                    self.restarts += 1
            while len(self.live) < self.target:
                self._start_one()
            while len(self.live) > self.target:
                self._retire(sorted(self.live, key=lambda k: self.live[k]["started"])[-1])

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.reconcile()
            except Exception:  # keep supervising; the next tick retries
                pass
            self._stop.wait(self.interval)

    def set_target(self, n: int) -> int:
        if n < 0:
            raise ValueError("target must be >= 0")
        self.target = n
        self.reconcile()
        return n

    def status(self) -> dict:
        with self.lock:
            live = list(self.live.items())
        refs = {wid: w["actor"].heartbeat.remote() for wid, w in live}
        if refs:  # one wait for all, not 2 s each
            ray.wait(list(refs.values()), num_returns=len(refs), timeout=2)
        beats = {}
        for wid, ref in refs.items():
            try:
                beats[wid] = ray.get(ref, timeout=0)
            except ray.exceptions.GetTimeoutError:  # not placed yet: waiting for resources (e.g. a GPU node)
                beats[wid] = {"id": wid, "error": "pending"}
            except Exception as e:
                beats[wid] = {"id": wid, "error": type(e).__name__}
        return {"target": self.target, "live": len(live), "restarts": self.restarts, "retired": self.retired,
                "retired_clean": self.retired_clean, "workers": beats}

    def shutdown(self) -> dict:
        self._stop.set()
        self.thread.join(timeout=5)
        with self.lock:
            for wid in list(self.live):
                self._retire(wid)
        return {"retired": self.retired, "restarts": self.restarts}


def start_pool(experiment: str, actor_cls: type, actor_kwargs: dict, target: int, resources: dict | None = None,
               interval: float = 1.0):
    """The named supervisor actor of an experiment (threaded, so status/scale calls run beside its loop)."""
    return ray.remote(WorkerPool).options(name=pool_name(experiment), namespace=NAMESPACE, max_concurrency=8,
                                          num_cpus=0).remote(actor_cls, actor_kwargs, target, resources, interval)


def scale_workers(experiment: str, n: int, address: str | None = "auto") -> dict:
    """Change the number of rollout actors of a running experiment (connects to the cluster if needed)."""
    if not ray.is_initialized():
        ray.init(address=address, namespace=NAMESPACE, log_to_driver=False)
    try:
        pool = ray.get_actor(pool_name(experiment), namespace=NAMESPACE)
    except ValueError:
        raise RuntimeError(f"no worker pool for experiment {experiment!r} on this cluster") from None
    ray.get(pool.set_target.remote(n))
    return ray.get(pool.status.remote())
