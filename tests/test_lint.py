"""The code stays clean under the ruff configuration in pyproject.toml ([tool.ruff]); ruff is in the `dev` extra."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_ruff_check_is_clean():
    out = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", "."],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, f"ruff check found problems (fix: ruff check --fix .):\n{out.stdout}{out.stderr}"
