"""Python client for the controller: the REST API over HTTP (`CurriculumClient`). Inside the Ray cluster the
same operations go straight to the owners without HTTP: services.incluster.InClusterClient.

Both fill in a `rollout_id` (the idempotency key) for every result that lacks one BEFORE the first attempt,
so a retried report can never be applied twice. This module needs neither Ray nor the router: trainers
outside the cluster use it alone.
"""
from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import httpx

from services.errors import ServiceError
from services.ids import fill_rollout_ids

RETRY_STATUS = {429, 502, 503, 504}  # transient: the owner is busy or restarting, the proxy is draining


def _items(items: Iterable[Any]) -> list[dict]:
    return [i if isinstance(i, dict) else i.model_dump(mode="json", exclude_defaults=True) for i in items]


def _results(results: Iterable[Any]) -> list[dict]:
    return fill_rollout_ids([r if isinstance(r, dict) else r.model_dump(mode="json") for r in results])


class CurriculumClient:
    """REST client. Errors raise ServiceError(status, code, message)."""

    def __init__(self, url: str = "http://127.0.0.1:8000", token: str | None = None, timeout: float = 60.0,
                 retries: int = 5, backoff: float = 0.2) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout)
        self.retries, self.backoff = retries, backoff

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> CurriculumClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _req(self, method: str, path: str, json: Any = None) -> Any:
        for attempt in range(self.retries + 1):
            try:
                r = self.http.request(method, path, json=json)
            except httpx.TransportError:
                if attempt == self.retries:
                    raise
            else:
                if r.status_code not in RETRY_STATUS or attempt == self.retries:
                    break
            time.sleep(self.backoff * 2**attempt)
        if r.status_code >= 400:
            try:
                e = r.json()["error"]
                raise ServiceError(r.status_code, e["code"], e["message"])
            except (ValueError, KeyError, TypeError):
                raise ServiceError(r.status_code, "http_error", r.text) from None
        return r.json() if r.status_code != 204 and r.content else None

    # -- the API -------------------------------------------------------------------------------
    def strategies(self) -> list[dict]:
        return self._req("GET", "/v1/strategies")["strategies"]

    def create_experiment(self, name: str, strategy: str | None = None, params: dict | None = None, *, items=None,
                          source: dict | None = None, group_size: int = 8, seed: int = 0,
                          reward_range: tuple[float, float] = (0.0, 1.0)) -> dict:
        """`strategy` None: the service's default (the strategy its benchmarks measure best)."""
        body: dict[str, Any] = {"name": name, "group_size": group_size, "seed": seed,
                                "reward_range": list(reward_range)}
        if strategy is not None:
            body["strategy"] = {"name": strategy, "params": params or {}}
        if items is not None:
            body["items"] = _items(items)
        if source is not None:
            body["source"] = source
        return self._req("POST", "/v1/experiments", body)

    def experiments(self) -> list[dict]:
        return self._req("GET", "/v1/experiments")["experiments"]

    def experiment(self, name: str) -> dict:
        return self._req("GET", f"/v1/experiments/{name}")

    def delete_experiment(self, name: str) -> None:
        self._req("DELETE", f"/v1/experiments/{name}")

    def add_items(self, name: str, items) -> dict:
        return self._req("POST", f"/v1/experiments/{name}/items", {"items": _items(items)})

    def patch_strategy(self, name: str, params: dict) -> dict:
        return self._req("PATCH", f"/v1/experiments/{name}/strategy", {"params": params})

    def lease(self, name: str, size: int, worker: str = "client", lease_seconds: float = 300.0,
              lease_key: str | None = None) -> dict:
        """Lease a batch. With `lease_key`, the same key answers the same batch while its lease lives."""
        return self.next_batch(name, size, worker=worker, lease_seconds=lease_seconds, lease_key=lease_key)

    def next_batch(self, name: str, size: int, results=None, batch_id: str | None = None, worker: str = "client",
                   lease_seconds: float = 300.0, lease_key: str | None = None) -> dict:
        """Report the previous batch's `results` (if any) and lease the next batch in ONE round trip.
        The answer carries `reported` ({"accepted", "duplicates"}) when results were sent."""
        body: dict[str, Any] = {"size": size, "worker": worker, "lease_seconds": lease_seconds}
        if lease_key is not None:
            body["lease_key"] = lease_key
        if results:
            body["report"] = {"batch_id": batch_id, "results": _results(results)}
        return self._req("POST", f"/v1/experiments/{name}/batches", body)

    def report(self, name: str, results, batch_id: str | None = None) -> dict:
        return self._req(
            "POST", f"/v1/experiments/{name}/rewards", {"batch_id": batch_id, "results": _results(results)}
        )

    def state(self, name: str) -> dict:
        return self._req("GET", f"/v1/experiments/{name}/state")

    def healthz(self) -> dict:
        return self._req("GET", "/healthz")
