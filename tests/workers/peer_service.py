"""The curriculum service for the peer-library tests (TRL, verl): `curriculum serve` from the project's main
.venv, in a subprocess (its own Ray, its own Redis), so the peer venvs need neither Ray 2.60 nor Redis.

CURRICULUM_SERVICE_PYTHON names the interpreter of the main venv (default: .venv/bin/python of this checkout).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def service_python() -> str:
    return os.environ.get("CURRICULUM_SERVICE_PYTHON") or str(ROOT / ".venv" / "bin" / "python")


class ServedController:
    def __init__(self, data_dir: Path, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.log = open(Path(data_dir) / "serve.log", "wb")
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen([service_python(), "-m", "deploy.cli", "serve", "--port", str(port),
                                      "--data-dir", str(data_dir)], cwd=ROOT, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float = 180.0) -> ServedController:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"`curriculum serve` exited with {self.proc.returncode}: {self.tail()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"`curriculum serve` not ready after {timeout}s: {self.tail()}")

    def tail(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # the CLI stops Serve, Ray and Redis on SIGTERM
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":  # manual use: python tests/workers/peer_service.py /tmp/dir
    s = ServedController(Path(sys.argv[1]), free_port()).wait_ready()
    print(s.url, flush=True)
    try:
        signal.pause()
    finally:
        s.stop()
