"""`curriculum whatif RUN --strategy S`: selection replay of a logged run under another strategy
(curriculum.whatif; off-policy, the report says so first); `curriculum export-log NAME RUN` writes a served
experiment's record log from Redis as a run folder, and `curriculum simlog RUN` a small logged run of the simulated
student (no Ray) to try it on."""
from __future__ import annotations

import json
from pathlib import Path

import typer

from deploy.views import console


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def print_report(rep: dict, rows: int = 20) -> None:
    from rich.table import Table

    console.print(f"[bold yellow]caveat:[/bold yellow] {rep['caveat']}")
    steps = rep["per_step"]
    every = max(1, -(-len(steps) // rows))  # at most ~`rows` rows: every k-th step
    t = Table(title=f"what-if: logged {rep['logged']['strategy']} vs {rep['other']['strategy']}")
    for col in ("step", "items", "item overlap", "logged items kept", "arm TV", "P(degenerate) logged",
                "P(degenerate) other"):
        t.add_column(col, justify="right")
    for s in steps[::every]:
        t.add_row(str(s["step"]), str(s["items"]), _f(s["overlap"]), _f(s["kept"]), _f(s["arm_tv"]),
                  _f(s["pdeg_logged"]), _f(s["pdeg_other"]))
    m = rep["summary"]
    t.add_row("mean", "", _f(m["overlap"]), _f(m["kept"]), _f(m["arm_tv"]), _f(m["pdeg_logged"]),
              _f(m["pdeg_other"]), end_section=True)
    console.print(t)
    console.print(f"steps that differ: {m['steps_that_differ']} of {rep['steps']}"
                  + (f" (first: step {m['first_difference']})" if m["first_difference"] is not None else ""))


def register(app: typer.Typer) -> None:
    @app.command()
    def whatif(run: Path = typer.Argument(..., help="run folder (experiment.json + records.jsonl)"),
               strategy: str = typer.Option(..., "--strategy", "-s", help="the strategy to replay the log under"),
               params: str = typer.Option("{}", "--params", help="its params, JSON"),
               seed: int | None = typer.Option(None, "--seed", help="its seed (default: the logged run's)"),
               out: Path | None = typer.Option(None, "--out", help="JSON report (default RUN/whatif-S.json)")) -> None:
        """Where another strategy's choices would have differed on a logged run (off-policy: logged rewards)."""
        from curriculum.registry import InvalidParams
        from curriculum.whatif import read_log
        from curriculum.whatif import whatif as replay

        try:
            cfg, records = read_log(run)
            rep = replay(cfg, records, strategy, json.loads(params), seed)
        except (InvalidParams, json.JSONDecodeError, FileNotFoundError) as e:
            console.print(f"[red]{e}[/red]")
            raise typer.Exit(2) from None
        print_report(rep)
        path = out or (run if run.is_dir() else run.parent) / f"whatif-{strategy}.json"
        path.write_text(json.dumps(rep, indent=1))
        console.print(f"wrote {path}")

    @app.command()
    def simlog(run: Path = typer.Argument(..., help="run folder to write"),
               strategy: str = typer.Option("uniform", "--strategy", "-s", help="the logged run's strategy"),
               params: str = typer.Option("{}", "--params", help="its params, JSON"),
               steps: int = typer.Option(30, "--steps", help="steps to simulate"),
               seed: int = typer.Option(0, "--seed")) -> None:
        """Write a small logged run of the simulated student (for `whatif`; no Ray)."""
        from curriculum.whatif import simulate_log, write_log

        cfg, records = simulate_log(strategy, json.loads(params), steps, seed)
        write_log(run, cfg, records)
        console.print(f"wrote {run} ({len(records)} records)")

    register_export(app)


def export_log(redis_url: str, name: str, run: Path) -> int:
    """Write experiment `name`'s config and whole record log as a run folder; returns the number of records.
    Refuses a log already trimmed at a snapshot: the replay needs every record from the first."""
    from curriculum.experiment import ExperimentConfig
    from curriculum.whatif import write_log
    from services.store import ExperimentStore

    store = ExperimentStore(redis_url)
    cfg = store.config(name)
    if cfg is None:
        raise typer.BadParameter(f"no experiment {name!r} at {redis_url}")
    if store.load_snapshot(name) is not None:
        raise typer.BadParameter(f"{name}: the log was trimmed at a snapshot; whatif needs the whole log")
    records = [rec for _, rec in store.records(name)]
    write_log(run, ExperimentConfig.from_stored(cfg), records)
    return len(records)


def register_export(app: typer.Typer) -> None:
    @app.command("export-log")
    def export(name: str = typer.Argument(..., help="experiment name"),
               run: Path = typer.Argument(..., help="run folder to write"),
               redis_url: str = typer.Option(..., "--redis-url", help="the service's Redis")) -> None:
        """Write a served experiment's record log (Redis) as a run folder for `whatif`."""
        n = export_log(redis_url, name, run)
        console.print(f"wrote {run} ({n} records)")
