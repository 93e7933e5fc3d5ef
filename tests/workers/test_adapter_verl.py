"""The verl adapter against the real service, exercised the way verl's own CPU tests exercise its replay buffer:
a real TransferQueue (on a local Ray with 4 logical CPUs), fake trajectories written by a producer, and the
dataset / replay-buffer classes loaded through verl's own hooks (`data.custom_cls`, `custom_sampler`).

Runs in .venv-verl (scripts/test.sh; scripts/venv.sh verl); skipped where verl is not installed. The
service runs from the main .venv in a subprocess (tests/workers/peer_service.py).
"""
import inspect
import uuid

import pytest

pytest.importorskip("verl")
pytest.importorskip("transfer_queue")

import torch  # noqa: E402

from services.client import CurriculumClient  # noqa: E402
from tests.workers.peer_service import ServedController, free_port  # noqa: E402

ITEMS = [{"id": f"q{i}", "prompt": f"{i}+1=", "category": f"d{i % 3}", "answer": str(i + 1)} for i in range(40)]
GROUP = 4


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    s = ServedController(tmp_path_factory.mktemp("serve"), free_port()).wait_ready()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def tq_ready():
    import ray
    import transfer_queue as tq

    ray.init(num_cpus=4, include_dashboard=False)  # TransferQueue's actors need 3 logical CPUs
    tq.init()
    yield tq
    tq.close()
    ray.shutdown()


@pytest.fixture()
def exp(served):
    name = f"v-{uuid.uuid4().hex[:8]}"
    with CurriculumClient(served.url) as c:
        c.create_experiment(name, "uniform", items=ITEMS, group_size=GROUP)
        yield name, c


def dataset(served, name, **env):
    from omegaconf import OmegaConf
    from verl.trainer.ppo.utils import create_rl_dataset

    cfg = OmegaConf.create({"custom_cls": {"path": "pkg://workers.adapters.verl", "name": "CurriculumDataset"}})
    source = f"curriculum://{served.url.split('://')[1]}/{name}"
    return create_rl_dataset(source, cfg, tokenizer=None, processor=None)  # verl's own construction path


def produce(tq, partition, rows, rewards, step=0):
    """Write each row's group like the v1 agent loop does: all trajectories (fields copied from the row), then
    the prompt's terminal status."""
    uids = []
    for row, rs in zip(rows, rewards):
        uid = uuid.uuid4().hex
        assert len(rs) == row["__rollout_n__"]
        for s, r in enumerate(rs):
            tq.kv_put(key=f"{uid}_{s}_0", partition_id=partition,
                      fields={"input_ids": torch.tensor([1, 2, 3]), "rm_scores": torch.tensor([0.0, 0.0, r]),
                              "item_id": row["item_id"], "batch_id": row["batch_id"]},
                      tag={"is_prompt": False, "seq_len": 3, "global_steps": step})
        tq.kv_put(key=uid, partition_id=partition, tag={"is_prompt": True, "status": "finished", "global_steps": step})
        uids.append(uid)
    return uids


def buffer(served, name, refill=None, kind="CurriculumReplayBuffer", **sampler_kwargs):
    from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer
    from verl.utils.import_utils import load_extern_type

    cls = load_extern_type("pkg://workers.adapters.verl", kind)  # verl's custom_sampler path
    assert issubclass(cls, ReplayBuffer)
    return cls(
        trainer_mode="sync" if kind == "CurriculumReplayBuffer" else "colocate_async",
        trainer_config={},
        max_off_policy_threshold=8,
        max_off_policy_strategy="drop",
        sampler_kwargs={"url": served.url, "experiment": name, "poll_interval": 0.05, **sampler_kwargs},
        refill_fn=refill,
    )


def test_the_hooks_exist_in_the_installed_verl():
    import verl
    from verl.trainer.ppo.v1 import agent_loop_tq, replay_buffer, trainer_base
    from verl.utils.dataset import rl_dataset

    assert verl.__version__ == "0.9.1"
    assert "custom_cls" in inspect.getsource(rl_dataset.get_dataset_class)
    assert "__rollout_n__" in inspect.getsource(agent_loop_tq)
    assert "field.update(kwargs)" in inspect.getsource(agent_loop_tq)  # row fields reach every trajectory
    assert "custom_sampler" in inspect.getsource(trainer_base.RayPPOTrainer._build_replay_buffer
                                                 if hasattr(trainer_base, "RayPPOTrainer") else trainer_base)
    assert list(inspect.signature(replay_buffer.ReplayBuffer._evict_terminal_groups).parameters) == \
        ["self", "global_steps", "partition_id", "eviction_reasons"]


def test_each_fetch_is_one_lease_and_a_resumed_loader_gets_the_same_batches(served, exp):
    from torchdata.stateful_dataloader import StatefulDataLoader
    from verl.utils.dataset.rl_dataset import collate_fn

    name, c = exp
    ds = dataset(served, name)
    dl = StatefulDataLoader(ds, batch_size=4, collate_fn=collate_fn, num_workers=0, shuffle=True)
    it = iter(dl)
    first = next(it)
    state = dl.state_dict()
    second = next(it)
    assert c.state(name)["details"]["batches"] == 2  # one lease per fetch, not one per row
    assert list(first["__rollout_n__"]) == [GROUP] * 4 and len(set(first["item_id"])) == 4
    assert set(first["batch_id"]) == {ds.leased[0]["batch_id"]}
    by_id = {it["id"]: it for it in ITEMS}
    assert [m[0]["content"] for m in first["raw_prompt"]] == [by_id[i]["prompt"] for i in first["item_id"]]
    # a restarted trainer restores the loader from its checkpoint and re-asks for fetch 1: same batch, no new lease
    ds2 = dataset(served, name)
    dl2 = StatefulDataLoader(ds2, batch_size=4, collate_fn=collate_fn, num_workers=0, shuffle=True)
    dl2.load_state_dict(state)
    again = next(iter(dl2))
    assert list(again["item_id"]) == list(second["item_id"]) and ds2.leased[0]["batch_id"] == ds.leased[1]["batch_id"]
    assert c.state(name)["details"]["batches"] == 2


def test_finished_groups_are_reported_once_dapo_filtered_included(served, exp, tq_ready):
    tq = tq_ready
    name, c = exp
    part = "train"  # the partition verl's trainer uses (metric names depend on it)
    ds = dataset(served, name)
    produced = []

    def refill(k):  # the trainer's refill path: fetch from the (curriculum) dataloader, roll out, store
        rows = ds.__getitems__(list(range(k)))
        produced.extend(produce(tq, part, rows, [[1.0, 0.0, 1.0, 0.0]] * k))
        return k

    rows = ds.__getitems__(list(range(4)))
    # three all-equal groups: DAPO drops them from training and refills (2 per drop) -- the curriculum still hears
    # about every one of them
    produced += produce(tq, part, rows, [[1.0] * 4, [0.0] * 4, [1.0] * 4, [0.0, 1.0, 1.0, 1.0]])
    rb = buffer(served, name, refill, filter_groups_metric="reward", train_batch_size=2, gen_batch_size=1,
                max_inflight_gen_batches=4)
    batch, metrics = rb.sample(global_steps=0, partition_id=part, batch_size=2)
    assert metrics["training/filter_groups/evicted_samples"] == 3 and len(produced) == 4 + 6
    assert len({k.split("_")[0] for k in batch.keys}) == 2
    st = c.state(name)
    assert rb.reported["groups"] == rb.reported["accepted"] == len(produced)  # every group, once
    assert st["events"] == len(produced) and st["details"]["duplicates"] == 0
    assert st["degenerate_ratio"] == pytest.approx(3 / len(produced))
    clear(tq, part)


def clear(tq, part):
    keys = list(tq.kv_list(partition_id=part).get(part, {}))
    if keys:
        tq.kv_clear(keys=keys, partition_id=part)


def test_a_restarted_buffer_reports_duplicates_not_new_events(served, exp, tq_ready):
    tq = tq_ready
    name, c = exp
    part = "train"
    ds = dataset(served, name)
    rows = ds.__getitems__(list(range(3)))
    produce(tq, part, rows, [[1.0, 0.0, 0.0, 1.0]] * 3)
    # the second buffer (the async trainer's class) is a restarted trainer polling the same TransferQueue
    for attempt, kind in enumerate(["CurriculumReplayBuffer", "CurriculumReplayBufferAsync"]):
        rb = buffer(served, name, kind=kind)
        rb._sync_metadata_from_transfer_queue()
        rb.report_finished(part)
        rb.report_finished(part)  # a second poll reports nothing new
        assert rb.reported == {"groups": 3, "accepted": 3 - 3 * attempt, "duplicates": 3 * attempt, "calls": 1}
    st = c.state(name)
    assert st["events"] == 3 and st["details"]["duplicates"] == 3
    clear(tq, part)
