"""Liveness, readiness and metrics.

Readiness has two scopes. `service` (the default, `/ready`, for people and `framegate verify`):
the whole path works, Triton and every pipeline's models included. `pod` (`/ready?scope=pod`, the
chart's readinessProbe): what this process itself can do, its flags loaded, its job store
answering, not draining; Triton's state is in the body but does not gate it, so a Triton restart
leaves every gateway in its Service (sessions wait it out, jobs retry) instead of removing them
all, stalling `helm upgrade --wait` and blocking node drains through the PDBs.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import ServicesDep
from api.inference.watch import TritonWatch
from api.lifespan import Services

router = APIRouter(tags=["health"])

# Flag service states in which it serves flags: its source's (ready), or the last good ones or
# STREAMING_ENABLED while the source fails (error, stale), which is reported, not gated on (see
# docs/ROLLBACK.md: one bad flag file must not take every pod out). Not started, not ready,
# fatal (its kill switch can never work) or stopped: the pod is not ready.
FLAGS_LOADED = frozenset({"ready", "error", "stale"})


class Scope(StrEnum):
    SERVICE = "service"
    POD = "pod"


@router.get("/health")
async def health() -> dict[str, str]:
    """Process liveness only: never touches Triton or storage."""
    return {"status": "ok"}


@router.get("/ready")
async def ready(services: ServicesDep, scope: Scope = Scope.SERVICE) -> JSONResponse:
    """200 when ready in `scope`, else 503; the body says why either way."""
    draining = services.drain.draining
    checks = await _pod_checks(services)
    body: dict[str, Any] = {"scope": str(scope), "draining": draining}
    if scope is Scope.SERVICE:
        checks = {**await services.triton_watch.check(), **checks}
    else:
        body["triton"] = _last_seen(services.triton_watch)
    ok = all(checks.values()) and not draining
    body = {"ready": ok, **body, "checks": checks}
    if services.streaming is not None:
        body["flags"] = services.streaming.flags.status()
        body["sessions"] = len(services.streaming.sessions)
    return JSONResponse(body, status_code=200 if ok else 503)


async def _pod_checks(services: Services) -> dict[str, bool]:
    checks: dict[str, bool] = {}
    if services.jobs is not None:
        checks["duckdb"] = await services.jobs.store.ping()
    if services.streaming is not None:
        checks["flags"] = services.streaming.flags.status()["state"] in FLAGS_LOADED
    return checks


def _last_seen(watch: TritonWatch) -> dict[str, Any]:
    """Triton as the background watch last saw it (never asked from a probe)."""
    checked = watch.checked_at
    return {
        "ready": watch.ready,
        "checks": watch.last,
        "checked_at": None if checked is None else datetime.fromtimestamp(checked, UTC).isoformat(),
    }


@router.get(
    "/metrics",
    # Without these the OpenAPI schema promised JSON (FastAPI's default for a plain Response).
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition format",
            "content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
        }
    },
)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
