"""Every process a local stack starts ends when the stack ends: on stop(), on SIGTERM, and when the launcher is
SIGKILLed.

Why a marker and a watchdog: Ray fate-shares its own daemons with the driver, and our Redis gets PDEATHSIG,
but processes further down (Serve's HAProxy is a child of the proxy actor; actors' own children) are orphaned
and keep their ports when their parent dies abruptly. So `LocalStack.start()` puts `CURRICULUM_STACK_ID=<id>`
into the environment while it starts Redis and Ray; every descendant inherits it (raylet -> workers ->
HAProxy), which marks the stack's processes however deep they are. Processes that overwrite their environment
with a long process title (Ray's dashboard agent, Redis) are not marked: the watchdog also keeps a list of
every descendant of a marked process (pid + start time, refreshed each second), and Redis dies with the
launcher by PDEATHSIG (services.redis_server). `reap(id)` ends all of them (SIGTERM,
then SIGKILL after a grace period). A watchdog process (`python -m deploy.reaper <id>`, in its own session,
unmarked) holds the read end of a pipe whose write end only the launcher holds: when the launcher dies, by
any signal, the kernel closes it, the watchdog reads EOF and reaps.
"""
from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
import uuid

import psutil

MARKER = "CURRICULUM_STACK_ID"


def new_stack_id() -> str:
    return uuid.uuid4().hex


def stacks() -> dict[str, list[int]]:
    """stack id -> pids of the live processes carrying it (only processes of this user are readable)."""
    out: dict[str, list[int]] = {}
    for p in psutil.process_iter(["pid"]):
        try:
            sid = p.environ().get(MARKER)
        except (psutil.Error, OSError):
            continue
        if sid:
            out.setdefault(sid, []).append(p.pid)
    return out


def marked(stack_id: str) -> list[psutil.Process]:
    me = os.getpid()
    procs = []
    for pid in stacks().get(stack_id, []):
        if pid == me:
            continue
        try:
            p = psutil.Process(pid)
            if p.status() != psutil.STATUS_ZOMBIE:
                procs.append(p)
        except psutil.Error:
            continue
    return procs


def descendants(procs: list[psutil.Process]) -> dict[int, float]:
    """pid -> start time of every process below `procs` (the start time tells a reused pid apart)."""
    out = {}
    for p in procs:
        try:
            for c in p.children(recursive=True):
                out[c.pid] = c.create_time()
        except psutil.Error:
            continue
    return out


def _still(known: dict[int, float]) -> list[psutil.Process]:
    procs = []
    for pid, started in known.items():
        try:
            p = psutil.Process(pid)
            if p.create_time() == started and p.status() != psutil.STATUS_ZOMBIE and pid != os.getpid():
                procs.append(p)
        except psutil.Error:
            continue
    return procs


def reap(stack_id: str, grace: float = 10.0, known: dict[int, float] | None = None) -> list[int]:
    """SIGTERM every process of the stack (marked, or in `known`), SIGKILL what is left after `grace`;
    rescans until none is left, since a dying Ray may still spawn. Returns the pids that were ended."""
    ended: set[int] = set()
    deadline = time.monotonic() + grace
    while True:
        procs = marked(stack_id)
        known = {**(known or {}), **descendants(procs)}
        procs += [p for p in _still(known) if p.pid not in {q.pid for q in procs}]
        if not procs:
            return sorted(ended)
        sig = signal.SIGTERM if time.monotonic() < deadline else signal.SIGKILL
        for p in procs:
            try:
                p.send_signal(sig)
                ended.add(p.pid)
            except psutil.Error:
                pass
        psutil.wait_procs(procs, timeout=1.0 if sig == signal.SIGTERM else 3.0)
        if sig == signal.SIGKILL and time.monotonic() > deadline + 10:
            return sorted(ended)  # unkillable (D state): give up rather than hang the launcher


def start_watchdog(stack_id: str) -> subprocess.Popen:
    """The watchdog for `stack_id`; keep the returned Popen (its stdin is the pipe the watchdog waits on)."""
    env = {k: v for k, v in os.environ.items() if k != MARKER}
    return subprocess.Popen([sys.executable, "-m", "deploy.reaper", stack_id], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True,
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def stop_watchdog(proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """A normal stop: closing the pipe makes the watchdog reap (nothing left by then) and exit."""
    try:
        proc.stdin.close()
        proc.wait(timeout)
    except (OSError, subprocess.TimeoutExpired):
        proc.kill()


def main(stack_id: str) -> None:
    known: dict[int, float] = {}
    fd = sys.stdin.fileno()
    while True:  # nothing is ever written: EOF = the launcher is gone (or stopped and closed the pipe)
        if select.select([fd], [], [], 1.0)[0] and not os.read(fd, 4096):
            break
        known.update(descendants(marked(stack_id)))
    reap(stack_id, known=known)


if __name__ == "__main__":
    main(sys.argv[1])
