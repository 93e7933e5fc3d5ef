"""Idempotency keys. A result gets its `rollout_id` BEFORE the first attempt to deliver it, so a retried report
can never be applied twice. Shared by the HTTP client (dicts) and the request models (services.schemas)."""
from __future__ import annotations

import uuid


def new_rollout_id() -> str:
    return uuid.uuid4().hex


def fill_rollout_ids(results: list[dict]) -> list[dict]:
    """Give every result (a dict) that lacks one an idempotency key."""
    return [r if r.get("rollout_id") else {**r, "rollout_id": new_rollout_id()} for r in results]
