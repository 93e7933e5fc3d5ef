"""The edge of the REST API, in front of the routes: auth (services.auth), request size limits, request
latency (services.metrics), and the error shape {"error": {"code", "message"}} for every failure."""
from __future__ import annotations

import time
from collections.abc import Callable

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from services import auth, metrics
from services.errors import ServiceError
from services.settings import Settings


def error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def validation_error(e: RequestValidationError) -> JSONResponse:
    errs = e.errors()
    if any(err["type"] == "json_invalid" for err in errs):
        return error(
            400, "invalid_json", f"body: not valid JSON ({errs[0].get('ctx', {}).get('error', 'parse error')})"
        )
    parts = []
    for err in errs:
        loc = ".".join(str(x) for x in err["loc"] if x != "body") or "body"
        parts.append(f"{loc}: {err['msg']}")
    return error(422, "validation_error", "; ".join(parts))


def install_error_handlers(api: FastAPI) -> None:
    """Every error the app answers has the shape of API.md."""
    async def service_error(request: Request, e: ServiceError):
        return error(e.status, e.code, e.message)

    async def redis_down(request: Request, e: Exception):
        return error(503, "redis_unavailable", f"redis: {e or type(e).__name__}; retry shortly")

    async def invalid(request: Request, e: RequestValidationError):
        return validation_error(e)

    async def http_error(request: Request, e: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(e.status_code, "http_error")
        return error(e.status_code, code, str(e.detail))

    api.add_exception_handler(ServiceError, service_error)
    api.add_exception_handler(redis.exceptions.ConnectionError, redis_down)
    api.add_exception_handler(redis.exceptions.TimeoutError, redis_down)
    api.add_exception_handler(RequestValidationError, invalid)
    api.add_exception_handler(StarletteHTTPException, http_error)


def rejection(s: Settings, method: str, path: str, headers: dict[bytes, bytes]) -> JSONResponse | None:
    """401/403 (auth on /v1 routes) or 413 (a declared body over the limit) before the app sees the request."""
    if path.startswith("/v1") and s.auth_on:
        refused = auth.refusal(s.scope_of(headers.get(b"authorization", b"")), method, path)
        if refused is not None:
            return error(*refused)
    size = headers.get(b"content-length")
    if size is not None and (not size.isdigit() or int(size) > s.max_body_bytes):
        return error(413, "too_large", f"request body exceeds {s.max_body_bytes} bytes")
    return None


class Edge:
    """Pure ASGI middleware (cheaper than BaseHTTPMiddleware): auth, request size limit, latency metrics.
    `settings` returns the replica's settings (None while it starts: nothing is checked)."""

    def __init__(self, app, settings: Callable[[], Settings | None]) -> None:
        self.app, self.settings = app, settings

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

        s = self.settings()
        headers = dict(scope.get("headers") or [])
        refused = None if s is None else rejection(s, scope["method"], path, headers)
        if refused is not None:
            await refused(scope, receive, send_wrapped)
        elif s is not None and b"content-length" not in headers and scope["method"] in ("POST", "PATCH", "PUT"):
            await self._limited(scope, receive, send_wrapped, s.max_body_bytes)
        else:
            await self.app(scope, receive, send_wrapped)
        route = scope.get("route")
        metrics.observe_request(getattr(route, "path", "other"), scope["method"], status[0], time.perf_counter() - t0)

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
