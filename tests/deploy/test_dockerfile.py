"""deploy/Dockerfile installs the project the README's way (scripts/venv.sh main), CPU by default, CUDA by build
arg. No Docker daemon on CI: these read the Dockerfile, and run venv.sh's extras expansion in bash."""
from __future__ import annotations

import re
import subprocess
import tomllib

from tests.deploy.conftest import REPO

DOCKERFILE = REPO / "deploy" / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    out, buf = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        buf += line.rstrip()
        if buf.endswith("\\"):
            buf = buf[:-1] + " "
            continue
        word, _, rest = buf.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        buf = ""
    return out


def test_base_image_is_cpu_by_default_and_a_build_arg():
    ins = instructions()
    assert ins[0] == ("ARG", "BASE_IMAGE=python:3.11-slim")
    assert ("FROM", "${BASE_IMAGE}") in ins
    args = dict(a.split("=", 1) for w, a in ins if w == "ARG" and "=" in a)
    assert args["CURRICULUM_EXTRAS"] == "dev"
    assert "whl/cpu" in args["TORCH_INDEX_URL"]  # CPU torch unless the CUDA build clears it


def test_installs_through_venv_sh_only():
    runs = [a for w, a in instructions() if w == "RUN"]
    setup = [r for r in runs if "scripts/venv.sh main" in r]
    assert len(setup) == 1 and 'CURRICULUM_EXTRAS="${CURRICULUM_EXTRAS}"' in setup[0]
    # no second way in: the project, torch and the extras all come from venv.sh
    assert not [r for r in runs if re.search(r"pip3? install|-m pip|\buv\b|setup\.py|\bpoetry\b", r)]
    # the repository is in the image before venv.sh runs (pip install -e . needs the packages)
    ins = instructions()
    copy_at = next(i for i, (w, a) in enumerate(ins) if w == "COPY")
    setup_at = next(i for i, (w, a) in enumerate(ins) if w == "RUN" and "scripts/venv.sh main" in a)
    assert copy_at < setup_at and ("WORKDIR", "/app") in ins[:copy_at]


def test_venv_commands_are_on_path():
    env = " ".join(a for w, a in instructions() if w == "ENV")
    assert "PATH=/app/.venv/bin:" in env  # venv.sh main's default venv, under WORKDIR /app
    assert any("/etc/profile.d/" in a for w, a in instructions() if w == "RUN")  # KubeRay's `bash -lc`


def test_host_venv_stays_out_of_the_build_context():
    ignore = (REPO / "deploy" / "Dockerfile.dockerignore").read_text().split()
    assert ".venv" in ignore


def test_venv_sh_passes_the_extras_to_pip():
    lines = (REPO / "scripts" / "venv.sh").read_text().splitlines()
    default = next(ln for ln in lines if ln.strip().startswith("main)")).split(")", 1)[1].split(";")[0].strip()
    assert default == "EXTRAS=${2:-${CURRICULUM_EXTRAS:-dev}}"
    install = [ln for ln in lines if re.search(r"\binstall -e \"\.\[\$EXTRAS\]\"", ln)]
    assert install  # the main venv's project install carries the extras
    script = f'set -- main; {default}; echo ".[$EXTRAS]"'
    expand = lambda env: subprocess.run(["bash", "-c", script], env=env, capture_output=True,  # noqa: E731
                                        text=True, check=True).stdout.strip()
    assert expand({}) == ".[dev]"  # the README's default
    assert expand({"CURRICULUM_EXTRAS": "gpu"}) == ".[gpu]"


def test_every_pip_install_gets_the_constraints():
    """torch is pinned once, in constraints.txt, and every install in venv.sh passes it."""
    script = (REPO / "scripts" / "venv.sh").read_text()
    assert 'C=(-c constraints.txt)' in script and '"$P" -m pip install -q "${C[@]}" "$@"' in script
    raw = [ln for ln in script.splitlines() if "pip install" in ln and not ln.lstrip().startswith("#")]
    assert all("${C[@]}" in ln or "--upgrade pip" in ln or "apt-get" in ln for ln in raw), raw
    pins = [ln for ln in (REPO / "constraints.txt").read_text().splitlines() if ln.startswith("torch==")]
    assert len(pins) == 1
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    torch_deps = [d for d in deps if d.startswith("torch")]
    assert torch_deps and "==" not in torch_deps[0]  # the exact pin lives in constraints.txt only
