"""Bearer-token auth of the REST edge: scopes, which scope a route needs, and which scope a token grants.

Scopes are ordered, each including the ones before it: `read` (GET routes), `worker` (+ the POSTs a rollout
worker needs: batches, rewards, items), `admin` (everything).
"""
from __future__ import annotations

import hmac

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


def credentials(token: str | None, scoped_tokens: dict[str, str] | None) -> list[tuple[bytes, int]]:
    """(expected Authorization header, scope rank) for every configured token; `token` is the admin's."""
    pairs = list((scoped_tokens or {}).items())
    if token:
        pairs.append((token, "admin"))
    return [(f"Bearer {t}".encode(), SCOPES.index(sc)) for t, sc in pairs]


def scope_rank(given: bytes, creds: list[tuple[bytes, int]]) -> int | None:
    """The rank of the scope `given` grants (None: no such token); admin wins a tie. Compares against every
    configured token, with no early exit, so the time taken says nothing about which token (or prefix) matched."""
    rank = None
    for expected, r in creds:
        if hmac.compare_digest(given, expected) and (rank is None or r > rank):
            rank = r
    return rank


def refusal(rank: int | None, method: str, path: str) -> tuple[int, str, str] | None:
    """(status, code, message) when a caller of scope `rank` may not call `method path`; None when it may."""
    need = needed_scope(method, path)
    if rank is None:
        return 401, "unauthorized", "missing or wrong bearer token (Authorization: Bearer <token>)"
    if rank < SCOPES.index(need):
        return (
            403,
            "forbidden",
            f"Authorization: this token's scope is {SCOPES[rank]!r}; {method} {path} needs {need!r}",
        )
    return None
