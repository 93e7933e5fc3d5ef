"""deploy.job, the Ray job entry point: arguments, and the contract with deploy.cmd_run.run_pipeline.
(The pipeline itself runs in the end-to-end tests; a job on a real cluster is not tried here.)"""
from __future__ import annotations

import inspect
import subprocess
import sys

from deploy import job
from tests.deploy.conftest import REPO


def test_overrides_carry_only_what_was_given():
    assert job.overrides_from(job.parse_args([])) == {}
    args = job.parse_args(["--config", "configs/tiny.yaml", "--compare", "uniform", "--compare", "sec",
                           "--steps", "7", "--out", "runs/k8s"])
    assert args.config == "configs/tiny.yaml" and args.address == "auto"
    assert job.overrides_from(args) == {"compare": ["uniform", "sec"], "train_steps": 7, "out": "runs/k8s"}
    assert job.overrides_from(job.parse_args(["--compare", ""])) == {"compare": []}  # the curriculum alone


def test_overrides_are_runconfig_fields():
    from deploy.cmd_run import RunConfig, run_pipeline

    assert set(job.overrides_from(job.parse_args(["--compare", "u", "--steps", "1", "--out", "o"]))) \
        <= set(RunConfig.model_fields)
    assert list(inspect.signature(run_pipeline).parameters)[:3] == ["config_path", "address", "overrides"]


def test_a_bad_config_fails_before_anything_starts(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train_steps: 0\nno_such_field: 1\n")
    assert job.main(["--config", str(bad)]) == 2
    assert "invalid config" in capsys.readouterr().err


def test_runs_as_a_module():
    out = subprocess.run([sys.executable, "-m", "deploy.job", "--help"], cwd=REPO, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0 and "--compare" in out.stdout
