"""Copies of the model repository for tests that serve a variant of it."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2] / "triton_models"
INLINE_STAGES = 'parameters { key: "stages" value: { string_value: "inline" } }'
BLS_STAGES = 'parameters { key: "stages" value: { string_value: "bls" } }'


def copy_models(models: Iterable[str], to: Path, *, onnx: bool = True) -> Path:
    """`models` copied from the repository into `to` (ONNX files left out unless `onnx`)."""
    ignore = None if onnx else shutil.ignore_patterns("*.onnx")
    for model in models:
        shutil.copytree(REPO / model, to / model, ignore=ignore)
    return to


def with_bls_stages(repo: Path) -> Path:
    """Every pipeline's CPU config in `repo` switched from inline stages to BLS calls, as the GPU
    deployment runs them (api/triton_backend/stage_runner.py)."""
    for config in repo.glob("pipeline_*/configs/cpu.pbtxt"):
        text = config.read_text()
        if INLINE_STAGES not in text:
            raise AssertionError(f"{config} does not run its stages inline")
        config.write_text(text.replace(INLINE_STAGES, BLS_STAGES))
    return repo
