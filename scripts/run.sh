#!/usr/bin/env bash
# The main job, from a fresh clone: set up (idempotent), then run. Extra arguments go to `curriculum run`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/venv.sh main
exec "${CURRICULUM_VENV:-.venv}/bin/curriculum" run "$@"
