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
from curriculum.sources import parse_source
from curriculum.sources.arithmetic import NOISE
from workers.grpo import GRPOConfig
from workers.model import TinyModelConfig
from workers.warm_start import WarmStartConfig

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
    compare: list[str] = Field(default_factory=lambda: ["uniform"],
                               description="strategies run again on the same warm start and seed ([] = none)")
    source: dict[str, Any] = Field(default_factory=lambda: {
        "kind": "arithmetic", "min_digits": 1, "max_digits": 5, "items_per_level": 4000, "ops": ["+"],
        "verifier": "exact", "noise_items": 4000}, description="the task pool (4,000 items a level: with 500 the "
        "policy memorised its d2 items, held-out d2 stalled near 0.72 while the items themselves passed at 0.85)")
    eval_items_per_level: int = Field(64, ge=1, description="held-out items per level for evaluation")
    model: TinyModelConfig = Field(default_factory=TinyModelConfig, description="the tiny policy")
    model_path: Optional[str] = Field(None, description="a real model (HF folder or hub name) instead of the tiny one")
    warm_start: WarmStartConfig = Field(default_factory=WarmStartConfig, description="SFT of the tiny policy (its seed, not the run's: runs of any seed share it)")
    warm_start_cache: Optional[str] = Field("runs/warm-start", description="folder reusing warm starts of the same "
                                            "config and seed (None: always train)")
    target_band: tuple[float, float] = Field((0.1, 0.7), description="warm-start pass rates of a target level "
                                             "(partly solved); the noise category is never one")
    target_gain: float = Field(0.15, gt=0, description="target = warm-start pass rate on the target levels + this")
    group_size: int = Field(8, ge=2, description="rollouts per prompt")
    rollout_workers: int = Field(1, ge=0, description="rollout actors in the pool")
    rollout_batch: int = Field(32, ge=1, description="items leased per rollout batch")
    rollout_gpus: float = Field(0.0, ge=0, description="GPUs per rollout actor (>0: pending actors grow the GPU group)")
    trainer_gpus: int = Field(0, ge=0, le=1, description="1: each Ray Train rank takes a GPU")
    max_tokens: int = Field(6, ge=1)
    temperature: float = Field(1.0, ge=0)
    backend: str = Field("hf", description="hf | vllm")
    train_steps: int = Field(250, ge=1, description="GRPO steps")
    groups_per_step: int = Field(32, ge=1)
    trainer_workers: int = Field(1, ge=1)
    eval_every: int = Field(15, ge=1, description="steps between evaluations")
    max_staleness: int = Field(2, ge=0)
    queue_budget: Optional[int] = Field(None, ge=1, description="rollout queue budget in groups (default: 2 steps' worth)")
    grpo: GRPOConfig = Field(default_factory=lambda: GRPOConfig(lr=5e-5),
                             description="the learner; lr 5e-5 = the warm start's SFT lr / 20 (at 2e-4 the noisy "
                                         "category's groups knocked d2 down under uniform: benchmarks/grpo_probe.py)")
    seed: int = 0
    out: str = Field("runs/latest", description="report folder")
    port: int = Field(8000, description="REST port of the controller while the run goes on")


def load_config(path: str | None, overrides: dict[str, Any] | None = None) -> RunConfig:
    data = yaml.safe_load(Path(path).read_text()) if path else {}
    return RunConfig.model_validate({**(data or {}), **(overrides or {})})


def prepare_policy(cfg: RunConfig, out: Path) -> tuple[str, dict]:
    """The starting policy and its pass-rate map ({"pass_rate", "greedy"} per category). The tiny model is built,
    SFT-warm-started (workers.warm_start) and measured, or taken from the cache of the same config and seed;
    cfg.model_path (a real model) is measured as it is."""
    import hashlib

    import torch

    from workers.model import build_tiny_model, load_policy, save_policy
    from workers.warm_start import pass_rates, warm_start

    evals = eval_items(cfg)
    key = json.dumps([cfg.model.model_dump(), cfg.warm_start.model_dump(), cfg.source, cfg.model_path,
                      [e["prompt"] for e in evals], cfg.max_tokens, cfg.group_size, cfg.temperature], sort_keys=True)
    folder = Path(cfg.warm_start_cache or out / "policy-init").resolve()
    if cfg.warm_start_cache:
        folder = folder / hashlib.sha1(key.encode()).hexdigest()[:12]
    if (folder / "pass_rates.json").exists() and cfg.warm_start_cache:
        return cfg.model_path or str(folder), json.loads((folder / "pass_rates.json").read_text())
    torch.set_num_threads(1)  # a tiny model gains little from a 2nd thread; on a busy machine it was 10x slower
    t0 = time.time()
    if cfg.model_path:
        model, tok = load_policy(cfg.model_path)
    else:
        model, tok = build_tiny_model(cfg.model)
        warm_start(model, tok, parse_source(cfg.source), cfg.warm_start)
    rate, greedy = pass_rates(model, tok, evals, cfg.max_tokens, cfg.group_size, cfg.temperature)
    warm = {"pass_rate": rate, "greedy": greedy, "seconds": round(time.time() - t0, 1)}
    path = cfg.model_path or str(save_policy(model, tok, folder).resolve())
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pass_rates.json").write_text(json.dumps(warm, indent=1))
    return path, warm


def target_levels(cfg: RunConfig, pass_rate: dict[str, float]) -> list[str]:
    """The partly solved levels: warm-start pass rate inside cfg.target_band (never the noise category)."""
    lo, hi = cfg.target_band
    return [c for c, p in pass_rate.items() if c != NOISE and lo <= p <= hi]


def warm_table(warm: dict, targets: list[str], cfg: RunConfig, final: dict[str, dict] | None = None) -> Table:
    """The pass-rate map: per category, warm start (and, with `final`, each strategy's end of run)."""
    t = Table(title=f"pass-rate map (held-out items, {cfg.group_size} samples at T={cfg.temperature} / greedy exact)")
    t.add_column("category")
    t.add_column("kind")
    t.add_column("warm start", justify="right")
    for name in final or {}:
        t.add_column(f"final, {name}", justify="right")
    for c in sorted(warm["pass_rate"], key=lambda c: (c == NOISE, len(c), c)):
        p = warm["pass_rate"][c]
        kind = ("noise" if c == NOISE else "target (partly solved)" if c in targets
                else "solved" if p > cfg.target_band[1] else "out of reach")
        cells = [f"{p:.2f} / {warm['greedy'][c]:.2f}"]
        cells += [f"{f['pass_rate'].get(c, 0):.2f} / {f['greedy'].get(c, 0):.2f}" for f in (final or {}).values()]
        t.add_row(c, kind, *cells)
    return t


def eval_items(cfg: RunConfig) -> list[dict]:
    """Held-out items: for the arithmetic family, fresh draws whose prompts are not in the training pool (at 4,000
    items a level the pool holds ~40% of all 2-digit sums, so plain fresh draws would repeat pool prompts); a level
    with too few problems left outside the pool (d1: 100 in all, every one in the pool) keeps its plain draws."""
    from curriculum.sources import items_from_source

    spec = dict(cfg.source)
    n = cfg.eval_items_per_level
    if spec.get("kind") != "arithmetic":
        items = items_from_source(spec)
    else:
        spec.update(items_per_level=4 * n, seed=int(spec.get("seed", 0)) + 10_007, id_prefix="eval",
                    noise_items=4 * n if spec.get("noise_items") else 0)
        seen = {i.prompt for i in items_from_source(cfg.source)}
        by_cat: dict[str, list] = {}
        for i in items_from_source(spec):
            by_cat.setdefault(i.category, []).append(i)
        items = []
        for its in by_cat.values():
            fresh = [i for i in its if i.prompt not in seen]
            items += (fresh if len(fresh) >= n else its)[:n]
    return [{"prompt": i.prompt, "answer": i.answer, "category": i.category, "metadata": i.metadata} for i in items]


def run_one(cfg: RunConfig, strategy: StrategyChoice, stack, policy: str, out: Path, targets: list[str]) -> dict:
    """One training run under one strategy; returns its metrics. Mid-run evaluations cover the target levels."""
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
                         eval_track=targets or None,
                         eval_max_tokens=cfg.max_tokens, eval_samples=cfg.group_size, temperature=cfg.temperature,
                         use_gpu=bool(cfg.trainer_gpus), storage_path=str((out / "checkpoints" / name).resolve()),
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
                    acc = " ".join(f"{k}={v:.2f}/{h['eval'].get(k, 0):.2f}" for k, v in h["eval_pass"].items())
                    console.print(f"{name} step {h['step']}/{cfg.train_steps} {time.time() - t0:.0f}s "
                                  f"pass rate/greedy {acc}  train reward {h['mean_reward'] or 0:.2f}")
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
            "rollouts_by_category": {c: sum(w["by_category"].get(c, 0) for w in workers)
                                     for c in sorted({c for w in workers for c in w["by_category"]})},
            "time_split": {"generation_s": sum(w["generate_s"] for w in workers),
                           "verification_s": sum(w["score_s"] for w in workers),
                           "controller_s": sum(w["controller_s"] for w in workers),
                           "student_queue_wait_s": sum(w["waiting_s"] + w["queue_s"] for w in workers),
                           "trainer_queue_wait_s": sum(h["wait_s"] for h in history),
                           "optimizer_s": sum(h["train_s"] for h in history)}}


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


TIME_KEYS = ("generation_s", "verification_s", "controller_s", "student_queue_wait_s", "trainer_queue_wait_s",
             "optimizer_s")


def controller_share(ts: dict) -> float:
    """The controller's share of the students' busy time (its calls, generation, verification)."""
    return ts["controller_s"] / max(ts["controller_s"] + ts["generation_s"] + ts["verification_s"], 1e-9)


def target_curve(run: dict, targets: list[str], group_size: int, warm: dict) -> list[dict]:
    """(rollouts generated so far, seconds, mean pass rate on the target levels) at the warm start and at every
    evaluation. Rollouts are read off the queue's `produced` counter: every group the students generated,
    degenerate and stale ones included."""
    mean = lambda d: sum(d[c] for c in targets) / max(len(targets), 1)  # noqa: E731
    return [{"step": 0, "rollouts": 0, "seconds": 0.0, "pass_rate": mean(warm["pass_rate"]),
             "greedy": mean(warm["greedy"])}] + [
        {"step": h["step"], "rollouts": h["queue"]["produced"] * group_size, "seconds": h["time"] - run["started"],
         "pass_rate": mean(h["eval_pass"]), "greedy": mean(h["eval"])} for h in run["history"] if "eval" in h]


def summarise_run(run: dict, cfg: RunConfig, warm: dict, targets: list[str], target: float) -> dict:
    h = run["history"]
    evals = [x for x in h if "eval" in x]
    curve = target_curve(run, targets, cfg.group_size, warm)
    hit = next((p for p in curve if p["pass_rate"] >= target), None)
    by_cat = run["rollouts_by_category"]
    return {"strategy": run["strategy"]["name"], "wall_s": round(run["wall_s"], 1), "rollouts": run["rollouts"],
            "final": {"pass_rate": evals[-1]["eval_pass"], "greedy": evals[-1]["eval"]} if evals else {},
            "curve": curve, "rollouts_to_target": hit["rollouts"] if hit else None,
            "seconds_to_target": round(hit["seconds"], 1) if hit else None,
            "final_target_pass_rate": curve[-1]["pass_rate"] if curve else None,
            "degenerate_share": run["final_state"]["degenerate_ratio"],
            "noise_share": by_cat.get(NOISE, 0) / max(sum(by_cat.values()), 1),
            "rollouts_by_category": by_cat, "time_split": run["time_split"],
            "time_shares": {k: run["time_split"][k] / max(run["wall_s"], 1e-9) for k in TIME_KEYS},
            "controller_share": controller_share(run["time_split"])}


def step_shares(run: dict) -> tuple[list[int], list[float], list[float]]:
    """Per trainer step: the degenerate share and the noise share of the groups the trainer read."""
    steps, degenerate, noise = [], [], []
    for x in run["history"]:
        read = x.get("read_by_category", {})
        n = sum(read.values())
        if n:
            steps.append(x["step"])
            degenerate.append(x["degenerate_dropped"] / n)
            noise.append(read.get(NOISE, 0) / n)
    return steps, degenerate, noise


def write_report(runs: list[dict], cfg: RunConfig, out: Path, warm: dict, targets: list[str]) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    base = sum(warm["pass_rate"][c] for c in targets) / max(len(targets), 1)
    target = min(base + cfg.target_gain, 1.0)
    summary = [summarise_run(run, cfg, warm, targets, target) for run in runs]
    report = {"warm_start": warm, "targets": targets, "target": target, "warm_target_pass_rate": base,
              "summary": summary}
    (out / "metrics.json").write_text(json.dumps({"config": cfg.model_dump(), **report, "runs": runs}, indent=1))
    # the joint plot: accuracy on the target levels against rollouts; degenerate and noise shares against steps
    fig, (a1, a2, a3) = plt.subplots(1, 3, figsize=(17, 4.2))
    for k, (run, s) in enumerate(zip(runs, summary)):
        a1.plot([p["rollouts"] for p in s["curve"]], [p["pass_rate"] for p in s["curve"]], color=f"C{k}",
                marker=".", label=f"{s['strategy']} (pass rate)")
        a1.plot([p["rollouts"] for p in s["curve"]], [p["greedy"] for p in s["curve"]], color=f"C{k}", ls=":",
                label=f"{s['strategy']} (greedy exact)")
        steps, degenerate, noise = step_shares(run)
        a2.plot(steps, degenerate, color=f"C{k}", lw=0.8, label=s["strategy"])
        a3.plot(steps, noise, color=f"C{k}", lw=0.8, label=s["strategy"])
    a1.axhline(target, color="grey", ls="--", lw=0.8, label=f"target {target:.2f}")
    a1.set(title=f"accuracy on the target levels {', '.join(targets) or '(none)'}", xlabel="rollouts generated")
    a2.set(title="degenerate share of the groups read", xlabel="trainer step", ylim=(-0.02, 1.02))
    a3.set(title=f"share of the groups read that are '{NOISE}'", xlabel="trainer step", ylim=(-0.02, 1.02))
    for a in (a1, a2, a3):
        a.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "compare.png", dpi=100)
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
    return report


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
    console.print(f"warm start: {warm['seconds']:.0f} s when trained ({time.time() - t0:.0f} s now); target levels "
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
    _print_summary(report, cfg, out)
    return report


def _print_summary(report: dict, cfg: RunConfig, out: Path) -> None:
    summary = report["summary"]
    console.print(warm_table(report["warm_start"], report["targets"], cfg, {s["strategy"]: s["final"] for s in summary}))
    t = Table(title=f"curriculum run: target = pass rate {report['target']:.2f} on {', '.join(report['targets'])} "
                    f"(warm start {report['warm_target_pass_rate']:.2f})")
    for c in ("strategy", "rollouts to target", "final target pass rate", "rollouts", "degenerate", "noise share",
              "wall s", "controller share"):
        t.add_column(c, justify="left" if c == "strategy" else "right")
    fmt = lambda v, f: "—" if v is None else format(v, f)  # noqa: E731
    for s in summary:
        t.add_row(s["strategy"], fmt(s["rollouts_to_target"], ","), fmt(s["final_target_pass_rate"], ".2f"),
                  f"{s['rollouts']:,}", f"{s['degenerate_share']:.0%}", f"{s['noise_share']:.0%}",
                  f"{s['wall_s']:.0f}", f"{s['controller_share']:.1%}")
    console.print(t)
    t = Table(title="time as shares of each run's wall time (students and trainer overlap: shares add past 100%)")
    t.add_column("strategy")
    for k in TIME_KEYS:
        t.add_column(k.removesuffix("_s").replace("_", " "), justify="right")
    for s in summary:
        t.add_row(s["strategy"], *(f"{s['time_shares'][k]:.0%}" for k in TIME_KEYS))
    console.print(t)
    console.print(f"job wall time {report['job_wall_s']:.0f} s; report: {out.resolve()}/metrics.json, compare.png, "
                  "arm_weights.png")


def register(app: typer.Typer) -> None:
    @app.command()
    def run(config: Optional[Path] = typer.Option(None, "--config", help="YAML file with RunConfig fields"),
            compare: Optional[list[str]] = typer.Option(None, "--compare", help="strategies to compare with "
                                                        "(default: uniform; '' for none)"),
            steps: Optional[int] = typer.Option(None, "--steps", help="override train_steps"),
            out: Optional[str] = typer.Option(None, "--out", help="report folder"),
            port: Optional[int] = typer.Option(None, "--port", help="REST port while running"),
            address: Optional[str] = typer.Option(None, "--address", help="an existing Ray cluster")) -> None:
        """Train the tiny model with GRPO under a curriculum, end to end, and write a report."""
        from pydantic import ValidationError

        overrides = {k: v for k, v in {"train_steps": steps, "out": out, "port": port}.items() if v}
        if compare is not None:  # `--compare ''` runs the curriculum alone
            overrides["compare"] = [c for c in compare if c]
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
