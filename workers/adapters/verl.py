"""verl adapter (verl 0.9.x): a dataset that leases prompts from the curriculum service, and a replay buffer that
reports every finished group back -- DAPO-filtered ones included, they are the curriculum's best evidence.

verl removed its curriculum sampler in 0.8 (PR #6302). What 0.9.1 offers, and this adapter uses:

* `data.custom_cls` -> `verl.utils.dataset.rl_dataset.get_dataset_class` loads `CurriculumDataset` (it must
  subclass `torch.utils.data.Dataset`; it is built as `cls(data_files=, tokenizer=, processor=, config=,
  max_samples=)`). With `data.train_files=curriculum://HOST:PORT/EXPERIMENT` every dataloader fetch is ONE
  lease of the whole fetch (`__getitems__`, which torch's map-style fetcher prefers over `__getitem__`), under
  the lease key `{run_id}/fetch-{n}`; `n` is part of the dataset's `state_dict`, which verl's
  `StatefulDataLoader` checkpoints, so a resumed run re-asks for the same batches and gets them back. Each row
  carries `__rollout_n__` = the item's `num_samples` (read per prompt by the v1 agent loop,
  `trainer/ppo/v1/agent_loop_tq.py`) and `item_id` / `batch_id`, which the agent loop copies into every
  trajectory it stores in TransferQueue. Any other `data_files` (e.g. the validation parquet) load as verl's
  own `RLHFDataset`.
* `trainer.v1.sampler.custom_sampler` -> `load_extern_type` builds `CurriculumReplayBuffer` (a `ReplayBuffer`,
  sync trainer) or `CurriculumReplayBufferAsync` with the six keyword arguments verl passes to custom samplers.
  Its `_evict_terminal_groups` hook sees every terminal group of each poll before anything is evicted or
  sampled; the finished ones are reported once (`rm_scores` summed per trajectory = one reward per session),
  with rollout ids derived from (experiment, batch, item), so a re-sampled or replayed group is a duplicate.

Settings: `sampler_kwargs` (`trainer.v1.sampler.sampler_kwargs`) or the environment: `url` / CURRICULUM_URL,
`experiment` / CURRICULUM_EXPERIMENT, `token` / CURRICULUM_API_TOKEN; the dataset takes `run_id` from
CURRICULUM_RUN_ID (default: the experiment name). verl passes custom samplers no DAPO settings: to keep DAPO
filtering with this sampler, put `filter_groups_metric`, `train_batch_size`, `gen_batch_size`,
`max_inflight_gen_batches` in `sampler_kwargs` too.

Not supported: per-item `max_tokens` (verl's response length is global; ignored with one warning); multi-turn
agent loops report the last output's reward of each session only.
"""
from __future__ import annotations

import os
import warnings
from collections import defaultdict
from typing import Any
from urllib.parse import urlparse

from workers.adapters import check_version, rollout_id

PEER = "verl"
TESTED = "0.9.1"
SCHEME = "curriculum://"


def _verl() -> None:
    import verl

    # `custom_sampler` with the six-keyword contract and the v1 agent loop's `__rollout_n__` are 0.9's (the v1
    # trainer is new there); read in the 0.9.1 source only
    check_version("verl", verl.__version__, (0, 9), (0, 10), TESTED)


def parse_source(data_files: Any) -> tuple[str, str] | None:
    """`curriculum://host:port/experiment` (or `curriculum+https://...`) -> (base url, experiment)."""
    files = [data_files] if isinstance(data_files, str) else list(data_files or [])
    if len(files) != 1 or not str(files[0]).startswith(("curriculum://", "curriculum+")):
        return None
    u = urlparse(str(files[0]))
    scheme = u.scheme.split("+", 1)[1] if "+" in u.scheme else "http"
    experiment = u.path.strip("/")
    if not u.netloc or not experiment:
        raise ValueError(f"data_files: {files[0]!r} is not curriculum://HOST:PORT/EXPERIMENT")
    return f"{scheme}://{u.netloc}", experiment


def _client(url: str | None, token: str | None = None):
    from services.client import CurriculumClient

    url = url or os.environ.get("CURRICULUM_URL")
    if not url:
        raise ValueError("url: set sampler_kwargs.url or CURRICULUM_URL to the curriculum service")
    return CurriculumClient(url, token or os.environ.get("CURRICULUM_API_TOKEN"))


def _dataset_base():
    import torch.utils.data

    return torch.utils.data.Dataset


class CurriculumDataset(_dataset_base()):
    """`data.custom_cls` for verl: leases each dataloader fetch from the service (see the module docstring)."""

    def __init__(self, data_files, tokenizer=None, config=None, processor=None, max_samples: int = -1) -> None:
        _verl()
        source = parse_source(data_files)
        self.plain = None
        if source is None:  # validation sets and ordinary files: verl's own dataset
            from verl.utils.dataset.rl_dataset import RLHFDataset

            self.plain = RLHFDataset(data_files, tokenizer, config, processor, max_samples)
            return
        url, self.experiment = source
        self.client = _client(url)
        self.run_id = os.environ.get("CURRICULUM_RUN_ID") or self.experiment
        self.lease_seconds = float(os.environ.get("CURRICULUM_LEASE_SECONDS", 3600))
        self.num_items = self.client.experiment(self.experiment)["num_items"]
        self.fetches = 0  # fetches served so far: the next lease key
        self.leased: list[dict] = []  # batches this dataset handed out (for inspection)
        self._warned = False

    def __len__(self) -> int:
        # the sampler's index space; which item fills a slot is the service's choice, not the index's
        return len(self.plain) if self.plain is not None else max(1, self.num_items)

    def __getitem__(self, index: int) -> dict:
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: list[int]) -> list[dict]:
        if self.plain is not None:
            return [self.plain[i] for i in indices]
        key = f"{self.run_id}/fetch-{self.fetches}"
        batch = self.client.lease(self.experiment, len(indices), worker=f"verl/{self.run_id}",
                                  lease_seconds=self.lease_seconds, lease_key=key)
        if not batch["items"]:
            raise RuntimeError(f"experiment {self.experiment!r} leased no items: every item is leased elsewhere "
                               "or the pool is empty")
        self.fetches += 1
        self.leased.append(batch)
        items = batch["items"]
        self._warn_budget(items)
        # a short batch (few eligible items) is cycled: verl's dataloader wants exactly len(indices) rows
        return [self.row(items[k % len(items)], batch["batch_id"]) for k in range(len(indices))]

    def row(self, item: dict, batch_id: str) -> dict:
        import torch

        meta = item.get("metadata") or {}
        return {"raw_prompt": [{"role": "user", "content": item["prompt"]}],
                "data_source": meta.get("data_source", self.experiment),
                "reward_model": {"style": "rule", "ground_truth": item.get("answer")},
                "extra_info": {"item_id": item["id"], "category": item["category"]},
                "index": 0, "tools_kwargs": {}, "interaction_kwargs": {},
                "dummy_tensor": torch.tensor([0], dtype=torch.uint8),  # verl's batches need one tensor field
                "__rollout_n__": int(item["num_samples"]),
                "item_id": item["id"], "batch_id": batch_id}

    def _warn_budget(self, items: list[dict]) -> None:
        odd = next((it for it in items if it.get("max_tokens")), None)
        if odd is not None and not self._warned:
            self._warned = True
            warnings.warn(f"the curriculum sets per-item max_tokens (item {odd['id']!r}: {odd['max_tokens']}); verl's "
                          "response length is global (rollout.response_length), so it is ignored", UserWarning,
                          stacklevel=2)

    # StatefulDataLoader checkpoints a dataset that has these: a resumed run re-asks with the same lease keys
    def state_dict(self) -> dict:
        return {"fetches": getattr(self, "fetches", 0)}

    def load_state_dict(self, state: dict) -> None:
        if self.plain is None:
            self.fetches = int(state.get("fetches", 0))


class _Reporting:
    """Mixin over verl's ReplayBuffer / ReplayBufferAsync: report finished groups once, before eviction."""

    def __init__(self, trainer_mode, trainer_config, max_off_policy_threshold, max_off_policy_strategy,
                 sampler_kwargs=None, refill_fn=None, **extra) -> None:
        _verl()
        kw = dict(sampler_kwargs or {})
        self.curriculum = _client(kw.pop("url", None), kw.pop("token", None))
        self.experiment = kw.pop("experiment", None) or os.environ.get("CURRICULUM_EXPERIMENT")
        if not self.experiment:
            raise ValueError("experiment: set sampler_kwargs.experiment or CURRICULUM_EXPERIMENT")
        dapo = {k: kw[k] for k in ("filter_groups_metric", "train_batch_size", "gen_batch_size",
                                   "max_inflight_gen_batches", "poll_interval") if k in kw}
        super().__init__(trainer_mode=trainer_mode, trainer_config=trainer_config,
                         max_off_policy_threshold=max_off_policy_threshold,
                         max_off_policy_strategy=max_off_policy_strategy, sampler_kwargs=sampler_kwargs,
                         refill_fn=refill_fn, **{**dapo, **extra})
        self.reported_uids: set[str] = set()
        self.reported = {"groups": 0, "accepted": 0, "duplicates": 0, "calls": 0}

    def _evict_terminal_groups(self, global_steps, partition_id, eviction_reasons):
        if partition_id != "val":
            self.report_finished(partition_id)
        return super()._evict_terminal_groups(global_steps, partition_id, eviction_reasons)

    def report_finished(self, partition_id: str) -> None:
        import transfer_queue as tq

        finished = self.finished_keys[partition_id]
        self.reported_uids &= finished  # forget groups that left TransferQueue
        fresh = finished - self.reported_uids
        keys = sorted(k for k in self.partitions[partition_id] if k.split("_")[0] in fresh)
        if not keys:
            return
        data = tq.kv_batch_get(keys=keys, partition_id=partition_id,
                               select_fields=["rm_scores", "item_id", "batch_id"])
        sessions: dict[str, dict[str, float]] = defaultdict(dict)
        meta: dict[str, tuple[str, str, int]] = {}
        for key, score, item_id, batch_id in zip(keys, data["rm_scores"], data["item_id"], data["batch_id"]):
            uid, session = key.split("_")[:2]
            sessions[uid][session] = float(score.sum())  # the last output of a session wins
            meta[uid] = (str(getattr(item_id, "data", item_id)), str(getattr(batch_id, "data", batch_id)),
                         int(self.prompt_global_steps[partition_id].get(uid, 0)))
        results = [{"item_id": item_id, "rewards": list(sessions[uid].values()), "policy_version": step,
                    "rollout_id": rollout_id(self.experiment, batch_id, item_id)}
                   for uid, (item_id, batch_id, step) in meta.items()]
        ack = self.curriculum.report(self.experiment, results)
        self.reported_uids |= set(meta)
        self.reported["groups"] += len(results)
        self.reported["accepted"] += ack["accepted"]
        self.reported["duplicates"] += ack["duplicates"]
        self.reported["calls"] += 1


def _buffer_classes():
    from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer, ReplayBufferAsync

    return (type("CurriculumReplayBuffer", (_Reporting, ReplayBuffer), {"__module__": __name__}),
            type("CurriculumReplayBufferAsync", (_Reporting, ReplayBufferAsync), {"__module__": __name__}))


def __getattr__(name: str):
    # `trainer.v1.sampler.custom_sampler.name=CurriculumReplayBuffer` resolves here; verl is imported only then
    if name in ("CurriculumReplayBuffer", "CurriculumReplayBufferAsync"):
        sync, asynchronous = _buffer_classes()
        globals().update(CurriculumReplayBuffer=sync, CurriculumReplayBufferAsync=asynchronous)
        return globals()[name]
    raise AttributeError(name)
