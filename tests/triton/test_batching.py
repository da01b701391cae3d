"""The micro-batcher against the real Triton: one request per batch, right results per caller."""

from __future__ import annotations

import asyncio

import pytest

from api.inference.batcher import MicroBatcher
from api.inference.triton_client import TritonClient
from api.synthetic.scene import encode_jpeg, make_frames
from api.synthetic.scoring import iou

pytestmark = pytest.mark.triton  # the real tritonserver

MODEL = "pipeline_yolo_ocr"


async def _stats(client: TritonClient, model: str = MODEL) -> tuple[int, int]:
    stats = await client.statistics(model)
    return int(stats.get("inference_count", 0)), int(stats.get("execution_count", 0))


async def _stats_after(
    client: TritonClient, model: str, before: tuple[int, int], frames: int
) -> tuple[int, int]:
    """Triton records statistics after the response is on its way: poll (with a deadline)
    until the frames are counted before reading the execution count."""
    deadline = asyncio.get_running_loop().time() + 5
    while (now := await _stats(client, model))[0] - before[0] < frames:
        assert asyncio.get_running_loop().time() < deadline, f"{model} stats never counted"
        await asyncio.sleep(0.02)
    return now


def test_eight_frames_reach_triton_as_one_request_in_caller_order(triton) -> None:
    frames = make_frames(6100, 8)

    async def run() -> tuple[list[dict], tuple[int, int], tuple[int, int], list[int]]:
        client = TritonClient(triton.grpc_url)
        sizes: list[int] = []
        batcher = MicroBatcher(
            lambda batch: client.infer_frames(MODEL, batch),
            max_size=8,
            max_delay_s=1.0,  # only the size limit can trigger this flush
            observer=lambda size, _: sizes.append(size),
        )
        try:
            await client.infer_frames(MODEL, [encode_jpeg(frames[0].image)])  # warm-up
            before = await _stats(client)
            results = await asyncio.gather(*(batcher.infer(encode_jpeg(f.image)) for f in frames))
            after = await _stats_after(client, MODEL, before, 8)
        finally:
            await batcher.close()
            await client.close()
        return results, before, after, sizes

    results, before, after, sizes = asyncio.run(run())
    assert sizes == [8]
    assert after[0] - before[0] == 8  # inference count: frames
    assert after[1] - before[1] == 1  # execution count: one model execution for all of them
    for frame, result in zip(frames, results, strict=True):
        texts = {d.get("text") for d in result["detections"]}
        for sign in frame.signs:
            # each caller sees its own frame's plates: the boxes and strings are unique per frame
            assert any(iou(sign.box, d["box"]) >= 0.5 for d in result["detections"])
        assert texts & {s.text for s in frame.signs}


def test_each_stage_runs_once_per_batch_of_requests(triton) -> None:
    """execute() batches across the requests it is handed: 8 frames from 4 concurrent requests
    cost the detector and the recogniser one execution each (or as few as Triton grouped)."""
    frames = [encode_jpeg(f.image) for f in make_frames(6300, 8)]

    async def run() -> dict[str, tuple[int, int]]:
        client = TritonClient(triton.grpc_url)
        try:
            await client.infer_frames(MODEL, frames[:1])  # warm-up
            before = {m: await _stats(client, m) for m in (MODEL, "yolo", "ocr_rec")}
            await client.infer_frames(MODEL, frames)
            after = {m: await _stats_after(client, m, before[m], 8) for m in before}
        finally:
            await client.close()
        return {m: (after[m][0] - before[m][0], after[m][1] - before[m][1]) for m in after}

    delta = asyncio.run(run())
    assert delta[MODEL] == (8, 1)
    assert delta["yolo"] == (8, 1)  # one detector call for the 8 frames
    assert delta["ocr_rec"][1] == 1 and delta["ocr_rec"][0] >= 8  # one rec call for all crops
