"""Accuracy of the served pipelines, end to end through the embedded Triton (no fakes)."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest

from api.inference.triton_client import TritonClient
from api.synthetic.scene import encode_jpeg, make_frames
from api.synthetic.scoring import Score, iou

pytestmark = pytest.mark.triton  # the real tritonserver

# Seeds >= 1000 are never used for training (train 1, val 2).
TEST_SEED = 5000
FRAMES = 200


@pytest.fixture(scope="module")
def frames():
    return make_frames(TEST_SEED, FRAMES)


@pytest.fixture(scope="module")
def jpegs(frames) -> list[bytes]:
    return [encode_jpeg(f.image) for f in frames]


async def infer_all(triton, model: str, jpegs: list[bytes], batch: int = 8) -> list[dict]:
    """Batches of 8, two requests in flight (enough to keep both pipeline instances busy
    without queueing requests past their deadline)."""
    client = TritonClient(triton.grpc_url, timeout_s=120)
    slots = asyncio.Semaphore(2)

    async def one(chunk: list[bytes]) -> list[dict]:
        async with slots:
            return await client.infer_frames(model, chunk)

    try:
        chunks = [jpegs[i : i + batch] for i in range(0, len(jpegs), batch)]
        results = await asyncio.gather(*(one(c) for c in chunks))
    finally:
        await client.close()
    return [r for chunk in results for r in chunk]


def test_yolo_ocr_detects_and_reads_plates(triton, frames, jpegs) -> None:
    results = asyncio.run(infer_all(triton, "pipeline_yolo_ocr", jpegs))
    score = Score()
    for frame, result in zip(frames, results, strict=True):
        score.add(frame.signs, result["detections"])
    print(
        f"signs={score.signs} recall={score.recall:.3f} exact_read={score.read_rate:.3f} "
        f"false_positives={score.false_positives}"
    )
    assert score.recall >= 0.95
    assert score.read_rate >= 0.90


def test_yolo_pipeline_boxes_in_source_pixels(triton, frames, jpegs) -> None:
    results = asyncio.run(infer_all(triton, "pipeline_yolo", jpegs[:16]))
    for frame, result in zip(frames[:16], results, strict=True):
        h, w = frame.image.shape[:2]
        for det in result["detections"]:
            assert set(det) == {"label", "class_id", "confidence", "box"}
            x1, y1, x2, y2 = det["box"]
            assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
        best = [
            max((iou(s.box, d["box"]) for d in result["detections"]), default=0)
            for s in frame.signs
        ]
        assert sum(b >= 0.5 for b in best) >= len(frame.signs) - 1


def reference_reads(jpegs: list[bytes]) -> list[list[str]]:
    """RapidOCR's reads of every frame, sorted: two engines side by side, one single-threaded
    ONNX Runtime each. Its default (all cores, spinning pool threads) took 0.52 s of wall time per
    frame here against 0.38 s for this, with the same reads (2026-12-01, 24 frames)."""
    from rapidocr_onnxruntime import RapidOCR

    engines: dict[int, RapidOCR] = {}

    def read(data: bytes) -> list[str]:
        thread = threading.get_ident()
        if thread not in engines:
            engines[thread] = RapidOCR(intra_op_num_threads=1, inter_op_num_threads=1)
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        reference, _ = engines[thread](image, use_cls=False)
        return sorted(text for _, text, _ in reference or [])

    # ONNX Runtime and OpenCV release the GIL: two threads use both cores.
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(read, jpegs))


# The in-process reference OCR alone takes minutes of CPU here; on a busy 2-core CI machine it
# outlasts the suite's 300 s hang guard (seen in a fresh-clone run beside a CPU-bound process).
@pytest.mark.timeout(900)
def test_ocr_pipeline_agrees_with_rapidocr(triton, jpegs) -> None:
    # One frame per request: the recogniser pads every crop of a batch to the widest, so
    # batches of 8 took 92 s for these frames here against 70 s (same agreement, 405/405).
    served = asyncio.run(infer_all(triton, "pipeline_ocr", jpegs, batch=1))
    agree = total = 0
    for expected, result in zip(reference_reads(jpegs), served, strict=True):
        got = sorted(t["text"] for t in result["texts"])
        total += max(len(expected), len(got))
        agree += len(set(expected) & set(got))
    print(f"ocr agreement {agree}/{total}")
    assert total > FRAMES  # the frames do contain text
    assert agree / total >= 0.95
