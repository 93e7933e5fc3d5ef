"""Render the Helm chart offline (helm-python-sdk = Helm v4's Go SDK; no helm binary, no cluster)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm"
EXAMPLES = CHART / "examples"
RELEASE, NAMESPACE = "cur", "ml"
FULLNAME = "cur-curriculum"


def shared_dir() -> Path:
    """The project's shared docs/schemas: ../shared beside the checkout, or $CURRICULUM_SHARED."""
    return Path(os.environ.get("CURRICULUM_SHARED") or Path(__file__).resolve().parents[3] / "shared")


def example(name: str) -> dict:
    return yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())


@pytest.fixture(scope="session")
def chart():
    helm = pytest.importorskip("helm_python")
    with helm.Chart.load(CHART) as c:
        yield c


@pytest.fixture(scope="session")
def render(chart):
    """render(values) -> the rendered objects (NOTES.txt left out), in template order."""

    def _render(values: dict | None = None) -> list[dict]:
        manifests = chart.render(values=values or {}, name=RELEASE, namespace=NAMESPACE, is_install=True)
        docs = []
        for path, text in sorted(manifests.items()):
            if path.endswith("NOTES.txt"):
                continue
            docs += [d for d in yaml.safe_load_all(text) if d]
        return docs

    return _render


def one(docs: list[dict], kind: str) -> dict:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def ray_pod_specs(rayservice: dict) -> list[dict]:
    """Pod specs of the head and of every worker group."""
    rc = rayservice["spec"]["rayClusterConfig"]
    return [rc["headGroupSpec"]["template"]["spec"]] + [g["template"]["spec"] for g in rc["workerGroupSpecs"]]
