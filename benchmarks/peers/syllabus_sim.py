"""Peer benchmark: the Syllabus library's curricula (syllabus-rl 0.7) on our simulated student.

    bash scripts/venv.sh syllabus       # .venv-syllabus: syllabus-rl 0.7 + the project without its heavy deps
    .venv-syllabus/bin/python benchmarks/peers/syllabus_sim.py [--seeds 5] [--budget 200000] [--noisy 1] \
        [--workers 1] [--out benchmarks/results/syllabus_sim.json]

Syllabus' tasks are our categories (arms). Each step every worker asks the curriculum for its share of
`batch` tasks, takes one item per task uniformly (epoch-wise, excluding what the other workers hold) inside
the category — as our arm-level strategies do — and rolls it out `group_size` times; the reports then reach
the curriculum in a shuffled order, all with the same policy version. Budget, target, eval cadence and the
run dict are those of `curriculum.simulator.run`, so rows compare with benchmarks/strategies.py; the extra
keys `eval_rollouts` (rollouts LearningProgress's evaluator spent, included in `rollouts`) and
`task_counts` (tasks Syllabus sampled per category) and `dropped_levels` (PLR, see _DroppedLevels) are ours.

How each curriculum is fed (Syllabus' defaults except the parameters listed in CURRICULA):
* OnlineLearningProgress: every rollout is a one-step episode; `update_task_progress(task, reward)` then
  `update_on_episode(reward, 1, task, reward)`. `update_interval` has no default (required); we set it to
  one training step's rollouts (batch x group_size): the success EMAs move once per policy version.
* LearningProgress: success rates come from its Evaluator (`evaluate_agent`), not from training episodes. Ours
  (StudentEvaluator) rolls out fresh items, spread evenly over the tasks, one sample each; those rollouts are
  paid (counted in `rollouts` and the budget) and teach nothing. The defaults (eval_eps=1 episode, no
  eval_interval) would measure one episode once and never update, so eval_eps = one group per task
  (tasks x group_size) and eval_interval = one training step's rollouts.
* PrioritizedLevelReplay: its on-policy rollout storage with the default `value_l1` score. An "environment"
  is a slot of the batch (num_processes = batch); its rollout for a step is the group's group_size one-step
  episodes (num_steps = group_size), fed with `update_on_step_batch`. The value V(s) PLR needs comes from its
  Evaluator's `get_value`: ours (GroupBaseline) returns the group's mean reward — GRPO's critic-free baseline —
  so the GAE return of a one-step episode is its reward and the score is |reward - group mean|.

Patches (in this harness, at import; site-packages stays as installed) — see `_patch_syllabus`.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

_errstate = np.geterr()
import gymnasium as gym  # noqa: E402
import torch  # noqa: E402
from syllabus.core import Curriculum, Evaluator  # noqa: E402
from syllabus.curricula import LearningProgress, OnlineLearningProgress, PrioritizedLevelReplay  # noqa: E402
from syllabus.task_space import DiscreteTaskSpace  # noqa: E402

from curriculum.sampling import ArmSampler  # noqa: E402
from curriculum.simulator import SimConfig, SimulatedStudent, Tally, summarize  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "results"


def _sample(self, k: int = 1) -> list:
    """Curriculum.sample with a length test instead of `task_dist != []`."""
    if self._should_use_startup_sampling():
        return self._startup_sample()
    task_dist = self._sample_distribution()
    if len(task_dist) > 0:
        return np.random.choice(list(range(self.num_tasks)), size=k, p=task_dist)
    return [self.task_space.encode(self.task_space.sample()) for _ in range(k)]


def _patch_syllabus() -> None:
    # 1. syllabus/curricula/plr/task_sampler.py:13 runs `np.seterr(all='raise')` when imported (by
    #    `syllabus.curricula`): every later float underflow/overflow/invalid op in the PROCESS raises
    #    FloatingPointError (our student's logistic underflows for far-off items). Restore the state we had.
    np.seterr(**_errstate)
    # 2. syllabus/core/curriculum_base.py:160 `if task_dist != []:` compares the ndarray from
    #    _sample_distribution with an empty list: numpy 1 answered a scalar True (with a warning), numpy 2
    #    broadcasts (K,) against (0,) and raises ValueError, so LearningProgress / OnlineLearningProgress
    #    cannot sample at all. Same logic with len().
    Curriculum.sample = _sample


_patch_syllabus()


class _DroppedLevels:
    """Where PLR 0.7 sends the levels it does not replay.

    TaskSampler.sample (syllabus/curricula/plr/task_sampler.py:846) calls
    `self.evaluator.eval_curriculum.send_task(level)` once every task has been seen and the replay coin says
    no — the robust-PLR path — but `self.evaluator` is only assigned when robust_plr=True (:79), so plain PLR
    raises AttributeError on its first non-replay draw. Without evaluation environments those levels are
    evaluated by no one: we count and drop them, and PLR returns its replay draw as 0.7's control flow does."""

    def __init__(self) -> None:
        self.eval_curriculum = self
        self.count = 0

    def send_task(self, level) -> None:
        self.count += 1


class GroupBaseline(Evaluator):
    """V(s) for PLR: an observation is [group mean reward]; the value is that mean (GRPO's baseline)."""

    def __init__(self) -> None:
        super().__init__(None, copy_agent=False)

    def _get_value(self, state, recurrent_state=None, done=None):
        return state[:, :1], recurrent_state, {}


class StudentEvaluator(Evaluator):
    """LearningProgress's evaluation: fresh items of every task, evenly spread, one rollout each (paid)."""

    def __init__(self, student: SimulatedStudent, members: list[np.ndarray], rng: np.random.Generator) -> None:
        super().__init__(None, copy_agent=False, task_space=DiscreteTaskSpace(len(members)))
        self.student, self.members, self.rng = student, members, rng
        self.rollouts = 0
        self.noisy_rollouts = 0

    def evaluate_agent(self, num_episodes=100, verbose=False, store_all=False):
        k = len(self.members)
        per = np.full(k, num_episodes // k) + (np.arange(k) < num_episodes % k)
        idx = np.concatenate([self.rng.choice(m, size=int(n)) for m, n in zip(self.members, per)])
        r = self.student.rollout(idx, np.ones(len(idx), dtype=np.int64))[:, 0]
        self.rollouts += len(idx)
        self.noisy_rollouts += int(self.student.noisy[idx].sum())
        rate = np.bincount(self.student.category[idx], weights=r, minlength=k) / np.maximum(per, 1)
        rate_t = torch.as_tensor(rate)
        return r.tolist(), rate_t, rate_t, {}


# Parameters we set (everything else: Syllabus' defaults); callables of the config.
CURRICULA = {
    "syllabus:LearningProgress": lambda cfg, k: {"eval_interval": cfg.batch * cfg.group_size,
                                                 "eval_eps": k * cfg.group_size},
    "syllabus:OnlineLearningProgress": lambda cfg, k: {"update_interval": cfg.batch * cfg.group_size},
    "syllabus:PrioritizedLevelReplay": lambda cfg, k: {"num_processes": cfg.batch, "num_steps": cfg.group_size},
}


def _make(name: str, cfg: SimConfig, student: SimulatedStudent, members: list[np.ndarray], seed: int):
    k = len(members)
    space = DiscreteTaskSpace(k)
    params = CURRICULA[name](cfg, k)
    evaluator = None
    if name == "syllabus:LearningProgress":
        evaluator = StudentEvaluator(student, members, np.random.default_rng(seed + 4))
        cur = LearningProgress(evaluator, space, **params)
    elif name == "syllabus:OnlineLearningProgress":
        cur = OnlineLearningProgress(space, **params)
    else:
        cur = PrioritizedLevelReplay(space, gym.spaces.Box(0.0, 1.0, (1,)), evaluator=GroupBaseline(), **params)
        cur._task_sampler.evaluator = _DroppedLevels()
    return cur, evaluator


def _feed(name: str, cur, tasks: np.ndarray, slots: np.ndarray, rewards: np.ndarray) -> None:
    """One worker's report: rewards (n, group_size) of the items drawn for `tasks` in batch `slots`."""
    if name == "syllabus:PrioritizedLevelReplay":
        g = rewards.shape[1]
        ones = np.ones(g, dtype=bool)
        for task, slot, r in zip(tasks.tolist(), slots.tolist(), rewards):
            obs = np.full((g, 1), r.mean(), dtype=np.float32)
            cur.update_on_step_batch(([task] * g, obs, r, ones, ~ones, [{}] * g, r), env_id=slot)
        return
    for task, r in zip(tasks.tolist(), rewards):
        for x in r.tolist():
            cur.update_task_progress(task, x)
            cur.update_on_episode(x, 1, task, x)


def run(name: str, seed: int = 0, cfg: SimConfig | None = None) -> dict:
    """One simulated training run driven by a Syllabus curriculum; the dict of curriculum.simulator.run."""
    cfg = cfg or SimConfig()
    np.random.seed(seed)  # Syllabus samples with numpy's global generator
    student = SimulatedStudent(cfg, seed)
    n_cat = cfg.categories + cfg.noisy
    members = [np.flatnonzero(student.category == c) for c in range(n_cat)]
    cur, evaluator = _make(name, cfg, student, members, seed)
    dropped = getattr(getattr(cur, "_task_sampler", None), "evaluator", None)
    items = ArmSampler()
    item_rng = np.random.default_rng(seed + 3)
    items.sync(members, len(student.category), item_rng)
    order_rng = np.random.default_rng(seed + 2)
    g = cfg.group_size
    tally = Tally(cfg, student)
    task_counts = np.zeros(n_cat, dtype=np.int64)
    while tally.rollouts < cfg.budget:
        shares = np.full(cfg.workers, cfg.batch // cfg.workers) + (np.arange(cfg.workers) < cfg.batch % cfg.workers)
        held = np.zeros(len(student.category), dtype=bool)  # what the other workers hold this step
        reports, slot0 = [], 0
        paid0 = (evaluator.rollouts, evaluator.noisy_rollouts) if evaluator else (0, 0)
        for k in shares.tolist():
            tasks = np.asarray(cur.sample(int(k)), dtype=np.int64).reshape(-1)
            task_counts += np.bincount(tasks, minlength=n_cat)
            idx = np.concatenate([items.draw(int(t), 1, item_rng, None, held) for t in tasks])
            assert len(idx) == len(tasks), "a category ran out of items"
            slots = slot0 + np.arange(len(tasks))
            slot0 += len(tasks)
            reports.append((tasks, slots, idx, student.rollout(idx, np.full(len(idx), g))))
        order = order_rng.permutation(len(reports)) if cfg.workers > 1 else range(len(reports))
        for j in order:
            tasks, slots, idx, rewards = reports[j]
            _feed(name, cur, tasks, slots, rewards)
        idx = np.concatenate([rep[2] for rep in reports])
        rewards = np.concatenate([rep[3] for rep in reports])
        tally.pay(idx, rewards)
        if evaluator:  # evaluation rollouts of this step: paid, counted, not learnt from
            tally.pay_extra(evaluator.rollouts - paid0[0], evaluator.noisy_rollouts - paid0[1])
        student.learn(idx, rewards)
        tally.end_step()
    return {**tally.result(name, seed), "eval_rollouts": evaluator.rollouts if evaluator else 0,
            "task_counts": task_counts.tolist(), "dropped_levels": dropped.count if dropped else 0}


def summarise(runs: dict[str, list[dict]], cfg: SimConfig) -> dict:
    """curriculum.simulator.summarize per curriculum, plus the evaluation rollouts and wall time."""
    return {name: {**summarize(rs, cfg), "eval_rollouts_median": float(np.median([r["eval_rollouts"] for r in rs])),
                   "wall_s_median": float(np.median([r["wall_s"] for r in rs]))} for name, rs in runs.items()}


def table(result: dict) -> str:
    cfg, seeds = result["config"], result["seeds"]
    lines = [f"Syllabus {result['syllabus_version']} on the simulated student: {cfg['categories']} levels + "
             f"{cfg['noisy']} noisy, batch {cfg['batch']} x {cfg['group_size']}, {cfg['workers']} worker(s), "
             f"target {cfg['target']}, budget {cfg['budget']:,}, {seeds} seeds (medians; IQR in brackets)", "",
             "| curriculum | rollouts to target | reached | final accuracy | degenerate ratio | noisy share | s/run |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, s in result["summary"].items():
        lo, hi = s["rollouts_to_target_iqr"]
        lines.append(
            f"| {name} | {s['rollouts_to_target_median']:,.0f} [{lo:,.0f}–{hi:,.0f}] | {s['reached']}/{seeds} | "
            f"{s['final_accuracy_median']:.3f} | {s['degenerate_ratio_median']:.3f} | "
            f"{s['noisy_share_median']:.3f} | {s['wall_s_median']:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    import importlib.metadata

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--curricula", nargs="+", default=list(CURRICULA), choices=list(CURRICULA))
    for field in ("budget", "noisy", "workers", "categories", "batch", "group_size"):
        ap.add_argument(f"--{field.replace('_', '-')}", type=int, default=SimConfig.model_fields[field].default)
    ap.add_argument("--out", default=str(RESULTS / "syllabus_sim.json"))
    a = ap.parse_args(argv)
    cfg = SimConfig(budget=a.budget, noisy=a.noisy, workers=a.workers, categories=a.categories, batch=a.batch,
                    group_size=a.group_size)
    runs: dict[str, list[dict]] = {}
    for name in a.curricula:
        runs[name] = []
        for seed in range(a.seeds):
            runs[name].append(run(name, seed, cfg))
            print(f"  {name} seed {seed} done ({runs[name][-1]['wall_s']:.1f} s)", flush=True)
    k = cfg.categories + cfg.noisy
    result = {"config": cfg.model_dump(), "seeds": a.seeds,
              "syllabus_version": importlib.metadata.version("syllabus-rl"),
              "params_set": {n: CURRICULA[n](cfg, k) for n in a.curricula},
              "summary": summarise(runs, cfg), "runs": runs}
    print("\n" + table(result))
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result))
    print(f"\nwrote {out}")
    return result


if __name__ == "__main__":
    main()
