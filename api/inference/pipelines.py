"""The pipeline registry: what clients may ask for, and which Triton model serves it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Pipeline:
    id: str
    triton_model: str
    description: str
    produces: tuple[str, ...]  # top-level keys of each frame's result
    models: tuple[str, ...]  # every Triton model that must be ready for this pipeline

    def describe(self) -> dict[str, object]:
        return {
            "id": self.id,
            "description": self.description,
            "produces": list(self.produces),
            "triton_model": self.triton_model,
            "models": list(self.models),
        }


PIPELINES: dict[str, Pipeline] = {
    p.id: p
    for p in (
        Pipeline(
            id="yolo",
            triton_model="pipeline_yolo",
            description="YOLO object detection; boxes in source-image pixels",
            produces=("detections",),
            models=("pipeline_yolo", "yolo"),
        ),
        Pipeline(
            id="ocr",
            triton_model="pipeline_ocr",
            description="Full-frame text detection and recognition (PP-OCRv4)",
            produces=("texts",),
            models=("pipeline_ocr", "ocr_det", "ocr_rec"),
        ),
        Pipeline(
            id="yolo_ocr",
            triton_model="pipeline_yolo_ocr",
            description="YOLO detection; text-bearing detections also carry the text read by OCR",
            produces=("detections",),
            models=("pipeline_yolo_ocr", "yolo", "ocr_rec"),
        ),
    )
}


def get_pipeline(pipeline_id: str) -> Pipeline | None:
    return PIPELINES.get(pipeline_id)
