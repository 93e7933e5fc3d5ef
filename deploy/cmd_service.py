"""`curriculum serve | experiments | state | strategies`: run the controller locally and read it."""
from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import typer
from rich.console import Console, Group
from rich.markup import escape
from rich.table import Table

console = Console()
URL = typer.Option(
    os.environ.get("CURRICULUM_URL", "http://127.0.0.1:8000"), "--url", help="controller URL (env CURRICULUM_URL)"
)
TOKEN = typer.Option(os.environ.get("CURRICULUM_API_TOKEN"), "--token", help="bearer token (env CURRICULUM_API_TOKEN)")


def _client(url: str, token: str | None):
    from services.client import CurriculumClient

    return CurriculumClient(url, token, retries=1)


def _fail(e: Exception) -> None:
    console.print(f"[red]error:[/red] {e}")
    raise typer.Exit(1)


def state_view(name: str, s: dict, events_per_s: float | None = None) -> Group:
    """One experiment's state as a header and a table: arm weights, values, pass rates, events, and which arms
    the noise guard judges noise; the header has the degenerate share, the weight on noise-judged arms
    and (live view) events/s."""
    noisy = set(s["details"].get("noise_arms", []))
    noisy_share = sum(a["weight"] for a in s["arms"] if a["name"] in noisy)
    rate = "" if events_per_s is None else f"  {events_per_s:.1f} events/s"
    head = (f"[bold]{escape(name)}[/bold]: {s['strategy']['name']}  events {s['events']}  policy v{s['policy_version']}"
            f"  degenerate {s['degenerate_ratio']:.1%}  on noise-judged arms {noisy_share:.1%}{rate}")
    t = Table("arm", "weight", "value", "pass rate", "items", "events", "noise")
    fmt = lambda x: "-" if x is None else f"{x:.3f}"  # noqa: E731
    for a in s["arms"]:
        t.add_row(escape(a["name"]), fmt(a["weight"]), fmt(a["value"]), fmt(a["pass_rate"]), str(a["items"]),
                  str(a["events"]), "yes" if a["name"] in noisy else "")
    return Group(head, t)


def serve(host: str = typer.Option("127.0.0.1", help="address to bind"),
          port: int = typer.Option(8000, help="port of the REST API"),
          redis_url: str | None = typer.Option(None, help="use this Redis instead of starting one"),
          data_dir: Path = typer.Option(Path("runs/serve"), help="where the embedded Redis keeps its data"),
          replicas: int = typer.Option(1, help="ingress replicas"),
          address: str | None = typer.Option(None, help="join an existing Ray cluster instead of a local one"),
          redis_fsync: str = typer.Option("everysec", help="embedded Redis: everysec, or always (fsync before "
                                                           "every acknowledgement; see README, Reliability)"),
          token: str | None = TOKEN) -> None:
    """Start a local Ray, Redis and the controller; serve until Ctrl-C / SIGTERM, then stop all of it."""
    from deploy.local import LocalStack

    stack = LocalStack(data_dir, host, port, redis_url, token, replicas, address, redis_fsync)
    stop = threading.Event()

    def on_signal():  # again after start: Ray's core worker installs its own SIGTERM handler (abort)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())

    on_signal()
    try:
        with console.status("starting Ray, Redis and the controller ..."):
            stack.start()
        on_signal()
        if stack.redis:
            console.print(f"redis: {stack.redis_url}  (data in {stack.redis.data_dir.resolve()})")
        console.print(f"[green]controller ready[/green] at {stack.url}  (docs: {stack.url}/docs)"
                      f"  in {stack.started_in:.1f}s; Ctrl-C stops it")
        stop.wait()
    finally:
        console.print("shutting down ...")
        stack.stop()


def experiments(url: str = URL, token: str | None = TOKEN) -> None:
    """List experiments."""
    from services.errors import ServiceError

    try:
        rows = _client(url, token).experiments()
    except (ServiceError, OSError) as e:
        _fail(e)
    t = Table("name", "strategy", "items", "arms", "events", "policy version")
    for e in rows:
        t.add_row(e["name"], e["strategy"]["name"], str(e["num_items"]), str(len(e["categories"])),
                  str(e["events"]), str(e["policy_version"]))
    console.print(t)


def state(name: str, url: str = URL, token: str | None = TOKEN,
          watch: bool = typer.Option(False, "--watch", "-w", help="a live table, refreshed until Ctrl-C"),
          interval: float = typer.Option(2.0, min=0.1, help="seconds between refreshes with --watch")) -> None:
    """The curriculum of one experiment: arm weights, values, pass rates (live with --watch)."""
    from services.errors import ServiceError

    client = _client(url, token)
    try:
        if watch:
            watch_state(client, name, interval)
        else:
            console.print(state_view(name, client.state(name)))
    except (ServiceError, OSError) as e:
        _fail(e)
    except KeyboardInterrupt:
        pass


def strategies() -> None:
    """Strategies this build offers, with their parameters (no server needed)."""
    from curriculum.registry import describe_strategies

    t = Table("name", "description", "params")
    for s in describe_strategies():
        props = s["params"].get("properties", {})
        t.add_row(
            escape(s["name"]), escape(s["description"]), ", ".join(f"{k}={v.get('default')}" for k, v in props.items())
        )
    console.print(t)


def watch_state(client, name: str, interval: float) -> None:
    """A live table of the experiment's state, refreshed every `interval` s, with events/s, until Ctrl-C."""
    from rich.live import Live

    # Ctrl-C ends the view even when the launching shell ignored SIGINT (a background job inherits
    # SIG_IGN, and Python then installs no KeyboardInterrupt handler of its own); SIGTERM likewise
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    prev = None
    with Live(console=console, auto_refresh=False) as live:
        while True:
            s, now = client.state(name), time.monotonic()
            rate = None if prev is None else (s["events"] - prev[0]) / max(now - prev[1], 1e-9)
            live.update(state_view(name, s, rate), refresh=True)
            prev = (s["events"], now)
            time.sleep(interval)


def register(app: typer.Typer) -> None:
    for command in (serve, experiments, state, strategies):
        app.command()(command)
