"""`curriculum simulate` and `curriculum bench`: the strategy benchmarks, from the CLI."""
from __future__ import annotations

import runpy
import sys
from pathlib import Path

import typer

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def _script(name: str, args: list[str]) -> None:
    path = BENCH / name
    if not path.exists():
        raise typer.BadParameter(f"{path} not found: run from a source checkout")
    sys.argv = [str(path), *args]
    runpy.run_path(str(path), run_name="__main__")


def register(app: typer.Typer) -> None:
    @app.command(add_help_option=False, context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def simulate(ctx: typer.Context) -> None:
        """Every strategy against uniform on the simulated student (benchmarks/strategies.py; --help for options)."""
        _script("strategies.py", ctx.args)

    @app.command(add_help_option=False, context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def bench(ctx: typer.Context) -> None:
        """Core throughput per strategy at 10^4 / 10^6 items (benchmarks/core_throughput.py; --help for options)."""
        _script("core_throughput.py", ctx.args)
