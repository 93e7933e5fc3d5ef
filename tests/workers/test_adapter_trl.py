"""The TRL adapter against the real service: a real GRPOTrainer (CPU, tiny random Llama) leases its prompts from
`curriculum serve` and reports every group exactly once, across a restart and across 2 ranks.

Runs in .venv-trl (scripts/test.sh; scripts/venv.sh trl); skipped where TRL is not installed. The service
runs from the main .venv in a subprocess (tests/workers/peer_service.py).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("trl")

from services.client import CurriculumClient  # noqa: E402
from tests.workers import trl_run  # noqa: E402
from tests.workers.peer_service import ServedController, free_port  # noqa: E402

GROUPS = trl_run.ROWS // trl_run.GROUP  # groups per rank per step


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    s = ServedController(tmp_path_factory.mktemp("serve"), free_port()).wait_ready()
    yield s
    s.stop()


@pytest.fixture()
def client(served):
    with CurriculumClient(served.url) as c:
        yield c


def test_trains_on_exactly_the_leased_prompts_and_reports_each_group_once(served, client, tmp_path):
    client.create_experiment("trl-a", "uniform", items=trl_run.items(), group_size=trl_run.GROUP)
    seen = []
    t = trl_run.trainer(served.url, "trl-a", "run-a", 4, tmp_path, seen)
    t.train()
    assert [s for s, _, _ in seen] == [0, 1, 2, 3]
    by_id = {it["id"]: it["prompt"] for it in trl_run.items()}
    for step, prompts, ids in seen:
        # the same key answers the same batch: exactly what the trainer generated for at that step
        batch = client.lease("trl-a", GROUPS, lease_key=t.lease_key(step))
        leased = [it["id"] for it in batch["items"]]
        assert ids == [i for i in leased for _ in range(trl_run.GROUP)]  # consecutive groups of num_generations
        assert prompts == [by_id[i] for i in ids]
    st = client.state("trl-a")
    assert st["events"] == 4 * GROUPS and st["details"]["duplicates"] == 0
    assert st["details"]["batches"] == 4 and st["policy_version"] == 3
    assert t.curriculum_reward.reported == {"groups": 4 * GROUPS, "accepted": 4 * GROUPS, "duplicates": 0, "calls": 4}


def test_a_restart_mid_run_double_counts_no_group(served, client, tmp_path):
    from transformers import TrainerCallback

    class Crash(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == 4:  # after step 4's rewards were reported, before its checkpoint
                raise RuntimeError("killed")

    client.create_experiment("trl-b", "uniform", items=trl_run.items(), group_size=trl_run.GROUP)
    first = trl_run.trainer(served.url, "trl-b", "run-b", 5, tmp_path, save_strategy="steps", save_steps=2)
    first.add_callback(Crash())
    with pytest.raises(RuntimeError, match="killed"):
        first.train()
    assert client.state("trl-b")["events"] == 4 * GROUPS
    # the restarted trainer resumes from checkpoint-2: steps 2 and 3 are replayed under the same lease keys
    second = trl_run.trainer(served.url, "trl-b", "run-b", 5, tmp_path, save_strategy="steps", save_steps=2)
    second.train(resume_from_checkpoint=True)
    assert {s: b["batch_id"] for s, b in second.leased.items() if s < 4} == \
        {s: b["batch_id"] for s, b in first.leased.items() if s in (2, 3)}
    assert second.curriculum_reward.reported["duplicates"] == 2 * GROUPS
    st = client.state("trl-b")
    assert st["events"] == 5 * GROUPS  # 5 steps, each group once
    assert st["details"]["duplicates"] == 2 * GROUPS and st["details"]["batches"] == 5


def test_group_size_must_match_num_generations(served, client, tmp_path):
    client.create_experiment("trl-c", "uniform", items=trl_run.items(), group_size=8)
    with pytest.raises(ValueError, match="num_generations=4 .* group_size=8"):
        trl_run.trainer(served.url, "trl-c", "run-c", 1, tmp_path)


def test_per_item_token_budgets_are_ignored_with_one_warning(served, client, tmp_path):
    # a token-budget schedule sets max_tokens per item: TRL cannot honour it, so the adapter warns once and goes on
    client.create_experiment("trl-d", "uniform", {"token_budget": {"b0": 64, "b_min": 16}}, items=trl_run.items(),
                             group_size=trl_run.GROUP)
    t = trl_run.trainer(served.url, "trl-d", "run-d", 2, tmp_path)
    with pytest.warns(UserWarning, match="max_tokens=64") as w:
        t.train()
    assert len([x for x in w if "are ignored" in str(x.message)]) == 1
    assert client.state("trl-d")["events"] == 2 * GROUPS


def test_two_ranks_lease_once_per_step(served, client, tmp_path):
    client.create_experiment("trl-e", "uniform", items=trl_run.items(), group_size=trl_run.GROUP)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(trl_run.ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
           str(Path(trl_run.__file__)), served.url, "trl-e", "run-e", "3", str(tmp_path)]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2]
    assert ranks[0]["batch_ids"] == ranks[1]["batch_ids"]  # one batch per step, shared by both ranks
    st = client.state("trl-e")
    assert st["details"]["batches"] == 3
    assert st["events"] == 3 * 2 * GROUPS and st["details"]["duplicates"] == 0
    assert ranks[0]["reported"]["groups"] == 3 * 2 * GROUPS and ranks[1]["reported"]["groups"] == 0  # rank 0 reports
