"""Bad frames give a per-frame error; the other frames of the same batch are unaffected."""

from __future__ import annotations

import asyncio

import cv2
import numpy as np
import pytest

from api.inference.triton_client import TritonClient
from api.synthetic.scene import encode_jpeg, make_frames

pytestmark = pytest.mark.triton  # the real tritonserver


def _jpeg_of_size(width: int, height: int) -> bytes:
    ok, buf = cv2.imencode(
        ".jpg", np.zeros((height, width, 3), np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 50]
    )
    assert ok
    return buf.tobytes()


@pytest.fixture(scope="module")
def good() -> bytes:
    return encode_jpeg(make_frames(6200, 1)[0].image)


BAD = {
    "not_jpeg": b"GIF89a not a jpeg at all",
    "empty_frame": b"",
    "truncated_jpeg": None,  # filled in from the good frame
    "image_too_small": None,  # 1x1
    "image_too_large": None,  # 8000x8000
}


@pytest.mark.parametrize("model", ["pipeline_yolo", "pipeline_ocr", "pipeline_yolo_ocr"])
def test_bad_frames_fail_alone(triton, good: bytes, model: str) -> None:
    bad = dict(BAD)
    bad["truncated_jpeg"] = good[: len(good) // 2]
    bad["image_too_small"] = _jpeg_of_size(1, 1)
    bad["image_too_large"] = _jpeg_of_size(8000, 8000)
    batch = [good]
    for payload in bad.values():
        batch += [payload, good]

    async def run() -> list[dict]:
        client = TritonClient(triton.grpc_url)
        try:
            return await client.infer_frames(model, batch)
        finally:
            await client.close()

    results = asyncio.run(run())
    assert len(results) == len(batch)
    goods = results[0::2]
    assert all("error" not in r for r in goods)
    assert all(r == goods[0] for r in goods)  # the bad neighbours did not change good results
    assert [r["error"] for r in results[1::2]] == list(bad)
    assert all(r["detail"] for r in results[1::2])
