"""TRL adapter: a `GRPOTrainer` whose prompts come from the curriculum service, and whose rewards go back to it.

TRL (1.16) has no sampler hook: `_get_train_sampler` returns a seeded `RepeatSampler` that every rank runs and the
dataloader prefetches a batch ahead, so choosing prompts there would choose them a step early and once per rank.
This adapter uses the two hooks that do hold:

* prompts are chosen at generation time: `CurriculumGRPOTrainer._generate_and_score_completions` (private; its
  presence and signature are checked at start-up) receives this rank's rows -- consecutive groups of
  `num_generations` copies of one prompt -- and swaps them for leased items. Every rank asks for the batch of
  the current global step under one `lease_key` (`{run_id}/step-{global_step}`), so all ranks get one answer
  and each takes its slice; a restarted trainer that replays a step gets the same batch back.
* rewards are reported through the public reward-function API (`f(prompts, completions, completion_ids,
  **columns)`): `CurriculumReward` wraps the user's reward function, gathers the per-prompt groups of all ranks
  and reports them once, from rank 0, with rollout ids derived from (experiment, batch, item) -- so a replayed
  step is a duplicate at the service, never a second event.

Not supported (TRL cannot honour them): per-item `num_samples` other than `num_generations` and per-item
`max_tokens` (ignored, with one warning); ranks whose rows split a group (per-device batch x
steps_per_generation must divide by num_generations); environments / tool-calling datasets.
"""
from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from typing import Any

from workers.adapters import check_version, rollout_id

PEER = "trl"
TESTED = "1.16.0"


def _grpo_trainer_class():
    import trl
    from trl import GRPOTrainer

    # read in the released wheels: the hook `_generate_and_score_completions(self, inputs)` (a list of row dicts)
    # and GRPOConfig.steps_per_generation exist from 0.18, `trainer_state` reaches reward functions from 0.20;
    # 0.14 has neither. Checked on 0.18, 0.20, 0.29, 1.0, 1.8, 1.16; TRL 2 is unknown.
    check_version("trl", trl.__version__, (0, 20), (2, 0), TESTED)
    hook = getattr(GRPOTrainer, "_generate_and_score_completions", None)
    params = list(inspect.signature(hook).parameters) if callable(hook) else None
    if params != ["self", "inputs"]:
        raise RuntimeError(
            f"trl {trl.__version__}: GRPOTrainer._generate_and_score_completions(self, inputs) not found "
            f"(got parameters {params}); this adapter needs that hook (verified in trl {TESTED})"
        )
    return GRPOTrainer


def default_prompt(item: dict) -> str:
    return item["prompt"]


class CurriculumReward:
    """Wraps a TRL reward function; reports each leased item's group of rewards to the service exactly once.

    The wrapped function sees every dataset column as TRL passes them, plus `item_id`, `answer`, `category`,
    `batch_id` of the leased items. The values it returns go to TRL unchanged."""

    def __init__(self, fn: Callable[..., list[float | None]]) -> None:
        self.fn = fn
        self.__name__ = getattr(fn, "__name__", type(fn).__name__)  # TRL logs rewards under this name
        self.trainer: Any = None
        self.reported = {"groups": 0, "accepted": 0, "duplicates": 0, "calls": 0}

    def __call__(self, prompts, completions, completion_ids=None, **columns) -> list[float | None]:
        rewards = self.fn(prompts=prompts, completions=completions, completion_ids=completion_ids, **columns)
        t = self.trainer
        if t is not None and "item_id" in columns and t.model.training:
            self._report(list(rewards), columns, int(columns["trainer_state"].global_step), completion_ids)
        return rewards

    def _report(self, rewards: list, columns: dict, step: int, completion_ids=None) -> None:
        t, g = self.trainer, self.trainer.num_generations
        groups = []
        for start in range(0, len(rewards), g):
            rs = rewards[start:start + g]
            if any(r is None for r in rs):  # TRL's "not applicable" marker: nothing to report for this group
                continue
            # completion tokens of the group, for the service's cost accounting (None: TRL passed no ids)
            tokens = None if completion_ids is None else float(sum(len(c) for c in completion_ids[start:start + g]))
            groups.append((columns["batch_id"][start], columns["item_id"][start], [float(r) for r in rs], tokens))
        world = t.accelerator.num_processes
        if world > 1:
            import torch.distributed as dist

            gathered: list = [None] * world
            dist.all_gather_object(gathered, groups)
            groups = [grp for part in gathered for grp in part]
        if not t.accelerator.is_main_process:
            return
        results, seen = [], set()
        for batch_id, item_id, rs, tokens in groups:
            rid = rollout_id(t.curriculum_experiment, batch_id, item_id)
            if rid not in seen:  # an item repeated to fill a short batch is one group
                seen.add(rid)
                results.append({"item_id": item_id, "rewards": rs, "policy_version": step, "rollout_id": rid,
                                **({} if tokens is None else {"signals": {"tokens": tokens}})})
        if results:
            ack = t.curriculum.report(t.curriculum_experiment, results, batch_id=groups[0][0])
            self.reported["groups"] += len(results)
            self.reported["accepted"] += ack["accepted"]
            self.reported["duplicates"] += ack["duplicates"]
            self.reported["calls"] += 1


def __getattr__(name: str):
    # `from workers.adapters.trl import CurriculumGRPOTrainer` builds the class on first use, so that importing
    # this module (e.g. for CurriculumReward) does not import TRL
    if name == "CurriculumGRPOTrainer":
        return make_trainer_class()
    raise AttributeError(name)


def check_trainer_args(curriculum, experiment: str, cfg) -> None:
    """The GRPOConfig must fit the experiment: one leased item = one group of num_generations completions, and no
    group split across ranks."""
    if cfg is None:
        raise ValueError("args: pass a GRPOConfig (num_generations must equal the experiment's group_size)")
    exp = curriculum.experiment(experiment)
    if cfg.num_generations != exp["group_size"]:
        raise ValueError(f"GRPOConfig.num_generations={cfg.num_generations} but experiment {experiment!r} has "
                         f"group_size={exp['group_size']}: every leased item is one group of num_generations "
                         "completions; make them equal")
    local = cfg.per_device_train_batch_size * cfg.steps_per_generation
    if local % cfg.num_generations:
        raise ValueError(f"per_device_train_batch_size x steps_per_generation = {local} must divide by "
                         f"num_generations={cfg.num_generations}, so that no group is split across ranks")


def wrap_reporter(kwargs: dict, report_reward: int) -> CurriculumReward:
    """Wrap `reward_funcs[report_reward]` (in `kwargs`) in a CurriculumReward, and return it."""
    funcs = kwargs.get("reward_funcs")
    funcs = list(funcs) if isinstance(funcs, (list, tuple)) else [funcs]
    if not 0 <= report_reward < len(funcs) or not callable(funcs[report_reward]):
        raise ValueError(f"report_reward={report_reward}: no callable reward function at that index")
    reporter = funcs[report_reward]
    if not isinstance(reporter, CurriculumReward):
        reporter = funcs[report_reward] = CurriculumReward(reporter)
    kwargs["reward_funcs"] = funcs
    return reporter


class CurriculumTrainerMixin:
    """`GRPOTrainer(**kwargs)` (keyword arguments) plus:

    curriculum      a `services.client.CurriculumClient` (or `services.incluster.InClusterClient`)
    experiment      the experiment to lease from; its `group_size` must equal `num_generations`
    run_id          names this training run in lease keys: a restart with the same run_id replays, not re-leases
    report_reward   index in `reward_funcs` of the function whose rewards the curriculum sees (default 0)
    prompt_fn       item dict -> TRL prompt (a string, or a conversation list); default: the item's prompt
    lease_seconds   how long a step's lease (and its key) lives: long enough for a restart to replay it

    `train_dataset` may be omitted: the rows are only slots that leased items fill. Mixed in before TRL's
    GRPOTrainer by make_trainer_class.
    """

    def __init__(self, *, curriculum, experiment: str, run_id: str, report_reward: int = 0,
                 prompt_fn: Callable[[dict], Any] = default_prompt, lease_seconds: float = 3600.0, **kwargs):
        from datasets import Dataset

        cfg = kwargs.get("args")
        check_trainer_args(curriculum, experiment, cfg)
        reporter = wrap_reporter(kwargs, report_reward)
        if kwargs.get("train_dataset") is None:
            kwargs["train_dataset"] = Dataset.from_dict({"prompt": [""] * (cfg.generation_batch_size
                                                                           // cfg.num_generations)})
        super().__init__(**kwargs)
        self.curriculum, self.curriculum_experiment, self.run_id = curriculum, experiment, run_id
        self.prompt_fn, self.lease_seconds = prompt_fn, lease_seconds
        self.curriculum_reward = reporter
        reporter.trainer = self
        self.leased: dict[int, dict] = {}  # global step -> the batch this rank trained on (for inspection)
        self._warned = False

    def lease_key(self, step: int) -> str:
        return f"{self.run_id}/step-{step}"

    def _generate_and_score_completions(self, inputs):
        if not self.model.training:  # evaluation keeps the eval dataset's prompts
            return super()._generate_and_score_completions(inputs)
        return super()._generate_and_score_completions(self._leased_rows(len(inputs)))

    def _leased_rows(self, n_rows: int) -> list[dict]:
        g, acc = self.num_generations, self.accelerator
        per_rank = n_rows // g
        step = self.state.global_step
        batch = self.curriculum.lease(self.curriculum_experiment, per_rank * acc.num_processes,
                                      worker=f"{self.run_id}/rank-{acc.process_index}",
                                      lease_seconds=self.lease_seconds, lease_key=self.lease_key(step))
        items = batch["items"]
        if not items:
            raise RuntimeError(f"experiment {self.curriculum_experiment!r} leased no items for step {step}: "
                               "every item is leased elsewhere or the pool is empty")
        self._warn_unsupported(items)
        self.leased[step] = batch
        # this rank's slice; a short batch (few eligible items) is cycled to keep the shape TRL needs
        mine = [items[(acc.process_index * per_rank + k) % len(items)] for k in range(per_rank)]
        rows = []
        for it in mine:
            row = {"prompt": self.prompt_fn(it), "item_id": it["id"], "answer": it.get("answer"),
                   "category": it["category"], "batch_id": batch["batch_id"]}
            rows.extend(dict(row) for _ in range(g))  # consecutive copies: TRL normalises per group
        return rows

    def _warn_unsupported(self, items: list[dict]) -> None:
        if self._warned:
            return
        odd = [it for it in items if it["num_samples"] != self.num_generations or it.get("max_tokens")]
        if odd:
            self._warned = True
            it = odd[0]
            warnings.warn(f"the curriculum asks for per-item num_samples/max_tokens (e.g. item {it['id']!r}: "
                          f"num_samples={it['num_samples']}, max_tokens={it.get('max_tokens')}); TRL generates "
                          f"num_generations={self.num_generations} completions of max_completion_length for "
                          "every prompt, so they are ignored", UserWarning, stacklevel=2)


_CLASS = None


def make_trainer_class():
    """TRL's GRPOTrainer (checked: version and hook) with CurriculumTrainerMixin in front; built once."""
    global _CLASS
    if _CLASS is None:
        class _CurriculumGRPOTrainer(CurriculumTrainerMixin, _grpo_trainer_class()):
            __doc__ = CurriculumTrainerMixin.__doc__

        _CLASS = _CurriculumGRPOTrainer
    return _CLASS
