"""The pipeline of `curriculum run` (and of the Ray job, deploy.job): warm-start the policy, start the stack,
run one training per strategy (an elastic pool of rollout actors + a Ray Train GRPO trainer, under the
controller), write the report. No CLI library here: deploy.cmd_run registers the command."""
from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

from rich.live import Live

from deploy.config import RunConfig, StrategyChoice, eval_items, load_config, target_levels
from deploy.report import run_record, write_report
from deploy.views import console, eval_line, print_summary, progress_table, warm_table


def prepare_policy(cfg: RunConfig, out: Path) -> tuple[str, dict]:
    """The starting policy and its pass-rate map ({"pass_rate", "greedy", "checksum"} per category). The tiny
    model is built, SFT-warm-started and measured in a child process with pinned numerics
    (workers.warm_start_job: the same map on every machine), or taken from the cache. The weights' cache key leaves
    out the source's noise fields (the SFT problems do not depend on them), so every noise variant starts from the
    same weights; each held-out set gets its own map. cfg.model_path (a real model) is measured as it is. A warm
    start shipped with the code (deploy.warm_cache: the main job's default) fills an empty cache entry."""
    from deploy.warm_cache import adopt
    from workers.warm_start_job import WarmStartJob, warm_start_pinned

    evals = eval_items(cfg)
    weights_key, map_key = warm_keys(cfg, evals)
    folder = Path(cfg.warm_start_cache or out / "policy-init").resolve()
    if cfg.warm_start_cache:
        folder = folder / weights_key
    map_file = f"pass_rates-{map_key}.json"
    if cfg.warm_start_cache and not cfg.model_path and not (folder / "model.safetensors").exists():
        adopt(weights_key, folder)
    if (folder / map_file).exists() and cfg.warm_start_cache:
        return cfg.model_path or str(folder), json.loads((folder / map_file).read_text())
    trained = cfg.warm_start_cache and (folder / "model.safetensors").exists()
    job = WarmStartJob(model=cfg.model.model_dump(), warm_start=cfg.warm_start.model_dump(), source=cfg.source,
                       model_path=cfg.model_path or (str(folder) if trained else None), evals=evals,
                       max_tokens=cfg.max_tokens, samples=cfg.group_size, temperature=cfg.temperature,
                       folder=str(folder), map_file=map_file)
    warm = warm_start_pinned(job)
    return cfg.model_path or str(folder), warm


def warm_keys(cfg: RunConfig, evals: list[dict]) -> tuple[str, str]:
    """(weights' cache key, map's key) of a run's warm start: what the SFT run and the measurement depend on."""
    from workers.warm_start_job import PINNED_ENV

    sft_source = {k: v for k, v in cfg.source.items() if not k.startswith("noise")}
    weights_key = _digest([cfg.model.model_dump(), cfg.warm_start.model_dump(), sft_source, cfg.model_path,
                           PINNED_ENV])
    map_key = _digest([[e["prompt"] for e in evals], cfg.max_tokens, cfg.group_size, cfg.temperature,
                       cfg.source.get("noise"), cfg.source.get("noise_fraction")])
    return weights_key, map_key


def _digest(obj) -> str:
    import hashlib

    return hashlib.sha1(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:12]


def drop_experiment(client, redis_url: str, name: str) -> None:
    """Remove an experiment with everything of it in Redis: owner, queue, trainer metrics and weight versions."""
    import redis

    from workers.queue import RolloutQueue
    from workers.trainer import metrics_key
    from workers.weights import WeightSubscriber

    if name in client.names():
        client.delete_experiment(name)
    RolloutQueue(redis_url, name).delete()
    WeightSubscriber(redis_url, name).delete()
    redis.Redis.from_url(redis_url).delete(metrics_key(name))


def fresh_experiment(client, stack, name: str, strategy: StrategyChoice, cfg: RunConfig) -> None:
    """A rerun under the same name starts clean."""
    drop_experiment(client, stack.redis_url, name)
    client.create_experiment(name, strategy.name, strategy.params, source=cfg.source, group_size=cfg.group_size,
                             seed=cfg.seed)


def trainer_config(cfg: RunConfig, name: str, redis_url: str, policy: str, out: Path, targets: list[str]):
    from workers.trainer import TrainerConfig

    return TrainerConfig(experiment=name, redis_url=redis_url, model_path=policy, steps=cfg.train_steps,
                         rollout_budget=cfg.rollout_budget, groups_per_step=cfg.groups_per_step,
                         num_workers=cfg.trainer_workers,
                         max_staleness=cfg.max_staleness, eval_every=cfg.eval_every, eval_items=eval_items(cfg),
                         eval_track=targets or None,
                         eval_max_tokens=cfg.max_tokens, eval_samples=cfg.group_size, temperature=cfg.temperature,
                         eval_seed=cfg.seed,
                         use_gpu=bool(cfg.trainer_gpus), storage_path=str((out / "checkpoints" / name).resolve()),
                         grpo=cfg.grpo)


def start_rollout_pool(cfg: RunConfig, name: str, redis_url: str, policy: str):
    """The elastic pool of rollout actors (GPU ones when cfg.rollout_gpus > 0)."""
    from workers.pool import start_pool
    from workers.rollout import RolloutConfig, RolloutWorker

    rcfg = RolloutConfig(experiment=name, redis_url=redis_url, model_path=policy, backend=cfg.backend,
                         batch_size=cfg.rollout_batch, temperature=cfg.temperature, max_tokens=cfg.max_tokens,
                         queue_budget=cfg.queue_budget or 2 * cfg.groups_per_step * cfg.trainer_workers,
                         max_staleness=cfg.max_staleness, seed=cfg.seed)
    resources = {"num_gpus": cfg.rollout_gpus, "num_cpus": 1} if cfg.rollout_gpus else {"num_cpus": 0.5}
    return start_pool(name, RolloutWorker, {"cfg": rcfg.model_dump()}, cfg.rollout_workers, resources)


def start_trainer(tcfg) -> tuple[threading.Thread, dict[str, Any]]:
    """Ray Train in a thread of this driver; its result (or error) lands in the returned dict."""
    from workers.trainer import run_trainer

    result: dict[str, Any] = {}

    def fit() -> None:
        try:
            result["fit"] = run_trainer(tcfg)
        except Exception as e:  # surfaced by run_one, after the pool is shut down
            result["error"] = e

    thread = threading.Thread(target=fit, daemon=True)
    thread.start()
    return thread, result


def follow(name: str, cfg: RunConfig, trainer: threading.Thread, client, redis_url: str, t0: float) -> list[dict]:
    """Show progress while the trainer runs; return its per-step history (one line per evaluation, too)."""
    import redis

    from workers.trainer import metrics_key

    r, key = redis.Redis.from_url(redis_url), metrics_key(name)
    history: list[dict] = []
    with Live(console=console, refresh_per_second=2) as live:
        while trainer.is_alive():
            trainer.join(1.0)
            new = [json.loads(x) for x in r.lrange(key, len(history), -1)]
            history += new
            for h in new:
                if "eval" in h:
                    console.print(eval_line(name, cfg, h, time.time() - t0))
            live.update(progress_table(name, cfg, history, client.state(name), time.time() - t0))
        history += [json.loads(x) for x in r.lrange(key, len(history), -1)]
    return history


def run_one(cfg: RunConfig, strategy: StrategyChoice, stack, policy: str, out: Path, targets: list[str]) -> dict:
    """One training run under one strategy; returns its metrics. Mid-run evaluations cover the target levels."""
    import ray

    from services.incluster import InClusterClient
    from workers.queue import RolloutQueue
    from workers.weights import WeightSubscriber

    name = f"{cfg.name}-{strategy.name}"
    client = InClusterClient(stack.redis_url)
    fresh_experiment(client, stack, name, strategy, cfg)
    t0 = time.time()
    trainer, result = start_trainer(trainer_config(cfg, name, stack.redis_url, policy, out, targets))
    # workers start once version 0 is published, so the first rollouts use the warm-started policy
    sub = WeightSubscriber(stack.redis_url, name)
    while sub.latest_version() < 0 and trainer.is_alive():
        time.sleep(0.2)
    pool = start_rollout_pool(cfg, name, stack.redis_url, policy)
    history = follow(name, cfg, trainer, client, stack.redis_url, t0)
    status = ray.get(pool.status.remote())
    ray.get(pool.shutdown.remote())
    ray.kill(pool)
    wall = time.time() - t0
    if "error" in result:
        raise RuntimeError(f"trainer failed: {result['error']}") from result["error"]
    return run_record(strategy.model_dump(), name, t0, wall, history, client.state(name), status,
                      RolloutQueue(stack.redis_url, name).stats())


def _interrupt(*_) -> None:
    raise KeyboardInterrupt


def run_pipeline(config_path: str | None = None, address: str | None = None,
                 overrides: dict[str, Any] | None = None) -> dict:
    """The main job (also the Ray job entry point, deploy.job)."""
    from deploy.local import LocalStack

    cfg = load_config(config_path, overrides)
    if threading.current_thread() is threading.main_thread():  # SIGTERM stops like Ctrl-C: Ray and Redis go too
        signal.signal(signal.SIGTERM, _interrupt)
    out = Path(cfg.out).resolve()  # Ray workers run in other folders
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    with console.status(f"warm-starting the policy ({cfg.warm_start.steps} SFT steps) and measuring it ..."):
        policy, warm = prepare_policy(cfg, out)
    targets = target_levels(cfg, warm["pass_rate"])
    console.print(warm_table(warm, targets, cfg))
    console.print(f"warm start: map checksum {warm.get('checksum', '?')}, {warm['seconds']:.0f} s when trained "
                  f"({time.time() - t0:.0f} s now); target levels "
                  f"{targets or 'none: no level is partly solved'}")
    stack = LocalStack(out / "stack", port=cfg.port, address=address)
    with console.status("starting Ray, Redis and the controller ..."):
        stack.start()
    if threading.current_thread() is threading.main_thread():  # again: Ray's core worker took SIGTERM over
        signal.signal(signal.SIGTERM, _interrupt)
    if stack.attached:
        console.print("using the cluster's running controller app and its Redis")
    else:
        console.print(f"controller at {stack.url} (REST API v1; try {stack.url}/v1/experiments)")
    try:
        runs = []
        for strat in [cfg.strategy] + [StrategyChoice(name=s, params={}) for s in cfg.compare]:
            console.print(f"[bold]run: {strat.name}[/bold] {strat.params or ''}")
            runs.append(run_one(cfg, strat, stack, policy, out, targets))
        report = write_report(runs, cfg, out, warm, targets)
    finally:
        stack.stop()
    report["job_wall_s"] = round(time.time() - t0, 1)
    metrics = json.loads((out / "metrics.json").read_text())  # the job's wall time goes into the report too
    (out / "metrics.json").write_text(json.dumps({**metrics, "job_wall_s": report["job_wall_s"]}, indent=1))
    print_summary(report, cfg, out)
    return report
