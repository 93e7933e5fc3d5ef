"""`curriculum` — the command line. Each group of commands lives in its own module and registers here."""
from __future__ import annotations

import typer

from deploy import cmd_run, cmd_service, cmd_sim, cmd_whatif

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Curriculum orchestration service for RL post-training on Ray.")
for module in (cmd_sim, cmd_service, cmd_run, cmd_whatif):
    module.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
