"""`curriculum run` and `curriculum workers scale N`: the command registration only.

`run` is the whole pipeline on one machine (or on a cluster through `deploy.job`): local Ray + embedded Redis +
the controller (REST on --port while it runs) + an elastic pool of rollout actors + a Ray Train GRPO trainer,
training the tiny character-level model on the arithmetic family under a curriculum; `--compare uniform` runs
the same again under `uniform`. Ends with a report folder: metrics.json and PNG plots. The parts: config
(deploy.config), pipeline (deploy.pipeline), report and plots (deploy.report), console views (deploy.views).
"""
from __future__ import annotations

from pathlib import Path

import typer

from deploy.views import console


def register(app: typer.Typer) -> None:
    @app.command()
    def run(config: Path | None = typer.Option(None, "--config", help="YAML file with RunConfig fields"),
            compare: list[str] | None = typer.Option(None, "--compare", help="strategies to compare with "
                                                        "(default: uniform; '' for none)"),
            steps: int | None = typer.Option(None, "--steps", help="override train_steps"),
            out: str | None = typer.Option(None, "--out", help="report folder"),
            port: int | None = typer.Option(None, "--port", help="REST port while running"),
            address: str | None = typer.Option(None, "--address", help="an existing Ray cluster")) -> None:
        """Train the tiny model with GRPO under a curriculum, end to end, and write a report."""
        from pydantic import ValidationError

        from deploy.pipeline import run_pipeline

        overrides = {k: v for k, v in {"train_steps": steps, "out": out, "port": port}.items() if v}
        if compare is not None:  # `--compare ''` runs the curriculum alone
            overrides["compare"] = [c for c in compare if c]
        try:
            run_pipeline(str(config) if config else None, address, overrides)
        except ValidationError as e:
            console.print(f"[red]invalid config:[/red] {e}")
            raise typer.Exit(2) from None

    workers = typer.Typer(help="Rollout workers of a running experiment.")
    app.add_typer(workers, name="workers")

    @workers.command("scale")
    def scale(n: int, experiment: str = typer.Option(..., "--experiment", "-e"),
              address: str = typer.Option("auto", help="Ray cluster address")) -> None:
        """Set the number of rollout actors (the pool starts or retires actors to match)."""
        from workers.pool import scale_workers

        s = scale_workers(experiment, n, address)
        console.print(f"target {s['target']}, live {s['live']}, restarts {s['restarts']}, retired {s['retired']}")
