"""The controller's HTTP edge: a Ray Serve application with a FastAPI ingress (REST API v1, see API.md).

`services.app:app` is the importable application (Serve config files, the Helm chart); it reads its settings
from the environment of the replica:

  CURRICULUM_REDIS_URL        redis://[:password@]host:port/db (required)
  CURRICULUM_API_TOKEN        admin bearer token for /v1 routes (optional; open when no token is set)
  CURRICULUM_WORKER_TOKENS    comma-separated tokens of scope `worker`: GET routes + batches, rewards, items
  CURRICULUM_READ_TOKENS      comma-separated tokens of scope `read`: GET routes only
  CURRICULUM_MAX_BODY_BYTES   request size limit (default 64 MiB)
  CURRICULUM_SNAPSHOT_EVERY   records between owner snapshots (default 1000)
  CURRICULUM_SNAPSHOT_SECONDS seconds between owner snapshots (default 30)
  CURRICULUM_REPLICAS         ingress replicas (default 1)

Replicas keep no experiment state; each experiment's owner actor does (services.owner).
"""
from __future__ import annotations

import hmac
import os
import time
from dataclasses import dataclass

import redis
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from ray import serve
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.controller import Controller
from services.errors import ServiceError
from services.schemas import (AddItems, AddItemsAck, Batch, CreateExperiment, Error, ExperimentList, LeaseRequest,
                              PatchStrategy, ReportAck, ReportRequest, State, StrategyList, Summary)

ERRORS = {k: {"model": Error} for k in (400, 401, 403, 404, 409, 413, 422, 429, 503)}


SCOPES = ("read", "worker", "admin")  # each includes the ones before it
WORKER_ROUTES = ("/batches", "/rewards", "/items")  # the POSTs a rollout worker needs besides reading


def needed_scope(method: str, path: str) -> str:
    if method in ("GET", "HEAD"):
        return "read"
    if method == "POST" and path.startswith("/v1/experiments/") and path.endswith(WORKER_ROUTES):
        return "worker"
    return "admin"


def split_tokens(raw: str | None) -> list[str]:
    return [t.strip() for t in (raw or "").split(",") if t.strip()]


@dataclass
class Settings:
    redis_url: str
    token: str | None = None  # admin
    scoped_tokens: dict[str, str] | None = None  # token -> "read" | "worker" | "admin"
    max_body_bytes: int = 64 << 20
    snapshot_every: int = 1000
    snapshot_seconds: float = 30.0

    @classmethod
    def from_env(cls, **overrides) -> "Settings":
        env = os.environ
        scoped = {t: "read" for t in split_tokens(env.get("CURRICULUM_READ_TOKENS"))}
        scoped.update({t: "worker" for t in split_tokens(env.get("CURRICULUM_WORKER_TOKENS"))})
        s = cls(redis_url=env.get("CURRICULUM_REDIS_URL", ""), token=env.get("CURRICULUM_API_TOKEN") or None,
                scoped_tokens=scoped or None,
                max_body_bytes=int(env.get("CURRICULUM_MAX_BODY_BYTES", 64 << 20)),
                snapshot_every=int(env.get("CURRICULUM_SNAPSHOT_EVERY", 1000)),
                snapshot_seconds=float(env.get("CURRICULUM_SNAPSHOT_SECONDS", 30)))
        for k, v in overrides.items():
            if v is not None:
                setattr(s, k, v)
        if not s.redis_url:
            raise RuntimeError("CURRICULUM_REDIS_URL is not set: the controller needs a Redis server")
        bad = {t: sc for t, sc in (s.scoped_tokens or {}).items() if sc not in SCOPES}
        if bad:
            raise RuntimeError(f"scoped_tokens: unknown scope(s) {sorted(set(bad.values()))}; use {SCOPES}")
        return s

    def credentials(self) -> list[tuple[bytes, int]]:
        """(expected Authorization header, scope rank) for every configured token; admin wins a tie."""
        pairs = [(t, sc) for t, sc in (self.scoped_tokens or {}).items()]
        if self.token:
            pairs.append((self.token, "admin"))
        return [(f"Bearer {t}".encode(), SCOPES.index(sc)) for t, sc in pairs]

    def scope_of(self, given: bytes) -> int | None:
        """The rank of the scope `given` grants (None: no such token). Compares against every configured
        token, with no early exit, so the time taken says nothing about which token (or prefix) matched."""
        rank = None
        for expected, r in self.credentials():
            if hmac.compare_digest(given, expected) and (rank is None or r > rank):
                rank = r
        return rank


api = FastAPI(title="curriculum controller", version="1",
              description="Curriculum orchestration service for RL post-training (REST API v1).")
_settings: Settings | None = None
_core: Controller | None = None

REGISTRY = CollectorRegistry()
LATENCY = Histogram("curriculum_request_seconds", "request latency", ["route", "method", "status"],
                    registry=REGISTRY, buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10))
EVENTS = Counter("curriculum_events_applied_total", "reward events accepted", ["experiment"], registry=REGISTRY)
DUPLICATES = Counter("curriculum_duplicates_total", "reward events ignored as duplicates", ["experiment"],
                     registry=REGISTRY)
LEASED = Counter("curriculum_items_leased_total", "items handed out", ["experiment"], registry=REGISTRY)
EXPIRED = Gauge("curriculum_leases_expired", "leases that expired unreported", ["experiment"], registry=REGISTRY)
ARM_WEIGHT = Gauge("curriculum_arm_weight", "probability that the next selection draws the arm",
                   ["experiment", "arm"], registry=REGISTRY)
# owner-side totals (exact across replicas; the counters above count what this replica answered)
STATE_EVENTS = Gauge("curriculum_experiment_events", "events applied by the owner", ["experiment"], registry=REGISTRY)
STATE_DUPLICATES = Gauge("curriculum_experiment_duplicates", "duplicate results ignored by the owner", ["experiment"],
                         registry=REGISTRY)
DEGENERATE = Gauge("curriculum_degenerate_ratio", "share of reported groups whose rewards were all equal",
                   ["experiment"], registry=REGISTRY)
ARM_PASS = Gauge("curriculum_arm_pass_rate", "observed mean reward of the arm's recent events (0..1)",
                 ["experiment", "arm"], registry=REGISTRY)


def core() -> Controller:
    if _core is None:
        raise ServiceError(503, "not_ready", "the controller is starting")
    return _core


def error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


@api.exception_handler(ServiceError)
async def _service_error(request: Request, e: ServiceError):
    return error(e.status, e.code, e.message)


@api.exception_handler(redis.exceptions.ConnectionError)
@api.exception_handler(redis.exceptions.TimeoutError)
async def _redis_down(request: Request, e: Exception):
    return error(503, "redis_unavailable", f"redis: {e or type(e).__name__}; retry shortly")


@api.exception_handler(RequestValidationError)
async def _validation_error(request: Request, e: RequestValidationError):
    errs = e.errors()
    if any(err["type"] == "json_invalid" for err in errs):
        return error(400, "invalid_json", f"body: not valid JSON ({errs[0].get('ctx', {}).get('error', 'parse error')})")
    parts = []
    for err in errs:
        loc = ".".join(str(x) for x in err["loc"] if x != "body") or "body"
        parts.append(f"{loc}: {err['msg']}")
    return error(422, "validation_error", "; ".join(parts))


@api.exception_handler(StarletteHTTPException)
async def _http_error(request: Request, e: StarletteHTTPException):
    code = {404: "not_found", 405: "method_not_allowed"}.get(e.status_code, "http_error")
    return error(e.status_code, code, str(e.detail))


class Edge:
    """Pure ASGI middleware (cheaper than BaseHTTPMiddleware): auth, request size limit, latency metrics."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        path, root = scope["path"], scope.get("root_path", "")
        path = path[len(root):] if root and path.startswith(root) else path  # under a Serve route prefix
        status = [500]

        async def send_wrapped(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        s = _settings
        headers = dict(scope.get("headers") or [])
        rejection = None
        if s is not None:
            if path.startswith("/v1") and (s.token or s.scoped_tokens):
                rank = s.scope_of(headers.get(b"authorization", b""))
                need = needed_scope(scope["method"], path)
                if rank is None:
                    rejection = error(401, "unauthorized", "missing or wrong bearer token (Authorization: Bearer <token>)")
                elif rank < SCOPES.index(need):
                    rejection = error(403, "forbidden", f"Authorization: this token's scope is {SCOPES[rank]!r}; "
                                                        f"{scope['method']} {path} needs {need!r}")
            size = headers.get(b"content-length")
            if rejection is None and size is not None and (not size.isdigit() or int(size) > s.max_body_bytes):
                rejection = error(413, "too_large", f"request body exceeds {s.max_body_bytes} bytes")
        if rejection is not None:
            await rejection(scope, receive, send_wrapped)
        elif s is not None and b"content-length" not in headers and scope["method"] in ("POST", "PATCH", "PUT"):
            await self._limited(scope, receive, send_wrapped, s.max_body_bytes)
        else:
            await self.app(scope, receive, send_wrapped)
        route = scope.get("route")
        LATENCY.labels(getattr(route, "path", "other"), scope["method"], str(status[0])).observe(time.perf_counter() - t0)


    async def _limited(self, scope, receive, send, limit: int) -> None:
        """A chunked body (no content-length): read it all, counting bytes, then replay it to the app."""
        chunks, size, more = [], 0, True
        while more:
            msg = await receive()
            if msg["type"] != "http.request":
                return
            chunks.append(msg.get("body", b""))
            size += len(chunks[-1])
            more = msg.get("more_body", False)
            if size > limit:
                return await error(413, "too_large", f"request body exceeds {limit} bytes")(scope, receive, send)
        body = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replay():
            return body.pop() if body else await receive()

        await self.app(scope, replay, send)


api.add_middleware(Edge)


# -- operations ----------------------------------------------------------------------------------
@api.get("/healthz")
async def healthz():
    return {"status": "ok"}


@api.get("/readyz", responses=ERRORS)
async def readyz():
    try:
        c = core()
        c.store.ping()
        c.store.names()
    except ServiceError:
        raise
    except Exception as e:  # redis down, wrong password ...
        raise ServiceError(503, "not_ready", f"redis: {e}") from None
    return {"status": "ready"}


@api.get("/metrics")
async def metrics():
    c = _core
    if c is not None:
        for name in c.names():
            try:
                m = await c.acall(name, "metrics")
            except Exception:
                continue
            EXPIRED.labels(name).set(m["leases_expired"])
            STATE_EVENTS.labels(name).set(m["events"])
            STATE_DUPLICATES.labels(name).set(m["duplicates"])
            DEGENERATE.labels(name).set(m["degenerate_ratio"])
            for arm, w in m["arms"].items():
                ARM_WEIGHT.labels(name, arm).set(w)
            for arm, p in m.get("pass_rates", {}).items():
                ARM_PASS.labels(name, arm).set(p)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


# -- experiments ---------------------------------------------------------------------------------
@api.get("/v1/strategies", response_model=StrategyList, responses=ERRORS)
async def strategies():
    return {"strategies": Controller.strategies()}


@api.post("/v1/experiments", status_code=201, response_model=Summary, responses=ERRORS)
async def create_experiment(req: CreateExperiment):
    import asyncio

    return await asyncio.to_thread(core().create, req)


@api.get("/v1/experiments", response_model=ExperimentList, responses=ERRORS)
async def list_experiments():
    c = core()
    out = []
    for name in c.names():
        try:
            out.append(await c.acall(name, "summary"))
        except ServiceError as e:
            if e.status != 404:
                raise
    return {"experiments": out}


@api.get("/v1/experiments/{name}", response_model=Summary, responses=ERRORS)
async def get_experiment(name: str):
    return await core().acall(name, "summary")


@api.delete("/v1/experiments/{name}", status_code=204, responses=ERRORS)
async def delete_experiment(name: str):
    core().delete(name)
    return Response(status_code=204)


@api.post("/v1/experiments/{name}/items", response_model=AddItemsAck, responses=ERRORS)
async def add_items(name: str, req: AddItems):
    items = [it.model_dump(mode="json", exclude_defaults=True) for it in req.items]
    return await core().acall(name, "add_items", items)


@api.patch("/v1/experiments/{name}/strategy", response_model=Summary, responses=ERRORS)
async def patch_strategy(name: str, req: PatchStrategy):
    return await core().acall(name, "set_params", req.params)


@api.post("/v1/experiments/{name}/batches", response_model=Batch, response_model_exclude_none=True,
          responses=ERRORS)
async def lease_batch(name: str, req: LeaseRequest):
    report = None
    if req.report is not None:
        report = {"batch_id": req.report.batch_id,
                  "results": Controller.fill_rollout_ids([r.model_dump(mode="json") for r in req.report.results])}
    out = await core().acall(name, "lease", req.size, req.worker, req.lease_seconds, report, req.lease_key)
    LEASED.labels(name).inc(len(out["items"]))
    if report is not None:
        EVENTS.labels(name).inc(out["reported"]["accepted"])
        DUPLICATES.labels(name).inc(out["reported"]["duplicates"])
    return JSONResponse(out)  # built by the owner in the Batch shape; skips re-validating 64+ items


@api.post("/v1/experiments/{name}/rewards", status_code=202, response_model=ReportAck, responses=ERRORS)
async def report_rewards(name: str, req: ReportRequest):
    results = Controller.fill_rollout_ids([r.model_dump(mode="json") for r in req.results])
    out = await core().acall(name, "report", results, req.batch_id)
    EVENTS.labels(name).inc(out["accepted"])
    DUPLICATES.labels(name).inc(out["duplicates"])
    return out


@api.get("/v1/experiments/{name}/state", response_model=State, responses=ERRORS)
async def experiment_state(name: str):
    return await core().acall(name, "state_view")


# -- the Serve application -----------------------------------------------------------------------
@serve.deployment(ray_actor_options={"num_cpus": 0.1}, max_ongoing_requests=256,
                  logging_config={"enable_access_log": False})
@serve.ingress(api)
class ControllerIngress:
    def __init__(self, redis_url: str | None = None, token: str | None = None,
                 max_body_bytes: int | None = None, snapshot_every: int | None = None,
                 snapshot_seconds: float | None = None, scoped_tokens: dict[str, str] | None = None) -> None:
        # Serve ships this class by value; set the settings on the imported module the routes read from.
        import services.app as module

        s = Settings.from_env(redis_url=redis_url, token=token, max_body_bytes=max_body_bytes,
                              snapshot_every=snapshot_every, snapshot_seconds=snapshot_seconds,
                              scoped_tokens=scoped_tokens)
        module._settings = s
        module._core = Controller(s.redis_url, s.snapshot_every, s.snapshot_seconds)


def build_app(redis_url: str | None = None, token: str | None = None, replicas: int | None = None, **kw):
    """The controller application with explicit settings (the CLI and tests); env fills the rest."""
    replicas = replicas or int(os.environ.get("CURRICULUM_REPLICAS", 1))
    return ControllerIngress.options(num_replicas=replicas).bind(redis_url, token, **kw)


app = build_app()
