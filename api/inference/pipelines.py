"""The pipeline registry as the gateway sees it: what clients may ask for, and which Triton model
serves it. The definitions themselves live in api/pipelines_spec.py, shared with Triton."""

from __future__ import annotations

from api.pipelines_spec import PIPELINES, Pipeline

__all__ = ["PIPELINES", "Pipeline", "get_pipeline"]


def get_pipeline(pipeline_id: str) -> Pipeline | None:
    return PIPELINES.get(pipeline_id)
