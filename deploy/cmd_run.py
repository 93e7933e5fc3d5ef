"""`curriculum run`: the whole pipeline on one machine (or on a cluster through `deploy.job`).

Local Ray + embedded Redis + the controller (REST on --port while it runs) + an elastic pool of rollout actors
+ a Ray Train GRPO trainer, training the tiny character-level model on the arithmetic family under a
curriculum; `--compare uniform` runs the same again under `uniform`. Ends with a report folder: metrics.json
and PNG plots (accuracy per level over rollouts, arm weights over time, degenerate ratio, wall-time split).
Also `curriculum workers scale N` / `curriculum workers status`.
"""
from __future__ import annotations

import copy
import json
import signal
import threading
import time
from pathlib import Path
from typing import Any, Optional

import typer
import yaml
from pydantic import BaseModel, ConfigDict, Field
from rich.console import Console
from rich.live import Live
from rich.table import Table

from curriculum.registry import DEFAULT_STRATEGY
from workers.grpo import GRPOConfig
from workers.model import TinyModelConfig

console = Console()


class StrategyChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = DEFAULT_STRATEGY["name"]
    params: dict[str, Any] = Field(default_factory=lambda: copy.deepcopy(DEFAULT_STRATEGY["params"]))


class RunConfig(BaseModel):
    """Everything `curriculum run` does, in one typed file (configs/*.yaml)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field("arith", pattern=r"^[a-z0-9][a-z0-9_-]{0,40}$", description="experiment name prefix")
    strategy: StrategyChoice = Field(default_factory=StrategyChoice, description="the curriculum")
    compare: list[str] = Field(default_factory=list, description="strategies to run again for comparison (e.g. uniform)")
    source: dict[str, Any] = Field(default_factory=lambda: {"kind": "arithmetic", "min_digits": 1, "max_digits": 3,
                                                            "items_per_level": 400, "ops": ["+"]})
    eval_items_per_level: int = Field(40, ge=1, description="held-out items per level for greedy evaluation")
    model: TinyModelConfig = Field(default_factory=TinyModelConfig, description="the tiny policy")
    model_path: Optional[str] = Field(None, description="a real model (HF folder or hub name) instead of the tiny one")
    sft_steps: int = Field(300, ge=0, description="SFT warm-start steps on the easiest level")
    sft_lr: float = Field(3e-3, gt=0)
    group_size: int = Field(8, ge=2, description="rollouts per prompt")
    rollout_workers: int = Field(1, ge=0, description="rollout actors in the pool")
    rollout_batch: int = Field(32, ge=1, description="items leased per rollout batch")
    rollout_gpus: float = Field(0.0, ge=0, description="GPUs per rollout actor (>0: pending actors grow the GPU group)")
    trainer_gpus: int = Field(0, ge=0, le=1, description="1: each Ray Train rank takes a GPU")
    max_tokens: int = Field(6, ge=1)
    temperature: float = Field(1.0, ge=0)
    backend: str = Field("hf", description="hf | vllm")
    train_steps: int = Field(500, ge=1, description="GRPO steps")
    groups_per_step: int = Field(32, ge=1)
    trainer_workers: int = Field(1, ge=1)
    eval_every: int = Field(25, ge=1, description="steps between greedy evaluations")
    max_staleness: int = Field(2, ge=0)
    queue_budget: Optional[int] = Field(None, ge=1, description="rollout queue budget in groups (default: 2 steps' worth)")
    grpo: GRPOConfig = Field(default_factory=lambda: GRPOConfig(lr=2e-4))
    seed: int = 0
    out: str = Field("runs/latest", description="report folder")
    port: int = Field(8000, description="REST port of the controller while the run goes on")


def load_config(path: str | None, overrides: dict[str, Any] | None = None) -> RunConfig:
    data = yaml.safe_load(Path(path).read_text()) if path else {}
    return RunConfig.model_validate({**(data or {}), **(overrides or {})})


def prepare_policy(cfg: RunConfig, out: Path) -> str:
    """Build the tiny model, SFT-warm-start it on the easiest level, save it; or use cfg.model_path."""
    if cfg.model_path:
        return cfg.model_path
    import torch

    from curriculum.sources import items_from_source
    from workers.grpo import sft_step
    from workers.model import build_tiny_model, save_policy

    model, tok = build_tiny_model(cfg.model)
    items = items_from_source(cfg.source)
    easiest = min(it.difficulty or 0 for it in items)
    warm = [it for it in items if (it.difficulty or 0) == easiest]
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.sft_lr)
    g = torch.Generator().manual_seed(cfg.seed)
    for _ in range(cfg.sft_steps):
        idx = torch.randint(0, len(warm), (64,), generator=g).tolist()
        sft_step(model, opt, tok, [warm[i].prompt for i in idx], [warm[i].answer for i in idx])
    return str(save_policy(model, tok, out / "policy-init").resolve())


def eval_items(cfg: RunConfig) -> list[dict]:
    from curriculum.sources import items_from_source

    spec = dict(cfg.source)
    if spec.get("kind") == "arithmetic":
        spec.update(items_per_level=cfg.eval_items_per_level, seed=int(spec.get("seed", 0)) + 10_007, id_prefix="eval")
    items = items_from_source(spec)
    return [{"prompt": i.prompt, "answer": i.answer, "category": i.category, "metadata": i.metadata} for i in items]


def run_one(cfg: RunConfig, strategy: StrategyChoice, stack, policy: str, out: Path) -> dict:
    """One training run under one strategy; returns its metrics."""
    import ray
    import redis

    from services.client import InClusterClient
    from workers.pool import start_pool
    from workers.queue import RolloutQueue
    from workers.rollout import RolloutConfig, RolloutWorker
    from workers.trainer import TrainerConfig, metrics_key, run_trainer
    from workers.weights import WeightSubscriber

    name = f"{cfg.name}-{strategy.name}"
    client = InClusterClient(stack.redis_url)
    r = redis.Redis.from_url(stack.redis_url)
    # a rerun under the same name starts clean: experiment, queue, trainer metrics and weight versions
    if name in client.core.names():
        client.delete_experiment(name)
    RolloutQueue(stack.redis_url, name).delete()
    WeightSubscriber(stack.redis_url, name).delete()
    r.delete(metrics_key(name))
    client.create_experiment(name, strategy.name, strategy.params, source=cfg.source, group_size=cfg.group_size,
                             seed=cfg.seed)
    tcfg = TrainerConfig(experiment=name, redis_url=stack.redis_url, model_path=policy, steps=cfg.train_steps,
                         groups_per_step=cfg.groups_per_step, num_workers=cfg.trainer_workers,
                         max_staleness=cfg.max_staleness, eval_every=cfg.eval_every, eval_items=eval_items(cfg),
                         eval_max_tokens=cfg.max_tokens, use_gpu=bool(cfg.trainer_gpus), storage_path=str((out / "checkpoints" / name).resolve()),
                         grpo=cfg.grpo)
    result: dict[str, Any] = {}
    t0 = time.time()

    def fit() -> None:
        try:
            result["fit"] = run_trainer(tcfg)
        except Exception as e:  # surfaced below, after the pool is shut down
            result["error"] = e

    trainer_thread = threading.Thread(target=fit, daemon=True)
    trainer_thread.start()
    # workers start once version 0 is published, so the first rollouts use the warm-started policy
    sub = WeightSubscriber(stack.redis_url, name)
    while sub.latest_version() < 0 and trainer_thread.is_alive():
        time.sleep(0.2)
    rcfg = RolloutConfig(experiment=name, redis_url=stack.redis_url, model_path=policy, backend=cfg.backend,
                         batch_size=cfg.rollout_batch, temperature=cfg.temperature, max_tokens=cfg.max_tokens,
                         queue_budget=cfg.queue_budget or 2 * cfg.groups_per_step * cfg.trainer_workers, max_staleness=cfg.max_staleness, seed=cfg.seed)
    resources = {"num_gpus": cfg.rollout_gpus, "num_cpus": 1} if cfg.rollout_gpus else {"num_cpus": 0.5}
    pool = start_pool(name, RolloutWorker, {"cfg": rcfg.model_dump()}, cfg.rollout_workers, resources)
    history: list[dict] = []
    with Live(console=console, refresh_per_second=2) as live:
        while trainer_thread.is_alive():
            trainer_thread.join(1.0)
            new = [json.loads(x) for x in r.lrange(metrics_key(name), len(history), -1)]
            history += new
            for h in new:  # one line per evaluation: a log that also reads well when not on a terminal
                if "eval" in h:
                    acc = " ".join(f"{k}={v:.2f}/{h['eval_score'].get(k, 0):.2f}" for k, v in h["eval"].items())
                    console.print(f"{name} step {h['step']}/{cfg.train_steps} {time.time() - t0:.0f}s "
                                  f"greedy exact/partial {acc}  train reward {h['mean_reward'] or 0:.2f}")
            live.update(_progress(name, cfg, history, client.state(name), time.time() - t0))
        history += [json.loads(x) for x in r.lrange(metrics_key(name), len(history), -1)]
    status = ray.get(pool.status.remote())
    ray.get(pool.shutdown.remote())
    ray.kill(pool)
    wall = time.time() - t0
    if "error" in result:
        raise RuntimeError(f"trainer failed: {result['error']}") from result["error"]
    state = client.state(name)
    workers = [w for w in status["workers"].values() if "error" not in w]
    return {"strategy": strategy.model_dump(), "experiment": name, "wall_s": wall, "started": t0, "history": history,
            "final_state": state, "workers": workers, "queue": RolloutQueue(stack.redis_url, name).stats(),
            "rollouts": int(sum(w["rollouts"] for w in workers)),
            "time_split": {"controller_s": sum(w["controller_s"] for w in workers),
                           "generation_s": sum(w["generate_s"] for w in workers),
                           "scoring_s": sum(w["score_s"] for w in workers),
                           "training_s": sum(h["train_s"] for h in history),
                           "trainer_wait_s": sum(h["wait_s"] for h in history)}}


def _progress(name: str, cfg: RunConfig, history: list[dict], state: dict, elapsed: float) -> Table:
    last = history[-1] if history else {}
    evals = [h for h in history if "eval" in h]
    t = Table(title=f"{name}: step {last.get('step', 0)}/{cfg.train_steps}  {elapsed:.0f}s  "
                    f"rollouts ~{state['events'] * cfg.group_size:,}  degenerate {state['degenerate_ratio']:.0%}")
    t.add_column("level")
    t.add_column("arm weight", justify="right")
    t.add_column("pass rate", justify="right")
    t.add_column("greedy accuracy", justify="right")
    acc = evals[-1]["eval"] if evals else {}
    for a in state["arms"]:
        pr = a["pass_rate"]
        t.add_row(a["name"], f"{a['weight']:.2f}", "-" if pr is None else f"{pr:.2f}",
                  "-" if a["name"] not in acc else f"{acc[a['name']]:.2f}")
    return t


def controller_share(ts: dict) -> float:
    """The controller's share of the students' busy time (its calls, generation, scoring)."""
    return ts["controller_s"] / max(ts["controller_s"] + ts["generation_s"] + ts["scoring_s"], 1e-9)


def write_report(runs: list[dict], cfg: RunConfig, out: Path) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    summary = []
    for run in runs:
        h = run["history"]
        evals = [x for x in h if "eval" in x]
        steps = max(len(h), 1)
        # rollouts are counted by workers; spread them over steps for the x axis (they run concurrently)
        per_step = run["rollouts"] / steps
        final = evals[-1]["eval"] if evals else {}
        dropped = sum(x["degenerate_dropped"] for x in h)
        used = sum(x["groups"] for x in h)
        summary.append({"strategy": run["strategy"]["name"], "wall_s": round(run["wall_s"], 1),
                        "rollouts": run["rollouts"], "final_accuracy": final,
                        "final_score": evals[-1].get("eval_score", {}) if evals else {},
                        "degenerate_ratio": run["final_state"]["degenerate_ratio"],
                        "trainer_dropped_degenerate": dropped, "trainer_groups_used": used,
                        "time_split": run["time_split"], "per_step_rollouts": per_step,
                        "controller_share": controller_share(run["time_split"])})
    (out / "metrics.json").write_text(json.dumps({"config": cfg.model_dump(), "summary": summary, "runs": runs}, indent=1))
    levels = sorted({k for run in runs for x in run["history"] if "eval" in x for k in x["eval"]})
    fig, axes = plt.subplots(1, len(runs), figsize=(6 * len(runs), 4), squeeze=False)
    for ax, run, s in zip(axes[0], runs, summary):
        ev = [x for x in run["history"] if "eval" in x]
        xs = [x["step"] * s["per_step_rollouts"] for x in ev]
        for k, lv in enumerate(levels):
            ax.plot(xs, [x["eval"].get(lv, 0) for x in ev], color=f"C{k}", label=f"{lv} exact")
            ax.plot(xs, [x.get("eval_score", {}).get(lv, 0) for x in ev], color=f"C{k}", ls="--",
                    label=f"{lv} partial credit")
        ax.set_title(f"{s['strategy']}: greedy accuracy per level")
        ax.set_xlabel("rollouts (approx.)")
        ax.set_ylim(-0.02, 1.02)
        ax.legend()
    fig.tight_layout()
    fig.savefig(out / "accuracy.png", dpi=100)
    plt.close(fig)
    fig, axes = plt.subplots(1, len(runs), figsize=(6 * len(runs), 4), squeeze=False)
    for ax, run, s in zip(axes[0], runs, summary):
        h = run["history"]
        arms = sorted({a for x in h for a in x["arm_weights"]})
        ax.stackplot([x["step"] for x in h], [[x["arm_weights"].get(a, 0) for x in h] for a in arms], labels=arms)
        ax.set_title(f"{s['strategy']}: arm weights")
        ax.set_xlabel("trainer step")
        ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(out / "arm_weights.png", dpi=100)
    plt.close(fig)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4))
    for run, s in zip(runs, summary):
        h = run["history"]
        a1.plot([x["step"] for x in h], [x["degenerate_dropped"] / max(x["degenerate_dropped"] + x["groups"], 1) for x in h],
                label=s["strategy"])
    a1.set_title("degenerate share of groups read by the trainer")
    a1.set_xlabel("trainer step")
    a1.legend()
    keys = ["controller_s", "generation_s", "scoring_s", "training_s", "trainer_wait_s"]
    bottom = [0.0] * len(runs)
    for k in keys:
        vals = [s["time_split"][k] for s in summary]
        a2.bar([s["strategy"] for s in summary], vals, bottom=bottom, label=k)
        bottom = [b + v for b, v in zip(bottom, vals)]
    a2.set_title("time spent (s, summed over actors)")
    a2.legend()
    fig.tight_layout()
    fig.savefig(out / "degenerate_and_time.png", dpi=100)
    plt.close(fig)
    return {"summary": summary}


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
        with console.status(f"warm-starting the policy ({cfg.sft_steps} SFT steps on the easiest level) ..."):
            policy = prepare_policy(cfg, out)
        runs = []
        for strat in [cfg.strategy] + [StrategyChoice(name=s, params={}) for s in cfg.compare]:
            console.print(f"[bold]run: {strat.name}[/bold] {strat.params or ''}")
            runs.append(run_one(cfg, strat, stack, policy, out))
        report = write_report(runs, cfg, out)
    finally:
        stack.stop()
    _print_summary(report["summary"], out)
    return report


def _print_summary(summary: list[dict], out: Path) -> None:
    t = Table(title="curriculum run")
    for c in ("strategy", "rollouts", "wall s", "final greedy exact/partial per level", "degenerate", "controller share"):
        t.add_column(c)
    for s in summary:
        t.add_row(s["strategy"], str(s["rollouts"]), str(s["wall_s"]),
                  " ".join(f"{k}={v:.2f}/{s['final_score'].get(k, 0):.2f}" for k, v in s["final_accuracy"].items()),
                  f"{s['degenerate_ratio']:.0%}", f"{s['controller_share']:.1%}")
    console.print(t)
    console.print(f"report: {out.resolve()}/metrics.json, accuracy.png, arm_weights.png, degenerate_and_time.png")


def register(app: typer.Typer) -> None:
    @app.command()
    def run(config: Optional[Path] = typer.Option(None, "--config", help="YAML file with RunConfig fields"),
            compare: Optional[list[str]] = typer.Option(None, "--compare", help="also run these strategies (e.g. uniform)"),
            steps: Optional[int] = typer.Option(None, "--steps", help="override train_steps"),
            out: Optional[str] = typer.Option(None, "--out", help="report folder"),
            port: Optional[int] = typer.Option(None, "--port", help="REST port while running"),
            address: Optional[str] = typer.Option(None, "--address", help="an existing Ray cluster")) -> None:
        """Train the tiny model with GRPO under a curriculum, end to end, and write a report."""
        from pydantic import ValidationError

        overrides = {k: v for k, v in {"compare": compare, "train_steps": steps, "out": out, "port": port}.items() if v}
        try:
            run_pipeline(str(config) if config else None, address, overrides)
        except ValidationError as e:
            console.print(f"[red]invalid config:[/red] {e}")
            raise typer.Exit(2)

    workers = typer.Typer(help="Rollout workers of a running experiment.")
    app.add_typer(workers, name="workers")

    @workers.command("scale")
    def scale(n: int, experiment: str = typer.Option(..., "--experiment", "-e"),
              address: str = typer.Option("auto", help="Ray cluster address")) -> None:
        """Set the number of rollout actors (the pool starts or retires actors to match)."""
        from workers.pool import scale_workers

        s = scale_workers(experiment, n, address)
        console.print(f"target {s['target']}, live {s['live']}, restarts {s['restarts']}, retired {s['retired']}")
