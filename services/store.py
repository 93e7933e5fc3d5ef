"""Redis persistence of experiments: event-sourced (key layout: services.keys).

Keys per experiment `cur:exp:{name}:`
  config  JSON {name, strategy, params, group_size, seed, created_at}
  log     stream of records (field `r`, JSON) — every change, appended BEFORE it is applied; trimmed up to
          the snapshot whenever one is saved (so it holds the tail, not the whole history)
  snap    hash {data: curriculum.codec bytes of ExperimentState.state_dict(), last_id: stream id applied}
and the set `cur:experiments` of names. Redis runs with appendonly yes / appendfsync everysec.
"""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from services.keys import EXPERIMENTS as NAMES
from services.keys import experiment_key as key


class ExperimentStore:
    def __init__(self, redis_url: str) -> None:
        self.url = redis_url
        # No silent retries: a retried XADD whose first reply was lost would log a record twice (the owner
        # would then hold a state the log does not replay to). Errors surface; callers answer 503 and retry.
        self.r = redis.Redis.from_url(redis_url, socket_timeout=30, socket_connect_timeout=5,
                                      health_check_interval=30, retry=Retry(NoBackoff(), 0))

    def ping(self) -> bool:
        return bool(self.r.ping())

    def create(self, config: dict[str, Any], items: list[dict]) -> bool:
        """Register a new experiment with its initial pool; False if the name exists."""
        name = config["name"]
        config = {**config, "created_at": config.get("created_at", time.time())}
        if not self.r.set(key(name, "config"), json.dumps(config), nx=True):
            return False
        try:
            self.append(name, {"op": "add_items", "items": items})
            self.r.sadd(NAMES, name)
        except Exception:
            self.r.delete(key(name, "config"), key(name, "log"))
            raise
        return True

    def config(self, name: str) -> dict[str, Any] | None:
        raw = self.r.get(key(name, "config"))
        return json.loads(raw) if raw else None

    def names(self) -> list[str]:
        return sorted(n.decode() for n in self.r.smembers(NAMES))

    def append(self, name: str, record: dict) -> str:
        return self.r.xadd(key(name, "log"), {"r": json.dumps(record, separators=(",", ":"))}).decode()

    def records(self, name: str, after: str = "0", chunk: int = 2000) -> Iterator[tuple[str, dict]]:
        """Log records with stream id > after, in order."""
        start = f"({after}" if after != "0" else "-"
        while True:
            rows = self.r.xrange(key(name, "log"), min=start, max="+", count=chunk)
            for rid, fields in rows:
                yield rid.decode(), json.loads(fields[b"r"])
            if len(rows) < chunk:
                return
            start = f"({rows[-1][0].decode()}"

    def save_snapshot(self, name: str, data: bytes, last_id: str) -> None:
        """Store the snapshot and, in the same transaction, trim the log up to it: a restore reads only the
        snapshot and the records after `last_id`, so Redis holds O(items + tail), not every event ever."""
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(key(name, "snap"), mapping={"data": data, "last_id": last_id})
        pipe.xtrim(key(name, "log"), minid=last_id, approximate=False)  # keeps last_id and what follows
        pipe.execute()

    def load_snapshot(self, name: str) -> tuple[bytes, str] | None:
        d = self.r.hgetall(key(name, "snap"))
        return (d[b"data"], d[b"last_id"].decode()) if d else None

    def log_length(self, name: str) -> int:
        return int(self.r.xlen(key(name, "log")))

    def delete(self, name: str) -> bool:
        n = self.r.delete(key(name, "config"), key(name, "log"), key(name, "snap"))
        self.r.srem(NAMES, name)
        return n > 0
