"""The micro-batcher against the real Triton: one request per batch, right results per caller."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from api.inference.batcher import MicroBatcher
from api.inference.triton_client import TritonClient
from api.synthetic.scene import encode_jpeg, make_frames
from api.synthetic.scoring import iou
from api.triton_server.embedded import EmbeddedTriton
from tests.support.model_repos import copy_models, with_bls_stages
from tests.support.ports import free_ports

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


@pytest.fixture(scope="module")
def bls_triton(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedTriton]:
    """`pipeline_yolo_ocr` with its stages as BLS calls to the `yolo` and `ocr_rec` models, as
    the GPU deployment runs them (the shared server runs them inline, as the CPU one does)."""
    root = tmp_path_factory.mktemp("bls")
    repo = with_bls_stages(copy_models((MODEL, "yolo", "ocr_rec"), root / "models"))
    server = EmbeddedTriton(workdir=root / "triton", ports=free_ports(), model_repository=repo)
    try:
        server.start(timeout_s=240)
        yield server
    finally:
        server.stop()


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


def test_each_stage_runs_once_per_batch_of_requests(bls_triton) -> None:
    """Through BLS, one execute() makes one call per stage for the whole batch: 8 frames cost the
    detector and the recogniser one execution each."""
    frames = [encode_jpeg(f.image) for f in make_frames(6300, 8)]

    async def run() -> dict[str, tuple[int, int]]:
        client = TritonClient(bls_triton.grpc_url)
        try:
            await client.infer_frames(MODEL, frames[:1])  # warm-up
            # A fresh server records the warm-up's statistics late on a busy machine: wait for
            # them, or they land inside the measured delta.
            for model in (MODEL, "yolo", "ocr_rec"):
                await _stats_after(client, model, (0, 0), 1)
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


def test_inline_and_bls_stages_give_the_same_results(triton, bls_triton) -> None:
    """The CPU deployment's inline stages answer exactly as BLS calls to the stage models do, and
    the shared (inline) server never calls its stage models."""
    frames = [encode_jpeg(f.image) for f in make_frames(6400, 6)]

    async def run() -> tuple[list[dict], list[dict], tuple[int, int], tuple[int, int]]:
        inline, bls = TritonClient(triton.grpc_url), TritonClient(bls_triton.grpc_url)
        try:
            before = await _stats(inline, "yolo")
            by_inline = await inline.infer_frames(MODEL, frames)
            by_bls = await bls.infer_frames(MODEL, frames)
            return by_inline, by_bls, before, await _stats(inline, "yolo")
        finally:
            await inline.close()
            await bls.close()

    by_inline, by_bls, before, after = asyncio.run(run())
    assert all(r["detections"] for r in by_inline)  # the frames have signs: something was found
    assert by_inline == by_bls
    assert after == before  # inline: the detector ran inside the pipeline's own stubs
