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

Replicas keep no experiment state; each experiment's owner actor does (services.owner). The parts: auth
(services.auth, services.settings), edge limits and error shapes (services.edge), routes (services.routes),
metrics (services.metrics); requests reach owners through services.router.OwnerRouter.
"""
from __future__ import annotations

import os

from fastapi import FastAPI
from ray import serve

from services.edge import Edge, install_error_handlers
from services.router import OwnerRouter
from services.routes import current_settings, routes
from services.settings import Settings

api = FastAPI(title="curriculum controller", version="1",
              description="Curriculum orchestration service for RL post-training (REST API v1).")
install_error_handlers(api)
api.add_middleware(Edge, settings=current_settings)
api.include_router(routes)


# -- the Serve application -----------------------------------------------------------------------
@serve.deployment(ray_actor_options={"num_cpus": 0.1}, max_ongoing_requests=256,
                  logging_config={"enable_access_log": False})
@serve.ingress(api)
class ControllerIngress:
    def __init__(self, redis_url: str | None = None, token: str | None = None,
                 max_body_bytes: int | None = None, snapshot_every: int | None = None,
                 snapshot_seconds: float | None = None, scoped_tokens: dict[str, str] | None = None) -> None:
        # Serve ships this class by value; set the settings on the imported module the routes read from.
        from services.routes import replica

        s = Settings.from_env(redis_url=redis_url, token=token, max_body_bytes=max_body_bytes,
                              snapshot_every=snapshot_every, snapshot_seconds=snapshot_seconds,
                              scoped_tokens=scoped_tokens)
        replica.settings = s
        replica.owners = OwnerRouter(s.redis_url, s.snapshot_every, s.snapshot_seconds)


def build_app(redis_url: str | None = None, token: str | None = None, replicas: int | None = None, **kw):
    """The controller application with explicit settings (the CLI and tests); env fills the rest."""
    replicas = replicas or int(os.environ.get("CURRICULUM_REPLICAS", 1))
    return ControllerIngress.options(num_replicas=replicas).bind(redis_url, token, **kw)


app = build_app()
