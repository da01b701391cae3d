"""The micro-batcher against the real Triton: one request per batch, right results per caller."""

from __future__ import annotations

import asyncio

from api.inference.batcher import MicroBatcher
from api.inference.triton_client import TritonClient
from api.synthetic.scene import encode_jpeg, make_frames
from api.synthetic.scoring import iou

MODEL = "pipeline_yolo_ocr"


async def _stats(client: TritonClient) -> tuple[int, int]:
    stats = await client.statistics(MODEL)
    return int(stats.get("inference_count", 0)), int(stats.get("execution_count", 0))


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
            after = await _stats(client)
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
