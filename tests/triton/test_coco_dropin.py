"""A user's COCO yolov8n export drops into triton_models/yolo unchanged.

The asset is an ultralytics export of the YOLOv8n architecture with the 80 COCO class names
(untrained weights; scripts/export_coco_untrained.py), exported exactly as a real COCO checkpoint
is: 640 px input, output [N, 84, 8400], names in the metadata.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from api.inference.triton_client import TritonClient
from api.synthetic.scene import encode_jpeg, make_frames
from api.triton_server.embedded import EmbeddedTriton
from api.vision.pipeline import FramePipeline, PipelineSettings
from api.vision.yolo import DetectorInfo
from tests.support.model_repos import with_bls_stages
from tests.support.ports import free_ports

pytestmark = pytest.mark.triton  # a second real tritonserver on an exported COCO model

ASSET = Path(__file__).resolve().parents[1] / "assets" / "yolov8n_coco_untrained.onnx"
REPO = Path(__file__).resolve().parents[2] / "triton_models"


@pytest.fixture(scope="module")
def coco_triton(tmp_path_factory: pytest.TempPathFactory):
    repo = tmp_path_factory.mktemp("coco_repo")
    for model in ("yolo", "pipeline_yolo"):
        shutil.copytree(REPO / model, repo / model, ignore=shutil.ignore_patterns("*.onnx"))
    shutil.copy(ASSET, repo / "yolo" / "1" / "model.onnx")
    # BLS stages, so the served `yolo` model's statistics show the export really ran (the
    # inline stages read the same file: tests/triton/test_batching.py checks they agree).
    with_bls_stages(repo)
    server = EmbeddedTriton(
        workdir=repo.parent / "coco_triton", ports=free_ports(), model_repository=repo
    )
    try:
        server.start(timeout_s=240)
        yield server
    finally:
        server.stop()


def test_coco_export_serves_through_the_unchanged_pipeline(coco_triton) -> None:
    frames = [encode_jpeg(f.image) for f in make_frames(7000, 4)]

    async def run() -> tuple[list[dict], dict]:
        client = TritonClient(coco_triton.grpc_url)
        try:
            results = await client.infer_frames("pipeline_yolo", frames)
            deadline = asyncio.get_running_loop().time() + 5
            while int((stats := await client.statistics("yolo"))["inference_count"]) < 4:
                assert asyncio.get_running_loop().time() < deadline  # stats land just after
                await asyncio.sleep(0.02)
            return results, stats
        finally:
            await client.close()

    results, yolo_stats = asyncio.run(run())
    assert [("error" in r) for r in results] == [False] * 4
    assert all(isinstance(r["detections"], list) for r in results)
    assert int(yolo_stats["inference_count"]) == 4  # the 84-channel model really ran


def test_coco_class_names_and_input_size_come_from_metadata() -> None:
    session = ort.InferenceSession(str(ASSET), providers=["CPUExecutionProvider"])
    info = DetectorInfo.from_metadata(session.get_modelmeta().custom_metadata_map)
    assert len(info.names) == 80 and info.names[0] == "person" and info.names[11] == "stop sign"
    assert info.imgsz == (640, 640)

    def run(model: str, batch: np.ndarray) -> np.ndarray:
        assert model == "yolo" and batch.shape[1:] == (3, 640, 640)
        return session.run(None, {"images": batch})[0]

    # A near-zero threshold makes the untrained head emit boxes, so label mapping is exercised.
    settings = PipelineSettings(kind="yolo", detector=info, conf_threshold=1e-4)
    [result] = FramePipeline(settings, run).process([encode_jpeg(make_frames(7001, 1)[0].image)])
    assert result["detections"]
    for det in result["detections"]:
        assert det["label"] == info.names[det["class_id"]]
        assert 0 <= det["class_id"] < 80
