"""ExperimentOwner: the one writer of an experiment's state (a named, restartable Ray actor).

Every write: validate -> append the record to the Redis log -> apply -> answer. So an acknowledged change is
durable before the caller hears of it, and a restarted owner (Ray re-runs __init__ after a crash) rebuilds the
exact state from the latest snapshot plus the log tail. Snapshots are taken every `snapshot_every` records or
`snapshot_seconds` seconds, whichever comes first.

Redis down: an operation that meets a connection error answers 503 `redis_unavailable` and marks the owner
stale; whether the failed append reached the log or not, and whatever a restarted Redis lost, the next
operation first rebuilds the state from Redis (snapshot + tail, retried with backoff), so memory never
diverges from the log. Clients retry with the same rollout ids (idempotent).
"""
from __future__ import annotations

import functools
import time
from typing import Any

import redis
from pydantic import ValidationError

from curriculum import codec
from curriculum.calibration import live_summary
from curriculum.experiment import ExperimentConfig, ExperimentState, InvalidReport
from curriculum.registry import format_validation_error
from services.errors import ServiceError
from services.schemas import AddItems, LeaseRequest, PatchStrategy, ReportRequest
from services.store import ExperimentStore

REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def redis_unavailable(e: Exception) -> dict:
    return ServiceError(503, "redis_unavailable", f"redis: {e or type(e).__name__}; retry shortly").as_dict()


def guarded(method):
    """Answer 503 instead of raising while Redis is unreachable; restore from Redis first when stale."""
    @functools.wraps(method)
    def wrapper(self: ExperimentOwner, *args, **kw):
        if self._stale:
            if time.monotonic() < self._retry_at:
                return redis_unavailable(ConnectionError("reconnecting"))
            try:
                self._restore()
                self._stale, self._backoff = False, 0.1
            except REDIS_DOWN as e:
                self._retry_at = time.monotonic() + self._backoff
                self._backoff = min(2 * self._backoff, 2.0)
                return redis_unavailable(e)
        try:
            return method(self, *args, **kw)
        except REDIS_DOWN as e:
            self._stale, self._retry_at = True, 0.0
            return redis_unavailable(e)
    return wrapper


class ExperimentOwner:
    def __init__(self, name: str, redis_url: str, snapshot_every: int = 1000, snapshot_seconds: float = 30.0) -> None:
        self.name = name
        self.store = ExperimentStore(redis_url)
        self.snapshot_every, self.snapshot_seconds = snapshot_every, snapshot_seconds
        self._stale, self._retry_at, self._backoff = True, 0.0, 0.1
        try:  # Redis down while Ray (re)starts the owner: serve 503 and restore on a later call
            self._restore()
            self._stale = False
        except REDIS_DOWN:
            pass

    # -- recovery ------------------------------------------------------------------------------
    def _restore(self) -> None:
        cfg = self.store.config(self.name)
        if cfg is None:
            raise RuntimeError(f"experiment {self.name!r} has no config in Redis")
        self.created_at = cfg["created_at"]
        snap = self.store.load_snapshot(self.name)
        if snap:
            self.state = ExperimentState.from_state_dict(codec.decode(snap[0]))
            self.last_id = snap[1]
        else:
            self.state = ExperimentState(ExperimentConfig.from_stored(cfg))
            self.last_id = "0"
        replayed = 0
        for rid, rec in self.store.records(self.name, self.last_id):
            self.state.apply(rec)
            self.last_id = rid
            replayed += 1
        self.restored = {"snapshot": snap is not None, "replayed": replayed}
        self._since_snapshot, self._snapshot_at = replayed, time.monotonic()

    def _write(self, rec: dict, live: dict | None = None) -> Any:
        """Log `rec` (JSON) first, then apply it; `live` is the same record with already-validated objects."""
        self.last_id = self.store.append(self.name, rec)
        out = self.state.apply(live or rec)
        self._since_snapshot += 1
        if (self._since_snapshot >= self.snapshot_every
                or time.monotonic() - self._snapshot_at >= self.snapshot_seconds):
            try:
                self.snapshot()
            except REDIS_DOWN:  # the record is logged and applied: answer it; the next write snapshots
                self._stale, self._retry_at = True, 0.0
        return out

    @guarded
    def snapshot(self) -> str:
        self.store.save_snapshot(self.name, codec.encode(self.state.state_dict()), self.last_id)
        self._since_snapshot, self._snapshot_at = 0, time.monotonic()
        return self.last_id

    # -- operations (errors come back as values: see ServiceError.unwrap) ---------------------------
    @guarded
    def summary(self) -> dict:
        return {**self.state.summary(), "created_at": self.created_at}

    @guarded
    def state_view(self) -> dict:
        return self.state.describe()

    @guarded
    def lease(self, req: LeaseRequest) -> dict:
        """Lease a batch; with `req.report`, first apply those results (one round trip per rollout loop).
        All-or-nothing: a bad report rejects the whole call before anything is logged. With `req.lease_key`,
        a live lease under that key is answered again as it was (nothing is logged)."""
        ack = None
        if req.report is not None:
            ack = self.report(req.report)
            if "__error__" in ack:
                return ack
        now = time.time()
        out = self.state.keyed_batch(req.lease_key, now)
        if out is None:
            rec = {"op": "lease", "n": req.size, "worker": req.worker, "lease_seconds": req.lease_seconds,
                   "now": now, "batch_id": f"b-{self.state.batches + 1:06d}"}
            if req.lease_key is not None:
                rec["lease_key"] = req.lease_key
            out = self._write(rec)
        return out if ack is None else {**out, "reported": ack}

    @guarded
    def report(self, req: ReportRequest) -> dict:
        """`req.results` arrive validated (RewardEvent) with their rollout ids: checked against the pool, logged
        as JSON (the one conversion), and applied as they are."""
        events = req.results
        try:
            self.state.validate_report(events)
        except InvalidReport as e:  # unknown item ids, rewards outside reward_range
            return ServiceError(422, e.code, str(e)).as_dict()
        rec = {"op": "report", "batch_id": req.batch_id, "now": time.time(),
               "results": [e.model_dump(mode="json", exclude_defaults=True) for e in events]}
        return self._write(rec, {**rec, "results": events})

    @guarded
    def add_items(self, req: AddItems) -> dict:
        rec = {"op": "add_items", "items": [it.model_dump(mode="json", exclude_defaults=True) for it in req.items]}
        return self._write(rec, {**rec, "items": req.items})  # the pool takes the validated items as they are

    @guarded
    def set_params(self, req: PatchStrategy) -> dict:
        try:
            self.state.strategy.check_params(req.params)
        except ValidationError as e:
            errs = format_validation_error(e, "params")
            return ServiceError(422, "invalid_params", "; ".join(f"{loc}: {m}" for loc, m in errs)).as_dict()
        except ValueError as e:  # InvalidParams and cross-field checks
            return ServiceError(422, "invalid_params", f"params: {e}").as_dict()
        self._write({"op": "set_params", "params": req.params})
        return self.summary()

    @guarded
    def metrics(self) -> dict:
        d = self.state.describe()
        return {"events": d["events"], "duplicates": self.state.duplicates,
                "leases_expired": self.state.leases_expired, "degenerate_ratio": d["degenerate_ratio"],
                "arms": {a["name"]: a["weight"] for a in d["arms"]},
                "pass_rates": {a["name"]: a["pass_rate"] for a in d["arms"] if a["pass_rate"] is not None},
                "cost": d["details"]["cost"], "predictions": live_summary(d["details"]),
                "restored": self.restored}

