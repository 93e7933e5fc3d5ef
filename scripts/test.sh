#!/usr/bin/env bash
# The test suite, from a fresh clone: set up (idempotent), then pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export RAY_USAGE_STATS_ENABLED=0
exec .venv/bin/python -m pytest -q "$@"
