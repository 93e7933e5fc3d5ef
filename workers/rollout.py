"""The rollout actor (a student): lease -> generate -> verify -> report -> enqueue, picking up new weights
between batches.

One report call per batch (never one per item). Timings are kept per phase (controller calls, generation,
scoring, queue) so that the run report can split wall time between teacher and students.
"""
from __future__ import annotations

import os
import socket
import threading
import time
import uuid

from pydantic import BaseModel, ConfigDict, Field

from workers.grpo import Group
from workers.verifiers import length_shaped


class RolloutConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    experiment: str
    redis_url: str
    model_path: str = Field(description="policy folder (tiny model, local HF folder or hub name)")
    backend: str = Field("hf", description="generation engine: hf | vllm")
    batch_size: int = Field(32, ge=1, description="items leased per batch")
    temperature: float = Field(1.0, ge=0, description="sampling temperature")
    max_tokens: int = Field(8, ge=1, description="generation budget when the strategy sets none")
    length_weight: float = Field(0.0, ge=0, le=1, description="0: a lease's max_tokens is a hard cap; > 0: generate "
                                 "up to twice it and grade length with that weight (verifiers.length_shaped)")
    lease_seconds: float = Field(120.0, gt=0, description="lease length for items handed to this worker")
    queue_budget: int = Field(256, ge=1, description="pause while the rollout queue holds this many groups")
    max_staleness: int = Field(4, ge=0, description="policy versions a queued group may lag behind")
    seed: int = Field(0, description="sampling seed")
    report_features: bool = Field(True, description="report the backend's per-prompt features (hf: angle, "
                                  "embedding) with each result; the vllm backend has none")


class RolloutWorker:
    def __init__(self, cfg: RolloutConfig | dict, worker_id: str | None = None) -> None:
        from services.incluster import InClusterClient
        from workers.backends import make_backend
        from workers.queue import RolloutQueue
        from workers.verifiers import Verifier
        from workers.weights import WeightSubscriber

        self.cfg = RolloutConfig.model_validate(cfg)
        self.id = worker_id or f"rollout-{uuid.uuid4().hex[:6]}"
        self.client = InClusterClient(self.cfg.redis_url)
        self.backend = make_backend(self.cfg.backend, self.cfg.model_path)
        self.queue = RolloutQueue(self.cfg.redis_url, self.cfg.experiment, max_staleness=self.cfg.max_staleness)
        self.verifier = Verifier()
        self.weights = WeightSubscriber(self.cfg.redis_url, self.cfg.experiment)
        self._stop = threading.Event()
        self.stats = {"batches": 0, "groups": 0, "rollouts": 0, "controller_s": 0.0, "generate_s": 0.0,
                      "score_s": 0.0, "queue_s": 0.0, "waiting_s": 0.0, "weight_updates": 0,
                      "generation_errors": 0, "by_category": {}}
        self.last_error: str | None = None
        self.last_beat = time.time()
        self.node = socket.gethostname()

    def _sync_weights(self) -> None:
        got = self.weights.poll()
        if got:
            self.backend.update_weights(got[1], got[0])
            self.stats["weight_updates"] += 1

    def step(self) -> int:
        """One batch; returns the number of groups produced (0 when nothing was leased)."""
        c, s = self.cfg, self.stats
        self._sync_weights()
        t = time.perf_counter()
        while not self._stop.is_set() and not self.queue.wait_for_room(c.queue_budget, timeout=0.5):
            pass  # backpressure: trainers are behind
        s["waiting_s"] += time.perf_counter() - t
        t = time.perf_counter()
        batch = self.client.lease(c.experiment, c.batch_size, worker=self.id, lease_seconds=c.lease_seconds)
        s["controller_s"] += time.perf_counter() - t
        items = batch["items"]
        if not items:
            return 0
        t = time.perf_counter()
        try:
            cap = max(it.get("max_tokens") or c.max_tokens for it in items)
            gens = self.backend.generate([it["prompt"] for it in items], [it["num_samples"] for it in items],
                                         2 * cap if c.length_weight > 0 else cap, c.temperature,
                                         seed=c.seed + s["batches"])
        except Exception as e:  # e.g. a prompt longer than the engine's context: the batch's leases expire and
            s["generation_errors"] += 1  # its items go back to the pool; the worker lives on and says why
            self.last_error = f"{type(e).__name__}: {e}"[:500]
            return 0
        finally:
            s["generate_s"] += time.perf_counter() - t
        t = time.perf_counter()
        version = self.backend.version
        results, groups = [], []
        for it, comps in zip(items, gens):
            rid = uuid.uuid4().hex
            rewards = [self.verifier.score({**it, "sample_key": f"{rid}/{k}"}, x.text) for k, x in enumerate(comps)]
            if c.length_weight > 0:
                rewards = [length_shaped(r, len(x.token_ids), it.get("max_tokens"), c.length_weight)
                           for r, x in zip(rewards, comps)]
            results.append({"item_id": it["id"], "rewards": rewards, "policy_version": version, "rollout_id": rid,
                            "signals": {"tokens": float(sum(len(x.token_ids) for x in comps))}})
            if c.report_features and comps and comps[0].features:
                results[-1]["features"] = comps[0].features
            groups.append(Group(comps[0].prompt_ids, [x.token_ids for x in comps], [x.logprobs for x in comps],
                                rewards, it["category"], version, it["id"], {"rollout_id": rid}, c.temperature))
        s["score_s"] += time.perf_counter() - t
        t = time.perf_counter()
        self.client.report(c.experiment, results, batch["batch_id"])
        s["controller_s"] += time.perf_counter() - t
        t = time.perf_counter()
        self.queue.put(groups)
        s["queue_s"] += time.perf_counter() - t
        s["batches"] += 1
        s["groups"] += len(groups)
        s["rollouts"] += sum(len(g.completions) for g in groups)
        for g in groups:  # where the rollouts went (e.g. the share spent on a noisy category)
            s["by_category"][g.category] = s["by_category"].get(g.category, 0) + len(g.completions)
        self.last_beat = time.time()
        return len(groups)

    def run(self) -> dict:
        while not self._stop.is_set():
            if self.step() == 0:
                self._stop.wait(0.5)
            self.last_beat = time.time()
        return self.heartbeat()

    def stop(self) -> None:
        self._stop.set()

    def heartbeat(self) -> dict:
        return {"id": self.id, "node": self.node, "pid": os.getpid(), "time": self.last_beat,
                "policy_version": self.backend.version, "verifier_errors": self.verifier.errors,
                "last_error": self.last_error or self.verifier.last_error, **self.stats}
