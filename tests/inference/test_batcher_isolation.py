"""When Triton fails a batch, the batcher finds the frames that fail: the others get results."""

from __future__ import annotations

import asyncio

import pytest

from api.inference.batcher import MicroBatcher
from api.inference.errors import InferenceUnavailable, PipelineFailure

POISON = b"poison"


class PoisonSensitive:
    """A fake Triton that fails any request containing a poisoned frame, as a crashing model
    fails the whole request it was handed."""

    def __init__(self) -> None:
        self.requests: list[list[bytes]] = []

    async def __call__(self, frames: list[bytes]) -> list[dict]:
        self.requests.append(frames)
        await asyncio.sleep(0)
        if POISON in frames:
            raise PipelineFailure("model crashed on a frame")
        return [{"frame": f.decode()} for f in frames]


async def test_one_poisoned_frame_in_eight_fails_alone() -> None:
    triton = PoisonSensitive()
    batcher = MicroBatcher(triton, max_size=8, max_delay_s=0.05, max_inflight=1)
    frames = [f"f{i}".encode() for i in range(7)]
    frames.insert(3, POISON)
    outcomes = await asyncio.gather(*(batcher.infer(f) for f in frames), return_exceptions=True)
    await batcher.close()
    assert len(triton.requests[0]) == 8  # one batch first: isolation costs nothing until a failure
    failed = [i for i, o in enumerate(outcomes) if isinstance(o, PipelineFailure)]
    assert failed == [3]
    assert [o["frame"] for o in outcomes if isinstance(o, dict)] == [f"f{i}" for i in range(7)]
    # halving: 8 -> 4 + 4 -> 2 + 2 -> 1 + 1 on the poisoned side only
    assert sorted(len(r) for r in triton.requests) == [1, 1, 2, 2, 4, 4, 8]


async def test_unavailability_is_not_split() -> None:
    calls: list[int] = []

    async def down(frames: list[bytes]) -> list[dict]:
        calls.append(len(frames))
        raise InferenceUnavailable("refused")

    batcher = MicroBatcher(down, max_size=4, max_delay_s=0.05, max_inflight=1)
    outcomes = await asyncio.gather(
        *(batcher.infer(b"x") for _ in range(4)), return_exceptions=True
    )
    await batcher.close()
    assert all(isinstance(o, InferenceUnavailable) for o in outcomes)
    assert calls == [4]  # every frame fails the same way: retrying halves would only add load


@pytest.mark.parametrize("frames", [1, 4])
async def test_every_frame_failing_ends_with_each_failing_alone(frames: int) -> None:
    async def broken(frames: list[bytes]) -> list[dict]:
        raise PipelineFailure("broken")

    batcher = MicroBatcher(broken, max_size=4, max_delay_s=0.05, max_inflight=1)
    outcomes = await asyncio.gather(
        *(batcher.infer(b"x") for _ in range(frames)), return_exceptions=True
    )
    await batcher.close()
    assert all(isinstance(o, PipelineFailure) for o in outcomes)
