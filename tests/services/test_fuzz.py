"""Schema fuzzing with schemathesis against the live /openapi.json: no input may cause a 5xx."""
import subprocess
import sys
from pathlib import Path


def test_schemathesis_finds_no_server_errors(stack, api, tmp_path):
    api.create_experiment(
        "fuzz", "sec", items=[{"id": f"q{i}", "prompt": "p", "category": f"c{i % 2}"} for i in range(10)]
    )
    exe = Path(sys.executable).with_name("schemathesis")
    cmd = [str(exe), "run", f"{stack.url}/openapi.json", "--checks", "not_a_server_error", "--max-examples", "25",
           "--seed", "1", "--request-timeout", "30", "--max-time", "60", "--phases", "examples,coverage,fuzzing"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=400, cwd=tmp_path)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-4000:]
    assert " passed" in out and "Server error" not in out
