"""The settings of one ingress replica, read from its environment (the variables: services.app)."""
from __future__ import annotations

import os
from dataclasses import dataclass

from services.auth import SCOPES, credentials, scope_rank, split_tokens


@dataclass
class Settings:
    redis_url: str
    token: str | None = None  # admin
    scoped_tokens: dict[str, str] | None = None  # token -> "read" | "worker" | "admin"
    max_body_bytes: int = 64 << 20
    snapshot_every: int = 1000
    snapshot_seconds: float = 30.0

    @classmethod
    def from_env(cls, **overrides) -> Settings:
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

    @property
    def auth_on(self) -> bool:
        return bool(self.token or self.scoped_tokens)

    def credentials(self) -> list[tuple[bytes, int]]:
        """(expected Authorization header, scope rank) for every configured token; admin wins a tie."""
        return credentials(self.token, self.scoped_tokens)

    def scope_of(self, given: bytes) -> int | None:
        """The rank of the scope `given` grants (None: no such token); constant-time over all tokens."""
        return scope_rank(given, self.credentials())
