"""The learner: a Ray Train `TorchTrainer` whose ranks read their own rollout groups from the queue, take
GRPO steps on balanced batches and publish weights with a new version after each step.

Per step, each rank: reads groups (its own, via the consumer group; plus any a dead rank left pending), drops
the stale and the degenerate (counted), picks a batch mixed across categories in the proportions the
controller reports (its arm weights), steps, and ACKs the groups only after the step is committed — so a rank
that dies mid-step leaves its groups pending for another rank to claim. Rank 0 publishes weights, evaluates
greedily on held-out items every `eval_every` steps (the tracked categories; all of them at the last step), and appends metrics to `cur:exp:{name}:trainer`.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from workers.grpo import GRPOConfig


class TrainerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    experiment: str
    redis_url: str
    model_path: str
    steps: int = Field(100, ge=1, description="optimizer steps (= policy versions published)")
    groups_per_step: int = Field(32, ge=1, description="non-degenerate groups per step (per rank)")
    num_workers: int = Field(1, ge=1, description="Ray Train ranks")
    cpus_per_worker: float = Field(1.0, gt=0, description="logical CPUs per rank")
    use_gpu: bool = Field(False, description="train on GPUs")
    max_staleness: int = Field(4, ge=0, description="policy versions a group may lag behind")
    wait_seconds: float = Field(30.0, gt=0, description="longest wait for a full batch before stepping on what came")
    claim_idle_ms: int = Field(60_000, ge=1, description="pending groups idle this long are claimed from a dead rank")
    eval_every: int = Field(10, ge=1, description="steps between evaluations (rank 0)")
    eval_items: list[dict] = Field(default_factory=list, description="held-out items {prompt, answer, category}")
    eval_track: list[str] | None = Field(None, description="categories evaluated every eval_every steps (None: all); "
                                         "the last step evaluates every category")
    eval_max_tokens: int = Field(8, ge=1)
    eval_samples: int = Field(8, ge=1, description="samples per held-out item for the pass rate")
    temperature: float = Field(1.0, ge=0, description="the students' sampling temperature (for the pass rate)")
    checkpoint_every: int = Field(50, ge=1, description="steps between Ray Train checkpoints")
    storage_path: str | None = Field(None, description="where Ray Train keeps checkpoints")
    grpo: GRPOConfig = Field(default_factory=GRPOConfig)


def metrics_key(experiment: str) -> str:
    return f"cur:exp:{experiment}:trainer"


def train_loop(config: dict) -> None:
    import numpy as np
    import ray.train
    import redis
    import torch

    from services.incluster import InClusterClient
    from workers.grpo import grpo_step
    from workers.model import load_policy
    from workers.queue import RolloutQueue, balance
    from workers.warm_start import pass_rates
    from workers.weights import WeightPublisher

    cfg = TrainerConfig.model_validate(config)
    ctx = ray.train.get_context()
    rank = ctx.get_world_rank()
    model, tok = load_policy(cfg.model_path)
    device = ray.train.torch.get_device() if cfg.use_gpu else torch.device("cpu")
    model.to(device)  # every rank loads the same weights; grpo_step all-reduces the gradients itself
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.grpo.lr)
    ref = None
    if cfg.grpo.kl_beta > 0:  # the frozen starting policy, for the KL penalty
        ref = load_policy(cfg.model_path)[0].to(device).eval().requires_grad_(False)
    queue = RolloutQueue(cfg.redis_url, cfg.experiment, max_staleness=cfg.max_staleness)
    client = InClusterClient(cfg.redis_url)
    r = redis.Redis.from_url(cfg.redis_url)
    me = f"trainer-{rank}"
    buffer = []  # deliveries read but not yet used (carried to the next step)
    version = 0
    weights = WeightPublisher(cfg.redis_url, cfg.experiment) if rank == 0 else None
    if weights:
        weights.publish(0, model.state_dict())
    degenerate = 0
    read: dict[str, int] = {}  # groups read per category since the last step (used, degenerate or stale)

    def keep(deliveries: list) -> list:
        # degenerate groups (zero advantage) never train: drop them at once so they do not hold the budget
        nonlocal degenerate
        for d in deliveries:
            read[d.group.category] = read.get(d.group.category, 0) + 1
        dead = [d for d in deliveries if d.group.degenerate]
        queue.discard(dead, "dropped_degenerate")
        degenerate += len(dead)
        return [d for d in deliveries if not d.group.degenerate]

    for step in range(1, cfg.steps + 1):
        t0 = time.perf_counter()
        deadline = time.monotonic() + cfg.wait_seconds
        stale = [d for d in buffer if version - d.group.policy_version > cfg.max_staleness]
        queue.discard(stale, "dropped_stale")  # carried over from earlier steps and now too old
        buffer = [d for d in buffer if d not in stale]
        while len(buffer) < cfg.groups_per_step and time.monotonic() < deadline:
            buffer += keep(queue.claim_stale(me, cfg.claim_idle_ms, current_version=version))
            buffer += keep(queue.read(me, cfg.groups_per_step, block_ms=200, current_version=version))
        t_wait = time.perf_counter() - t0
        arms = {a["name"]: a["weight"] for a in client.state(cfg.experiment)["arms"]}
        idx, _ = balance([d.group for d in buffer], arms, cfg.groups_per_step)
        used = [buffer[i] for i in idx]
        t1 = time.perf_counter()
        m = grpo_step(model, opt, [d.group for d in used], cfg.grpo, tok.pad_token_id, ref_model=ref)
        t_train = time.perf_counter() - t1
        version = step
        # the step is committed: now (and only now) the groups it used are acknowledged
        queue.ack([d.id for d in used])
        buffer = [d for d in buffer if d not in used]
        dropped_now, degenerate, read_now = degenerate, 0, dict(read)
        read.clear()
        if rank == 0:
            weights.publish(version, model.state_dict())
            rec = {"step": step, "version": version, "time": time.time(), "wait_s": t_wait, "train_s": t_train,
                   "groups": len(used), "degenerate_dropped": dropped_now, "loss": m.get("loss", 0.0),
                   "kl": m.get("kl", 0.0), "clip_frac": m.get("clip_frac", 0.0), "tokens": m.get("tokens", 0),
                   "queue": queue.stats(), "arm_weights": arms, "read_by_category": read_now,
                   "mean_reward": float(np.mean([np.mean(d.group.rewards) for d in used])) if used else None}
            if step % cfg.eval_every == 0 or step == cfg.steps:
                # the whole map costs ~4 s on 2 cores and stalls students and trainer alike: mid-run, only the
                # tracked categories; the last step draws the full map
                items = cfg.eval_items if step == cfg.steps or cfg.eval_track is None else [
                    e for e in cfg.eval_items if e["category"] in cfg.eval_track]
                rec["eval_pass"], rec["eval"] = pass_rates(model, tok, items, cfg.eval_max_tokens,
                                                           cfg.eval_samples, cfg.temperature, seed=step)
            r.rpush(metrics_key(cfg.experiment), json.dumps(rec))
        # ray.train.report blocks until Ray Train's controller polls (every ~2 s): call it (on every rank, the
        # same number of times) only with a checkpoint; per-step metrics go to Redis above.
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            ckpt = None
            if rank == 0 and cfg.storage_path:
                d = Path(cfg.storage_path) / f"policy-v{version}"
                model.save_pretrained(d)
                tok.save_pretrained(d)
                ckpt = ray.train.Checkpoint.from_directory(str(d))
            ray.train.report({"step": step, "loss": m.get("loss", 0.0)}, checkpoint=ckpt)


def run_trainer(cfg: TrainerConfig):
    """Blocking: runs the TorchTrainer to completion and returns its Result."""
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    trainer = TorchTrainer(
        train_loop, train_loop_config=cfg.model_dump(),
        scaling_config=ScalingConfig(num_workers=cfg.num_workers, use_gpu=cfg.use_gpu,
                                     resources_per_worker={"CPU": cfg.cpus_per_worker}),
        run_config=RunConfig(name=f"train-{cfg.experiment}", storage_path=cfg.storage_path))
    return trainer.fit()
