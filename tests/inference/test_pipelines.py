"""The pipeline registry as the gateway sees it (api/inference/pipelines.py): the ids clients may
ask for, the Triton model serving each and the models readiness waits on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from api.inference.pipelines import PIPELINES, get_pipeline
from api.pipelines_spec import pipeline_served_by


def test_the_pipelines_are_the_three_the_api_promises() -> None:
    assert {p.id: p.produces for p in PIPELINES.values()} == {
        "yolo": ("detections",),
        "ocr": ("texts",),
        "yolo_ocr": ("detections",),
    }


@pytest.mark.parametrize("pipeline_id", sorted(PIPELINES))
def test_get_pipeline_finds_each_registered_pipeline(pipeline_id: str) -> None:
    pipeline = get_pipeline(pipeline_id)
    assert pipeline is not None and pipeline.id == pipeline_id


@pytest.mark.parametrize("pipeline_id", ["", "YOLO", "yolo ", "pipeline_yolo", "yolo,ocr"])
def test_get_pipeline_is_none_for_anything_else(pipeline_id: str) -> None:
    # Ids are matched exactly: the Triton model's name is not an alias for its pipeline.
    assert get_pipeline(pipeline_id) is None


@pytest.mark.parametrize("pipeline_id", sorted(PIPELINES))
def test_each_pipeline_is_served_by_its_own_model_which_readiness_checks_first(
    pipeline_id: str,
) -> None:
    pipeline = PIPELINES[pipeline_id]
    assert pipeline_served_by(pipeline.triton_model) is pipeline
    assert pipeline.models[0] == pipeline.triton_model
    assert pipeline.models[1:] == pipeline.stage_names and pipeline.stage_names


def test_every_model_readiness_waits_on_is_in_the_model_repository(repo_root: Path) -> None:
    models = {m for p in PIPELINES.values() for m in p.models}
    missing = sorted(
        m for m in models if not (repo_root / "triton_models" / m / "config.pbtxt").is_file()
    )
    assert missing == [], f"models with no triton_models/<model>/config.pbtxt: {missing}"


@pytest.mark.parametrize("pipeline_id", sorted(PIPELINES))
def test_a_description_is_plain_json_naming_the_models(pipeline_id: str) -> None:
    pipeline = PIPELINES[pipeline_id]
    described = json.loads(json.dumps(pipeline.describe()))  # nothing internal leaks through
    assert described == {
        "id": pipeline_id,
        "description": pipeline.description,
        "produces": list(pipeline.produces),
        "triton_model": pipeline.triton_model,
        "models": list(pipeline.models),
    }
