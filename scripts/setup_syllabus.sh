#!/usr/bin/env bash
# Idempotent set-up of a SEPARATE venv, .venv-syllabus, with the Syllabus curriculum library (syllabus-rl) for
# the peer benchmark benchmarks/peers/syllabus_sim.py and its test (tests/peers/test_syllabus_sim.py).
# The main .venv stays without Syllabus; this venv holds the project WITHOUT its heavy dependencies: the
# simulated student (curriculum/) needs only numpy and pydantic.
#
# syllabus-rl 0.7 declares torch (unpinned), ray (unpinned), gymnasium, pettingzoo, joblib and numpy, and
# imports matplotlib and scipy without declaring them (`import syllabus.curricula` fails without both).
# Order matters: torch==2.13.0 first (an unpinned resolve would pull a multi-GB CUDA build) and ray at the
# project's pin, then syllabus-rl, then the project editable with --no-deps.
# Set CURRICULUM_SYLLABUS_VENV to use another folder.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${CURRICULUM_SYLLABUS_VENV:-.venv-syllabus}
PY=${PYTHON:-python3}
SYLLABUS_VERSION=0.7
if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup-syllabus] creating $VENV"
  "$PY" -m venv "$VENV"
fi
[ -f "$VENV/.gitignore" ] || echo '*' > "$VENV/.gitignore"
stamp="$VENV/.installed-$(cat scripts/setup_syllabus.sh | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  echo "[setup-syllabus] installing syllabus-rl $SYLLABUS_VERSION and the project (no deps) into $VENV"
  t0=$(date +%s)
  P="$VENV/bin/python"
  "$P" -m pip install -q --upgrade pip
  "$P" -m pip install -q "torch==2.13.0" "ray==2.60.0"
  "$P" -m pip install -q "syllabus-rl==$SYLLABUS_VERSION" matplotlib scipy "numpy>=2" "pydantic>=2.6" \
    pytest pytest-timeout
  "$P" -m pip install -q --no-deps -e .
  "$P" -c "import importlib.metadata as m, numpy, torch, syllabus.curricula, curriculum.simulator
print('[setup-syllabus] syllabus-rl', m.version('syllabus-rl'), 'numpy', numpy.__version__, 'torch', torch.__version__)"
  rm -f "$VENV"/.installed-*
  touch "$stamp"
  echo "[setup-syllabus] done in $(( $(date +%s) - t0 )) s, $(du -sh "$VENV" | cut -f1)"
fi
