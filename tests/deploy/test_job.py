"""deploy.job, the Ray job entry point: arguments, and the contract with deploy.pipeline.run_pipeline.
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
    from deploy.config import RunConfig
    from deploy.pipeline import run_pipeline

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


def test_the_main_jobs_evaluation_items_are_held_out():
    """The default pool holds ~40% of all 2-digit sums: evaluation must still be on prompts outside it (d1 has 100
    problems in all, every one in the pool, and keeps its plain draws)."""
    from curriculum.sources import items_from_source
    from deploy.config import RunConfig, eval_items

    cfg = RunConfig()
    pool = {i.prompt for i in items_from_source(cfg.source)}
    evals = eval_items(cfg)
    by_cat: dict[str, list[str]] = {}
    for e in evals:
        by_cat.setdefault(e["category"], []).append(e["prompt"])
    assert sorted(by_cat) == ["d1", "d2", "d3", "d4", "d5", "noise"]
    assert all(len(v) == cfg.eval_items_per_level for v in by_cat.values())
    assert not any(p in pool for c in ("d2", "d3", "d4", "d5", "noise") for p in by_cat[c])
    assert all(p in pool for p in by_cat["d1"])


def test_a_generated_source_is_evaluated_on_fresh_items_of_another_seed():
    from pathlib import Path

    from curriculum.sources import parse_source
    from deploy.config import RunConfig, eval_items, load_config

    cfg = load_config(str(Path(__file__).resolve().parents[2] / "configs" / "chains-tiny.yaml"))
    assert cfg.source["kind"] == "chain" and cfg.warm_start.mix == {"h1": 1.0}
    evals = eval_items(RunConfig(source={"kind": "chain", "max_horizon": 3, "per_arm": 64}, eval_items_per_level=16))
    pool = parse_source({"kind": "chain", "max_horizon": 3, "per_arm": 64}).items()
    assert sorted({e["category"] for e in evals}) == ["h1", "h2", "h3"] and len(evals) == 48
    assert not {e["prompt"] for e in evals if e["category"] == "h3"} & {i.prompt for i in pool}


def test_the_job_imports_no_cli_library():
    """A Ray job needs nothing but `python -m`: deploy.job and the pipeline it runs never import typer, even
    through other modules (a fresh interpreter, so nothing else has imported it before)."""
    code = ("import sys, deploy.job, deploy.pipeline, deploy.report, deploy.views, deploy.config; "
            "assert 'typer' not in sys.modules, sorted(m for m in sys.modules if m.startswith('typer'))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
