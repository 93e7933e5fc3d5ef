"""The run's configuration: `RunConfig` (configs/*.yaml), and what follows from it alone (held-out items,
target levels). No CLI, no Ray: `deploy.job` and the benchmarks import it as well as `curriculum run`."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from curriculum.registry import DEFAULT_STRATEGY
from curriculum.sources.arithmetic import NOISE
from workers.grpo import GRPOConfig
from workers.model import TinyModelConfig
from workers.warm_start import WarmStartConfig


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
    model_path: str | None = Field(None, description="a real model (HF folder or hub name) instead of the tiny one")
    warm_start: WarmStartConfig = Field(
        default_factory=WarmStartConfig,
        description="SFT of the tiny policy (its seed, not the run's: runs of any seed share it)",
    )
    warm_start_cache: str | None = Field("runs/warm-start", description="folder reusing warm starts of the same "
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
    train_steps: int = Field(200, ge=1, description="GRPO steps (the main job is a demonstration: 200 keep it under "
                             "10 minutes on 2 cores; the benchmarks pin their own, 250)")
    rollout_budget: int | None = Field(None, ge=1, description="end a run once its students generated this many "
                                       "samples (at the end of that step), or after train_steps")
    groups_per_step: int = Field(32, ge=1)
    trainer_workers: int = Field(1, ge=1)
    eval_every: int = Field(15, ge=1, description="steps between evaluations")
    max_staleness: int = Field(2, ge=0)
    queue_budget: int | None = Field(None, ge=1, description="rollout queue budget in groups (default: 2 steps' worth)")
    grpo: GRPOConfig = Field(default_factory=lambda: GRPOConfig(lr=5e-5),
                             description="the learner; lr 5e-5 = the warm start's SFT lr / 20 (at 2e-4 the noisy "
                                         "category's groups knocked d2 down under uniform: benchmarks/grpo_probe.py)")
    seed: int = 0
    out: str = Field("runs/latest", description="report folder")
    port: int = Field(8000, description="REST port of the controller while the run goes on")


def load_config(path: str | None, overrides: dict[str, Any] | None = None) -> RunConfig:
    data = yaml.safe_load(Path(path).read_text()) if path else {}
    return RunConfig.model_validate({**(data or {}), **(overrides or {})})


def target_levels(cfg: RunConfig, pass_rate: dict[str, float]) -> list[str]:
    """The partly solved levels: warm-start pass rate inside cfg.target_band (never the noise category)."""
    lo, hi = cfg.target_band
    return [c for c, p in pass_rate.items() if c != NOISE and lo <= p <= hi]


def eval_items(cfg: RunConfig) -> list[dict]:
    """Held-out items: for the fixed-pool families (arithmetic, rg_family), fresh draws whose prompts are not in the
    training pool (at 4,000 items a level the pool holds ~40% of all 2-digit sums, so plain fresh draws would repeat
    pool prompts); a level
    with too few problems left outside the pool (d1: 100 in all, every one in the pool) keeps its plain draws.
    Evaluation measures the task, not the noise: under `mislabeled` or `judge` noise it grades against the right
    answers with the exact grader (the coin category is evaluated as it is trained)."""
    from curriculum.sources import items_from_source

    spec = dict(cfg.source)
    n = cfg.eval_items_per_level
    if spec.get("kind") in ("chain", "rg_levels"):  # a generator: fresh items of another seed, not the pool's
        spec.update(seed=int(spec.get("seed", 0)) + 10_007, id_prefix="eval", per_arm=n)
        items = items_from_source(spec)
    elif spec.get("kind") not in ("arithmetic", "rg_family"):
        items = items_from_source(spec)
    else:  # a fixed-pool family (arithmetic, rg_family): fresh draws of another seed, clean labels
        coin = spec.get("noise") == "coin" or ("noise" not in spec and spec.get("noise_items"))
        spec.update(items_per_level=4 * n, seed=int(spec.get("seed", 0)) + 10_007, id_prefix="eval",
                    noise="coin" if coin else "none", noise_items=4 * n if coin else 0)
        seen = {i.prompt for i in items_from_source(cfg.source)}
        by_cat: dict[str, list] = {}
        for i in items_from_source(spec):
            by_cat.setdefault(i.category, []).append(i)
        items = []
        for its in by_cat.values():
            fresh = [i for i in its if i.prompt not in seen]
            items += (fresh if len(fresh) >= n else its)[:n]
    return [{"prompt": i.prompt, "answer": i.answer, "category": i.category, "metadata": i.metadata} for i in items]
