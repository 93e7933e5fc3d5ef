"""The routes of REST API v1 (API.md). Request models (services.schemas) go to the owner unchanged through the
replica's OwnerRouter; the replica's settings and router live in `replica` (set by services.app's ingress)."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from services import metrics as telemetry
from services.errors import ServiceError
from services.router import OwnerRouter
from services.schemas import (
    AddItems,
    AddItemsAck,
    Batch,
    CreateExperiment,
    Error,
    ExperimentList,
    LeaseRequest,
    PatchStrategy,
    ReportAck,
    ReportRequest,
    State,
    StrategyList,
    Summary,
)
from services.settings import Settings

ERRORS = {k: {"model": Error} for k in (400, 401, 403, 404, 409, 413, 422, 429, 503)}


@dataclass
class Replica:
    """What one ingress replica holds: its settings and its router (no experiment state)."""
    settings: Settings | None = None
    owners: OwnerRouter | None = None


replica = Replica()
routes = APIRouter()


def current_settings() -> Settings | None:
    return replica.settings


def owners() -> OwnerRouter:
    if replica.owners is None:
        raise ServiceError(503, "not_ready", "the controller is starting")
    return replica.owners


# -- operations ----------------------------------------------------------------------------------
@routes.get("/healthz")
async def healthz():
    return {"status": "ok"}


@routes.get("/readyz", responses=ERRORS)
async def readyz():
    try:
        c = owners()
        c.store.ping()
        c.store.names()
    except ServiceError:
        raise
    except Exception as e:  # redis down, wrong password ...
        raise ServiceError(503, "not_ready", f"redis: {e}") from None
    return {"status": "ready"}


@routes.get("/metrics")
async def metrics():
    c = replica.owners
    if c is not None:
        for name in c.names():
            try:
                telemetry.set_owner_totals(name, await c.acall(name, "metrics"))
            except Exception:
                continue
    return Response(telemetry.exposition(), media_type=telemetry.CONTENT_TYPE)


# -- experiments ---------------------------------------------------------------------------------
@routes.get("/v1/strategies", response_model=StrategyList, responses=ERRORS)
async def strategies():
    return {"strategies": OwnerRouter.strategies()}


@routes.post("/v1/experiments", status_code=201, response_model=Summary, responses=ERRORS)
async def create_experiment(req: CreateExperiment):
    return await asyncio.to_thread(owners().create, req)


@routes.get("/v1/experiments", response_model=ExperimentList, responses=ERRORS)
async def list_experiments():
    c = owners()
    out = []
    for name in c.names():
        try:
            out.append(await c.acall(name, "summary"))
        except ServiceError as e:
            if e.status != 404:
                raise
    return {"experiments": out}


@routes.get("/v1/experiments/{name}", response_model=Summary, responses=ERRORS)
async def get_experiment(name: str):
    return await owners().acall(name, "summary")


@routes.delete("/v1/experiments/{name}", status_code=204, responses=ERRORS)
async def delete_experiment(name: str):
    owners().delete(name)
    return Response(status_code=204)


@routes.post("/v1/experiments/{name}/items", response_model=AddItemsAck, responses=ERRORS)
async def add_items(name: str, req: AddItems):
    return await owners().acall(name, "add_items", req)


@routes.patch("/v1/experiments/{name}/strategy", response_model=Summary, responses=ERRORS)
async def patch_strategy(name: str, req: PatchStrategy):
    return await owners().acall(name, "set_params", req)


@routes.post("/v1/experiments/{name}/batches", response_model=Batch, response_model_exclude_none=True,
             responses=ERRORS)
async def lease_batch(name: str, req: LeaseRequest):
    out = await owners().acall(name, "lease", req)
    telemetry.count_leased(name, len(out["items"]))
    if req.report is not None:
        telemetry.count_reported(name, out["reported"])
    return JSONResponse(out)  # built by the owner in the Batch shape; skips re-validating 64+ items


@routes.post("/v1/experiments/{name}/rewards", status_code=202, response_model=ReportAck, responses=ERRORS)
async def report_rewards(name: str, req: ReportRequest):
    out = await owners().acall(name, "report", req)
    telemetry.count_reported(name, out)
    return out


@routes.get("/v1/experiments/{name}/state", response_model=State, responses=ERRORS)
async def experiment_state(name: str):
    return await owners().acall(name, "state_view")
