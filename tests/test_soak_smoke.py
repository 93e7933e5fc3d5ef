"""benchmarks/soak.py as a smoke run (seconds): 4 REST workers over 2 experiments, an owner and a worker
killed midway; no call fails, nothing acknowledged is missing from the experiments' state."""
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_soak_smoke(tmp_path):
    out = tmp_path / "soak.json"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    subprocess.run([sys.executable, "benchmarks/soak.py", "--duration", "15", "--workers", "4", "--experiments", "2",
                    "--items", "200", "--out", str(out)], cwd=REPO, env=env, check=True, timeout=600,
                   stdout=subprocess.DEVNULL)
    res = json.loads(out.read_text())
    assert res["errors"] == 0, res["error_examples"]
    assert [f["fault"] for f in res["faults"]] == ["kill_owner", "kill_worker"]
    # a killed worker's last report may be applied without its answer arriving: never fewer, at most one batch more
    assert 0 < res["events_acknowledged"] <= res["events_in_state"] <= res["events_acknowledged"] + res["batch"]
    assert out.with_suffix(".png").exists()
