#!/usr/bin/env bash
# Idempotent set-up of a SEPARATE venv for a peer trainer library the adapters in workers/adapters/ plug into:
#   bash scripts/setup_peer.sh trl    -> .venv-trl   (TRL 1.16.0: workers/adapters/trl.py)
#   bash scripts/setup_peer.sh verl   -> .venv-verl  (verl 0.9.1: workers/adapters/verl.py)
# The peer venv holds the peer library, the project WITHOUT its dependencies (the adapters import only
# services.client, which needs httpx) and pytest. The curriculum service the peer tests talk to runs from the
# main .venv (`curriculum serve` in a subprocess), so neither Ray nor Redis has to resolve beside TRL or verl.
# Order matters: torch==2.13.0 first (an unpinned resolve pulls a multi-GB CUDA build).
# Set CURRICULUM_PEER_VENV to use another folder.
set -euo pipefail
cd "$(dirname "$0")/.."
peer=${1:?usage: setup_peer.sh trl|verl}
case "$peer" in
  trl)  pkgs=("trl==1.16.0" accelerate datasets) ;;
  # verl's imports also need these (measured: DESIGN §8); TransferQueue runs its own Ray actors
  verl) pkgs=("verl==0.9.1" "TransferQueue>=0.1.10" cachetools uvicorn fastapi pyzmq msgspec) ;;
  *) echo "unknown peer $peer (trl|verl)" >&2; exit 2 ;;
esac
VENV=${CURRICULUM_PEER_VENV:-.venv-$peer}
PY=${PYTHON:-python3}
[ -x "$VENV/bin/python" ] || { echo "[setup-$peer] creating $VENV"; "$PY" -m venv "$VENV"; }
[ -f "$VENV/.gitignore" ] || echo '*' > "$VENV/.gitignore"
stamp="$VENV/.installed-$(cat pyproject.toml scripts/setup_peer.sh | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  echo "[setup-$peer] installing ${pkgs[*]} into $VENV (first time: a minute or two)"
  t0=$(date +%s)
  P="$VENV/bin/python"
  "$P" -m pip install -q --upgrade pip
  "$P" -m pip install -q "torch==2.13.0"
  "$P" -m pip install -q "${pkgs[@]}" httpx pytest pytest-timeout
  "$P" -m pip install -q --no-deps -e .
  "$P" -c "import importlib, torch, transformers, services.client, workers.adapters.$peer as a
m = importlib.import_module(a.PEER)
print('[setup-$peer]', a.PEER, m.__version__, 'torch', torch.__version__, 'transformers', transformers.__version__)"
  rm -f "$VENV"/.installed-*
  touch "$stamp"
  echo "[setup-$peer] done in $(( $(date +%s) - t0 )) s"
fi
