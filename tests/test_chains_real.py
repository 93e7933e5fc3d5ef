"""h1 chains on the real learner (benchmarks/chains_real.py): a tiny run of the horizon curriculum end to end (real
Ray, Redis, controller, rollout actor, GRPO trainer) that must stop at its rollout budget, never draw the
evaluation-only horizon, and evaluate every horizon at its last step; and the report on hand-made records."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.chains_real import strategies, summarise, write_report

ROOT = Path(__file__).resolve().parents[1]


def test_the_three_arms_sets_keep_the_longer_horizon_out_of_training():
    s = strategies(3)
    assert s["horizon"] == {"name": "horizon", "params": {"arms": ["h1", "h2", "h3"]}}
    assert s["target-only"]["params"]["arms"] == ["h3"] and s["uniform"]["params"]["arms"] == ["h1", "h2", "h3"]


def record(label, points, budget=1000):
    return {"label": label, "seed": 0, "horizon": 2, "budget": budget, "steps": 10, "degenerate_share": 0.5,
            "wall_s": 1.0, "rollouts_by_category": {},
            "curve": [{"rollouts": r, "h2": p, "h3": q} for r, p, q in points]}


def test_summary_reads_rollouts_to_target_and_values_at_budget_shares(tmp_path):
    recs = [record("horizon", [(0, 0.1, 0.0), (200, 0.3, 0.1), (400, 0.4, 0.2), (1000, 0.4, 0.3)]),
            record("target-only", [(0, 0.1, 0.0), (500, 0.1, 0.0), (1000, 0.2, 0.0)])]
    s = summarise(recs)
    assert s["horizon"]["seeds"][0]["to_target"] == 400  # trailing mean of 3 first reaches 0.1 + 0.15 at 400
    assert s["horizon"]["L_50"] == pytest.approx(0.2 + 0.1 / 6) and s["horizon"]["H_100"] == pytest.approx(0.4)
    assert s["target-only"]["reached"] == 0 and s["target-only"]["to_target_median"] is None
    table = write_report(recs, tmp_path)
    assert "| horizon | 1 | 1/1 | 400 | n/a |" in table  # no ratio against a baseline that never got there
    assert (tmp_path / "chains_real.png").stat().st_size > 5000


@pytest.mark.slow
def test_a_tiny_horizon_run_stops_at_its_budget_and_never_trains_the_longer_horizon(tmp_path):
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(ROOT)}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "chains_real.py"), "--size", "tiny",
                           "--horizon", "2", "--budget", "200", "--strategies", "horizon", "--out", str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rec = json.loads((tmp_path / "sft-h1" / "horizon" / "seed0.json").read_text())
    assert rec["steps"] < 50  # the budget, not train_steps, ended the run
    assert rec["curve"][-1]["rollouts"] >= 200
    assert rec["rollouts_by_category"] and "h3" not in rec["rollouts_by_category"]  # h3: evaluated, never drawn
    assert set(rec["final"]["pass_rate"]) == {"h1", "h2", "h3"}  # the last step evaluates every horizon
    assert (tmp_path / "sft-h1" / "chains_real.md").exists()
