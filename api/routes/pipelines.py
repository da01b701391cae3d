from __future__ import annotations

from fastapi import APIRouter, HTTPException

from api.inference.pipelines import PIPELINES, get_pipeline

router = APIRouter(prefix="/v1/pipelines", tags=["pipelines"])


@router.get("")
async def list_pipelines() -> dict[str, list[dict]]:
    return {"pipelines": [p.describe() for p in PIPELINES.values()]}


@router.get("/{pipeline_id}")
async def describe_pipeline(pipeline_id: str) -> dict:
    pipeline = get_pipeline(pipeline_id)
    if pipeline is None:
        raise HTTPException(status_code=404, detail=f"unknown pipeline {pipeline_id!r}")
    return pipeline.describe()
