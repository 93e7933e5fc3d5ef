"""End to end, as a user runs it: `curriculum run --config configs/tiny.yaml` in its own process (its own local
Ray, embedded Redis, controller, a rollout actor and the Ray Train trainer): the default curriculum and `uniform`
on the same warm start, whose pass-rate map is printed first."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.redis_server import free_port

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_curriculum_run_tiny_trains_and_reports(tmp_path):
    out = tmp_path / "report"
    cli = Path(sys.executable).with_name("curriculum")
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "COLUMNS": "120"}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.run([str(cli), "run", "--config", str(ROOT / "configs" / "tiny.yaml"), "--out", str(out),
                           "--port", str(free_port())],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    m = json.loads((out / "metrics.json").read_text())
    from curriculum.registry import DEFAULT_STRATEGY

    assert [s["strategy"] for s in m["summary"]] == [DEFAULT_STRATEGY["name"], "uniform"]  # compared by default
    assert set(m["warm_start"]["pass_rate"]) == {"d1", "d2", "noise"}
    assert (tmp_path / "runs" / "warm-start").is_dir()  # cached for the next run of the same config and seed
    for run in m["runs"]:
        h = run["history"]
        steps = m["config"]["train_steps"]
        assert [x["version"] for x in h] == list(range(1, steps + 1))  # the policy version advanced every step
        assert run["rollouts"] > 0 and run["final_state"]["events"] > 0  # rewards flowed to the controller
        assert sum(x["groups"] for x in h) > 0  # and groups reached the trainer
        assert any(w["weight_updates"] > 0 for w in run["workers"])  # students picked up new weights
        assert set(h[-1]["eval_pass"]) == {"d1", "d2", "noise"}  # the full map at the end
        mid = [x for x in h[:-1] if "eval_pass" in x]  # mid-run: the target levels only (all if there are none)
        assert mid and all(set(x["eval_pass"]) == set(m["targets"] or {"d1", "d2", "noise"}) for x in mid)
        assert run["queue"]["acked"] > 0
        assert sum(run["rollouts_by_category"].values()) == run["rollouts"]
    for s in m["summary"]:
        assert 0 <= s["noise_share"] <= 1 and set(s["time_shares"]) >= {"generation_s", "optimizer_s"}
    for png in ("compare.png", "arm_weights.png"):
        assert (out / png).stat().st_size > 5000
    assert "pass-rate map" in proc.stdout and "curriculum run" in proc.stdout
