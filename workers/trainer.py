"""The learner: a Ray Train `TorchTrainer` whose ranks read their own rollout groups from the queue, take
GRPO steps on balanced batches and publish weights with a new version after each step.

Per step, each rank: reads groups (its own, via the consumer group; plus any a dead rank left pending), drops
the stale and the degenerate (counted), picks a batch mixed across categories in the proportions the
controller reports (its arm weights), steps, and ACKs the groups only after the step is committed — so a rank
that dies mid-step leaves its groups pending for another rank to claim. Rank 0 publishes weights, evaluates
greedily on held-out items every `eval_every` steps (the tracked categories; all of them at the last step), and
appends metrics to `cur:exp:{name}:trainer` (services.keys).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.keys import trainer_metrics_key as metrics_key
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
    eval_seed: int = Field(0, description="the run's seed: evaluation k samples with seed (eval_seed, k), so "
                                          "strategies of one seed share their evaluation noise (paired) and seeds "
                                          "do not")
    temperature: float = Field(1.0, ge=0, description="the students' sampling temperature (for the pass rate)")
    rollout_budget: int | None = Field(None, ge=1, description="stop after the step at which the students have "
                                       "generated this many samples (the queue's produced_samples; the step "
                                       "evaluates every category), or at `steps`, whichever comes first")
    checkpoint_every: int = Field(50, ge=1, description="steps between Ray Train checkpoints")
    storage_path: str | None = Field(None, description="where Ray Train keeps checkpoints")
    grpo: GRPOConfig = Field(default_factory=GRPOConfig)
    order_log_dir: str | None = Field(None, description="log each step's groups, parameters and AdamW state here "
                                      "for sample-order estimation (workers.order_log; ~8 MB a step on the tiny "
                                      "model; one rank, no KL penalty)")

    @model_validator(mode="after")
    def _order_log(self) -> TrainerConfig:
        if self.order_log_dir and (self.num_workers > 1 or self.grpo.kl_beta > 0):
            raise ValueError("order_log_dir needs num_workers = 1 and kl_beta = 0 (the replays model neither)")
        return self


class StepBuffer:
    """One rank's groups between the queue and the optimizer: read (its own, plus any a dead rank left pending),
    dropped when degenerate or stale (counted), balanced across categories, and acknowledged only once the step
    that used them is committed."""

    def __init__(self, queue, consumer: str, cfg: TrainerConfig) -> None:
        self.queue, self.me, self.cfg = queue, consumer, cfg
        self.buffer: list = []  # deliveries read but not yet used (carried to the next step)
        self.degenerate = 0
        self.read: dict[str, int] = {}  # groups read per category since the last step (used, degenerate or stale)

    def _keep(self, deliveries: list) -> list:
        # degenerate groups (zero advantage) never train: drop them at once so they do not hold the budget
        for d in deliveries:
            self.read[d.group.category] = self.read.get(d.group.category, 0) + 1
        dead = [d for d in deliveries if d.group.degenerate]
        self.queue.discard(dead, "dropped_degenerate")
        self.degenerate += len(dead)
        return [d for d in deliveries if not d.group.degenerate]

    def fill(self, version: int) -> float:
        """Read until a step's worth of groups is buffered or `wait_seconds` pass; returns the seconds waited."""
        cfg, t0 = self.cfg, time.perf_counter()
        deadline = time.monotonic() + cfg.wait_seconds
        stale = [d for d in self.buffer if version - d.group.policy_version > cfg.max_staleness]
        self.queue.discard(stale, "dropped_stale")  # carried over from earlier steps and now too old
        self.buffer = [d for d in self.buffer if d not in stale]
        while len(self.buffer) < cfg.groups_per_step and time.monotonic() < deadline:
            self.buffer += self._keep(self.queue.claim_stale(self.me, cfg.claim_idle_ms, current_version=version))
            self.buffer += self._keep(self.queue.read(self.me, cfg.groups_per_step, block_ms=200,
                                                      current_version=version))
        return time.perf_counter() - t0

    def take(self, arms: dict[str, float]) -> list:
        """A batch mixed across categories in the proportions of the controller's arm weights."""
        from workers.queue import balance

        idx, _ = balance([d.group for d in self.buffer], arms, self.cfg.groups_per_step)
        return [self.buffer[i] for i in idx]

    def commit(self, used: list) -> tuple[int, dict[str, int]]:
        """The step is committed: now (and only now) the groups it used are acknowledged. Returns the step's
        (degenerate groups dropped, groups read per category) and starts counting the next step."""
        self.queue.ack([d.id for d in used])
        self.buffer = [d for d in self.buffer if d not in used]
        dropped, read = self.degenerate, dict(self.read)
        self.degenerate = 0
        self.read.clear()
        return dropped, read


def load_models(cfg: TrainerConfig):
    """(policy, tokenizer, frozen reference policy or None, device); every rank loads the same weights."""
    import ray.train
    import torch

    from workers.model import load_policy

    model, tok = load_policy(cfg.model_path)
    device = ray.train.torch.get_device() if cfg.use_gpu else torch.device("cpu")
    model.to(device)  # grpo_step all-reduces the gradients itself
    ref = None
    if cfg.grpo.kl_beta > 0:  # the frozen starting policy, for the KL penalty
        ref = load_policy(cfg.model_path)[0].to(device).eval().requires_grad_(False)
    return model, tok, ref


def step_record(step: int, t_wait: float, t_train: float, used: list, dropped: int, read: dict, m: dict,
                queue_stats: dict, arms: dict) -> dict:
    import numpy as np

    return {"step": step, "version": step, "time": time.time(), "wait_s": t_wait, "train_s": t_train,
            "groups": len(used), "degenerate_dropped": dropped, "loss": m.get("loss", 0.0),
            "kl": m.get("kl", 0.0), "clip_frac": m.get("clip_frac", 0.0), "tokens": m.get("tokens", 0),
            "queue": queue_stats, "arm_weights": arms, "read_by_category": read,
            "mean_reward": float(np.mean([np.mean(d.group.rewards) for d in used])) if used else None}


def eval_sampling_seed(run_seed: int, index: int) -> int:
    """The sampling seed of evaluation `index` of a run of seed `run_seed`: independent of the step number."""
    import numpy as np

    return int(np.random.SeedSequence([run_seed, index, 7207]).generate_state(1)[0])


def evaluate(cfg: TrainerConfig, step: int, model, tok, last: bool) -> dict:
    """Pass rate and greedy accuracy on held-out items. The whole map costs ~4 s on 2 cores and stalls students
    and trainer alike: mid-run, only the tracked categories; the last step draws the full map."""
    from workers.warm_start import pass_rates

    items = cfg.eval_items if last or cfg.eval_track is None else [
        e for e in cfg.eval_items if e["category"] in cfg.eval_track]
    eval_pass, greedy = pass_rates(model, tok, items, cfg.eval_max_tokens, cfg.eval_samples, cfg.temperature,
                                   seed=eval_sampling_seed(cfg.eval_seed, -(-step // cfg.eval_every)))
    return {"eval_pass": eval_pass, "eval": greedy}


def budget_spent(cfg: TrainerConfig, queue) -> bool:
    """Whether the rollout budget is spent, agreed by every rank (each reads the shared counter at its own moment,
    so rank 0's reading is broadcast: all ranks stop after the same step)."""
    import torch
    import torch.distributed as dist

    if cfg.rollout_budget is None:
        return False
    flag = torch.tensor([int(queue.stats().get("produced_samples", 0) >= cfg.rollout_budget)])
    if dist.is_available() and dist.is_initialized():
        dist.broadcast(flag, src=0)
    return bool(flag.item())


def report_checkpoint(cfg: TrainerConfig, step: int, rank: int, model, tok, m: dict, last: bool) -> None:
    """ray.train.report blocks until Ray Train's controller polls (every ~2 s): call it (on every rank, the same
    number of times) only with a checkpoint; per-step metrics go to Redis."""
    import ray.train

    if step % cfg.checkpoint_every != 0 and not last:
        return
    ckpt = None
    if rank == 0 and cfg.storage_path:
        d = Path(cfg.storage_path) / f"policy-v{step}"
        model.save_pretrained(d)
        tok.save_pretrained(d)
        ckpt = ray.train.Checkpoint.from_directory(str(d))
    ray.train.report({"step": step, "loss": m.get("loss", 0.0)}, checkpoint=ckpt)


def train_loop(config: dict) -> None:
    import ray.train
    import redis
    import torch

    from services.incluster import InClusterClient
    from workers.order_log import StepLogger, logged_grpo_step
    from workers.queue import RolloutQueue
    from workers.weights import WeightPublisher

    cfg = TrainerConfig.model_validate(config)
    rank = ray.train.get_context().get_world_rank()
    model, tok, ref = load_models(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.grpo.lr)
    queue = RolloutQueue(cfg.redis_url, cfg.experiment, max_staleness=cfg.max_staleness)
    groups = StepBuffer(queue, f"trainer-{rank}", cfg)
    client = InClusterClient(cfg.redis_url)
    r = redis.Redis.from_url(cfg.redis_url)
    weights = WeightPublisher(cfg.redis_url, cfg.experiment) if rank == 0 else None
    if weights:
        weights.publish(0, model.state_dict())
    logger = StepLogger(cfg.order_log_dir, cfg.grpo, tok.pad_token_id) if cfg.order_log_dir else None
    for step in range(1, cfg.steps + 1):  # the policy version is step - 1 until this step commits
        t_wait = groups.fill(version=step - 1)
        arms = {a["name"]: a["weight"] for a in client.state(cfg.experiment)["arms"]}
        used = groups.take(arms)
        t1 = time.perf_counter()
        m = logged_grpo_step(model, opt, [d.group for d in used], cfg.grpo, tok.pad_token_id, logger, ref_model=ref)
        t_train = time.perf_counter() - t1
        dropped, read = groups.commit(used)
        last = step == cfg.steps or budget_spent(cfg, queue)
        if weights:
            weights.publish(step, model.state_dict())
            rec = step_record(step, t_wait, t_train, used, dropped, read, m, queue.stats(), arms)
            if step % cfg.eval_every == 0 or last:
                rec.update(evaluate(cfg, step, model, tok, last))
            r.rpush(metrics_key(cfg.experiment), json.dumps(rec))
        report_checkpoint(cfg, step, rank, model, tok, m, last)
        if last:
            break
    if logger:
        logger.finish(model)


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
