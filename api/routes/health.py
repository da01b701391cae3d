from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    """Process liveness only: never touches Triton or storage."""
    return {"status": "ok"}


@router.get("/ready")
async def ready(request: Request) -> JSONResponse:
    """Ready when Triton and every pipeline's models are, and the job store answers when the
    job system is on. The flag provider is reported, not gated on: a stale flag source keeps
    serving its last good value (see docs/ROLLBACK.md)."""
    state = request.app.state
    checks = await state.inference.readiness()
    jobs = getattr(state, "jobs", None)
    if jobs is not None:
        checks["duckdb"] = await jobs.store.ping()
    ok = all(checks.values())
    body: dict = {"ready": ok, "checks": checks}
    flags = getattr(state, "flags", None)
    if flags is not None:
        body["flags"] = flags.status()
        body["sessions"] = len(state.sessions)
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/metrics")
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
