"""deploy/Dockerfile installs the project the README's way (scripts/setup.sh), CPU by default, CUDA by build arg.
No Docker daemon on CI: these read the Dockerfile, and run setup.sh's extras expansion in bash."""
from __future__ import annotations

import re
import subprocess

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


def test_installs_through_setup_sh_only():
    runs = [a for w, a in instructions() if w == "RUN"]
    setup = [r for r in runs if "scripts/setup.sh" in r]
    assert len(setup) == 1 and 'CURRICULUM_EXTRAS="${CURRICULUM_EXTRAS}"' in setup[0]
    # no second way in: the project, torch and the extras all come from setup.sh
    assert not [r for r in runs if re.search(r"pip3? install|-m pip|\buv\b|setup\.py|\bpoetry\b", r)]
    # the repository is in the image before setup.sh runs (pip install -e . needs the packages)
    ins = instructions()
    copy_at = next(i for i, (w, a) in enumerate(ins) if w == "COPY")
    setup_at = next(i for i, (w, a) in enumerate(ins) if w == "RUN" and "scripts/setup.sh" in a)
    assert copy_at < setup_at and ("WORKDIR", "/app") in ins[:copy_at]


def test_venv_commands_are_on_path():
    env = " ".join(a for w, a in instructions() if w == "ENV")
    assert "PATH=/app/.venv/bin:" in env  # setup.sh's default venv, under WORKDIR /app
    assert any("/etc/profile.d/" in a for w, a in instructions() if w == "RUN")  # KubeRay's `bash -lc`


def test_host_venv_stays_out_of_the_build_context():
    ignore = (REPO / "deploy" / "Dockerfile.dockerignore").read_text().split()
    assert ".venv" in ignore


def test_setup_sh_passes_the_extras_to_pip():
    line = next(ln for ln in (REPO / "scripts" / "setup.sh").read_text().splitlines() if "pip install -q -e" in ln)
    spec = re.search(r'"(\.\[.*\])"', line).group(1)
    expand = lambda env: subprocess.run(["bash", "-c", f'echo "{spec}"'], env=env, capture_output=True,  # noqa: E731
                                        text=True, check=True).stdout.strip()
    assert expand({}) == ".[dev]"  # the README's default
    assert expand({"CURRICULUM_EXTRAS": "gpu"}) == ".[gpu]"
