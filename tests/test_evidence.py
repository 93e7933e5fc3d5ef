"""The evidence benchmark: its metric on hand-made curves, and a tiny slice of the matrix end to end (real Ray,
Redis, controller, rollout actor and GRPO trainer), interrupted-and-resumed as a user would."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.evidence_metric import auc, bootstrap_interval, ratio, rollouts_to_target, trailing, value_at

ROOT = Path(__file__).resolve().parents[1]


def curve(*pts):
    return [{"rollouts": r, "pass_rate": p} for r, p in pts]


def test_primary_metric_uses_the_trailing_mean_of_three_points():
    c = curve((0, 0.2), (100, 0.6), (200, 0.2), (300, 0.3), (400, 0.5), (500, 0.5))
    assert trailing(c)[2:4] == pytest.approx([1.0 / 3, 1.1 / 3]) and all(x != x for x in trailing(c)[:2])
    # one spike (0.6 at 100) does not count: the mean of the last three first reaches 0.4 at 500
    assert rollouts_to_target(c, 0.4) == 500
    assert rollouts_to_target(c, 0.6) is None


def test_secondary_readings_interpolate_and_average_over_the_budget():
    c = curve((0, 0.0), (100, 1.0))
    assert value_at(c, 50) == pytest.approx(0.5)
    assert value_at(c, 500) == pytest.approx(1.0)  # a curve that stopped earlier keeps its last value
    assert auc(c, 100) == pytest.approx(0.5)
    assert auc(c, 200) == pytest.approx(0.75)


def test_ratio_marks_bounds_when_a_side_never_reaches_the_target():
    assert ratio({"to_target": 300, "budget": 900}, {"to_target": 100, "budget": 900}) == (3.0, "")
    assert ratio({"to_target": None, "budget": 900}, {"to_target": 100, "budget": 800}) == (9.0, ">=")
    assert ratio({"to_target": 300, "budget": 900}, {"to_target": None, "budget": 600}) == (0.5, "<=")
    assert ratio({"to_target": None, "budget": 9}, {"to_target": None, "budget": 9}) == (None, "")


def test_bootstrap_interval_brackets_the_geometric_mean():
    assert bootstrap_interval([2.0]) is None
    lo, hi = bootstrap_interval([1.5, 2.0, 2.5, 3.0, 4.0])
    assert 1.5 <= lo < 2.4 < hi <= 4.0
    assert bootstrap_interval([2.0, 2.0, 2.0]) == pytest.approx((2.0, 2.0))


def test_bootstrap_interval_of_paired_differences_is_arithmetic_and_keeps_the_sign():
    # AUC differences can be negative, which a geometric mean cannot take
    lo, hi = bootstrap_interval([-0.006, -0.004, -0.005, 0.001, -0.003], geometric=False)
    assert -0.006 <= lo < -0.0034 < hi <= 0.001
    assert bootstrap_interval([0.01, 0.01], geometric=False) == pytest.approx((0.01, 0.01))


@pytest.mark.slow
def test_tiny_slice_runs_resumes_and_reports(tmp_path):
    out = tmp_path / "evidence"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(ROOT)}
    env.pop("RAY_ADDRESS", None)
    cmd = [sys.executable, str(ROOT / "benchmarks" / "evidence.py"), "--size", "tiny", "--noise", "coin",
           "--setting", "arithmetic", "rg-terms", "--strategies", "default", "uniform+DS", "--seeds", "0",
           "--out", str(out)]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    cells = sorted(out.glob("arithmetic-tiny/coin/*/seed0.json"))
    assert [c.parent.name for c in cells] == ["default", "uniform+DS"]
    second = sorted(out.glob("rg-terms-tiny/coin/*/seed0.json"))  # the second family: reasoning-gym terms
    assert [c.parent.name for c in second] == ["default", "uniform+DS"]
    for c in cells + second:
        rec = json.loads(c.read_text())
        assert rec["curve"][0]["rollouts"] == 0 and rec["curve"][-1]["rollouts"] > 0
        assert len(rec["warm_start"]["checksum"]) == 12 and rec["cell_wall_s"] > 0
    # budget-matched: the default runs until it has generated uniform+DS's rollouts of the seed (or its step cap)
    for default, uniform in (cells, second):
        d, u = json.loads(default.read_text()), json.loads(uniform.read_text())
        assert u["rollout_budget"] is None and d["rollout_budget"] == u["curve"][-1]["rollouts"]
        assert d["train_steps"] == 4 * u["train_steps"]
        assert d["curve"][-1]["rollouts"] >= d["rollout_budget"] or d["curve"][-1]["step"] == d["train_steps"]
    rg = json.loads(second[0].read_text())
    assert set(rg["warm_start"]["pass_rate"]) == {"t2", "t3", "t4", "t5", "noise"}
    assert set(rg["rollouts_by_category"]) <= {"t2", "t3", "t4", "t5", "noise"}
    # the cells of a family share one warm start (one cache entry per family) and the same map
    for family in (cells, second):
        assert len({json.loads(c.read_text())["warm_start"]["checksum"] for c in family}) == 1
    assert len(list((out / "warm-start").iterdir())) == 2
    # an interrupted matrix resumes: a removed cell runs again, the one on disk does not
    (cells[0]).unlink()
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "4 cells (uniform+DS included: the budget), 3 on disk, 1 to run" in proc.stdout and cells[0].exists()
    md = (out / "evidence-arithmetic-tiny.md").read_text()
    assert "| default |" in md and "| uniform+DS |" in md and "(reference)" in md
    assert (out / "evidence-arithmetic-tiny.png").stat().st_size > 5000
    assert json.loads((out / "evidence-arithmetic-tiny.json").read_text())["summary"]["coin"]["default"]["seeds"]
    assert "| default |" in (out / "evidence-rg-terms-tiny.md").read_text()
