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


def test_rooms_stay_small():
    """No module of the four packages over 400 lines, no function over 60: a room that grows past them carries
    more than one purpose (split it, as strategy.py became params/steps/noise_guard/sampling)."""
    import ast

    over = []
    for pkg in ("curriculum", "services", "workers", "deploy"):
        for path in sorted((REPO / pkg).rglob("*.py")):
            src = path.read_text()
            rel = path.relative_to(REPO)
            if src.count("\n") > 400:
                over.append(f"{rel}: {src.count(chr(10))} lines")
            for node in ast.walk(ast.parse(src)):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    length = node.end_lineno - node.lineno + 1
                    if length > 60:
                        over.append(f"{rel}:{node.lineno} {node.name}(): {length} lines")
    assert not over, "\n".join(over)
