"""The Syllabus peer harness (benchmarks/peers/syllabus_sim.py) on a small simulated student.

Runs in .venv-syllabus (`bash scripts/venv.sh syllabus`; scripts/test.sh does both); skipped where
syllabus-rl is not installed (the main .venv).
"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("syllabus")

from benchmarks.peers import syllabus_sim  # noqa: E402
from curriculum.simulator import SimConfig  # noqa: E402

CFG = SimConfig(categories=4, noisy=1, items_per_category=100, batch=32, group_size=8, budget=32 * 8 * 12,
                eval_every=2)


@pytest.fixture(scope="module")
def runs():
    return {name: syllabus_sim.run(name, seed=0, cfg=CFG) for name in syllabus_sim.CURRICULA}


def test_numpy_patches_hold():
    # Syllabus' import-time np.seterr(all='raise') is undone; its sample() works on numpy 2
    assert np.geterr()["under"] != "raise"
    assert np.__version__.startswith("2.")


@pytest.mark.parametrize("name", list(syllabus_sim.CURRICULA))
def test_run_accounting(runs, name):
    r = runs[name]
    g, k = CFG.group_size, CFG.categories + CFG.noisy
    counts = np.array(r["task_counts"])
    assert counts.sum() == r["steps"] * CFG.batch  # one item per sampled task
    assert r["rollouts"] == counts.sum() * g + r["eval_rollouts"] >= CFG.budget
    assert (r["eval_rollouts"] > 0) == (name == "syllabus:LearningProgress")
    # noisy share from the student's noisy mask: items of the last `noisy` categories, plus the evaluator's
    # rollouts on them (spread evenly over the k tasks)
    noisy = counts[CFG.categories:].sum() * g + r["eval_rollouts"] * CFG.noisy / k
    assert r["noisy_share"] == pytest.approx(noisy / r["rollouts"])
    assert 0 < r["noisy_share"] < 1
    assert set(r) >= {"strategy", "seed", "rollouts", "steps", "final_accuracy", "final_per_category",
                      "rollouts_to_target", "degenerate_ratio", "noisy_share", "curve_rollouts",
                      "curve_accuracy", "curve_per_category", "wall_s"}
    evals = sum(s % CFG.eval_every == 0 or s == r["steps"] for s in range(1, r["steps"] + 1))
    assert len(r["curve_rollouts"]) == len(r["curve_accuracy"]) == evals
    assert r["curve_rollouts"][-1] == r["rollouts"]
    assert r["final_accuracy"] > syllabus_sim.SimulatedStudent(CFG, 0).accuracy()[0]  # the student learnt


@pytest.mark.parametrize("name", list(syllabus_sim.CURRICULA))
def test_task_distribution_leaves_uniform(runs, name):
    counts = np.array(runs[name]["task_counts"], dtype=float)
    share = counts / counts.sum()
    tv = 0.5 * np.abs(share - 1 / len(share)).sum()
    # total variation from uniform: uniform sampling of these ~384 tasks gives 0.04 (median), 0.11 (99.99th pct)
    assert tv > 0.15, share


def test_plr_non_replay_draws_are_dropped(runs):
    # once every task is seen, 0.7's PLR hands non-replay draws to evaluation; the harness counts them
    assert runs["syllabus:PrioritizedLevelReplay"]["dropped_levels"] > 0
    assert runs["syllabus:OnlineLearningProgress"]["dropped_levels"] == 0


def test_cli_writes_json(tmp_path):
    out = tmp_path / "s.json"
    res = syllabus_sim.main(["--seeds", "1", "--budget", "2000", "--categories", "3", "--batch", "16",
                             "--curricula", "syllabus:OnlineLearningProgress", "--out", str(out)])
    assert out.exists() and res["config"]["budget"] == 2000 and res["config"]["noisy"] == 1
    assert (
        list(res["runs"]) == ["syllabus:OnlineLearningProgress"]
        and len(res["runs"]["syllabus:OnlineLearningProgress"]) == 1
    )
    assert res["summary"]["syllabus:OnlineLearningProgress"]["reached"] in (0, 1)
