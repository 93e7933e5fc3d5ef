"""No leaked processes: a local stack started and ended three ways (stop() at a normal end, SIGTERM of
`curriculum serve`, SIGKILL of the launcher) leaves no process of it alive and none of its ports bound."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from deploy import reaper
from deploy.local import haproxy_binary
from services.redis_server import free_port

NORMAL_END = """
import sys, httpx
from pathlib import Path
from deploy.local import LocalStack
s = LocalStack(Path(sys.argv[1]), port=int(sys.argv[2])).start()
assert httpx.get(s.url + "/v1/experiments", timeout=30).status_code == 200
print("ready", flush=True)
sys.stdin.readline()
s.stop()
"""


def launch(how: str, data_dir: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop(reaper.MARKER, None)
    if how == "stop":
        cmd = [sys.executable, "-c", NORMAL_END, str(data_dir), str(port)]
    else:
        cmd = [sys.executable, "-m", "deploy.cli", "serve", "--port", str(port), "--data-dir", str(data_dir)]
    return subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, cwd=Path(__file__).resolve().parents[2])


def wait_ready(proc: subprocess.Popen, port: int, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the launcher exited with {proc.returncode} before it served"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/experiments", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError("the stack did not come up")


def listening_ports(pids: list[int]) -> set[int]:
    ports = set()
    for pid in pids:
        try:
            for c in psutil.Process(pid).net_connections(kind="inet"):
                if c.status == psutil.CONN_LISTEN:
                    ports.add(c.laddr.port)
        except psutil.Error:
            pass
    return ports


@pytest.mark.parametrize("how", ["stop", "sigterm", "sigkill"])
def test_a_stack_leaves_no_process_and_no_port(tmp_path, how):
    before = set(reaper.stacks())
    port = free_port()
    proc = launch(how, tmp_path, port)
    try:
        wait_ready(proc, port)
        time.sleep(2)  # let Serve settle (HAProxy reloads once the replica is up)
        (sid,) = set(reaper.stacks()) - before
        # Redis rewrites its environment (process title), so it is found as a child (it has PDEATHSIG)
        pids = set(reaper.stacks()[sid]) | {c.pid for c in psutil.Process(proc.pid).children(recursive=True)}
        procs = {p: psutil.Process(p) for p in pids}
        names = {p.name() for p in procs.values()}
        assert any(n.startswith("redis-server") for n in names) and any(
            n.startswith(("raylet", "gcs_server")) for n in names
        ), names
        if haproxy_binary() and os.environ.get("RAY_SERVE_ENABLE_HA_PROXY", "1") == "1":
            assert any("haproxy" in n for n in names), names  # the one that used to leak
        ports = listening_ports(pids)
        assert port in ports, (port, ports)
        if how == "stop":
            proc.communicate(b"\n", timeout=120)
        else:
            proc.send_signal(signal.SIGTERM if how == "sigterm" else signal.SIGKILL)
            proc.wait(120)
        def alive():
            out = []
            for p in procs.values():
                try:
                    if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                        out.append(f"{p.pid} {p.cmdline()}")
                except psutil.Error:
                    pass
            return out

        deadline = time.monotonic() + 60  # the watchdog's grace is 10 s before SIGKILL
        while time.monotonic() < deadline and (reaper.stacks().get(sid) or alive()):
            time.sleep(0.5)
        survivors = alive()
        assert not survivors and not reaper.stacks().get(sid), survivors
        # a port taken again since by another process (other stacks share this machine; Ray's dashboard agent
        # has a fixed default port) is not ours
        def ours_bound():
            # Serve's fixed ports (replicas' 30000+, the dashboard agent's 52365) are taken by other engineers'
            # stacks on this machine too: only a listener that is one of our processes counts
            held = {(c.laddr.port, c.pid) for c in psutil.net_connections("inet") if c.status == psutil.CONN_LISTEN}
            return sorted({port for port, pid in held if port in ports and pid in pids})

        deadline = time.monotonic() + 20  # a socket closes a moment after its process is gone
        while time.monotonic() < deadline and ours_bound():
            time.sleep(1)
        assert not ours_bound(), f"ports still bound after the stack ended: {ours_bound()}"
    finally:
        if proc.poll() is None:
            proc.kill()
        sid_left = set(reaper.stacks()) - before
        for s in sid_left:
            reaper.reap(s, grace=2)
