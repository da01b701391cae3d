"""MicroBatcher behaviour with a fake Triton boundary (the real one is in tests/triton)."""

from __future__ import annotations

import asyncio
import time

import pytest

from api.inference.batcher import MicroBatcher
from api.inference.errors import BatcherClosed, FrameExpired


class FakeTriton:
    def __init__(self) -> None:
        self.batches: list[list[bytes]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.active = 0
        self.peak = 0
        self.fail_on: bytes | None = None

    async def infer(self, frames: list[bytes]) -> list[dict]:
        self.batches.append(frames)
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            await self.gate.wait()
        finally:
            self.active -= 1
        if self.fail_on in frames:
            raise RuntimeError("boom")
        return [{"echo": f.decode()} for f in frames]


async def test_full_batch_is_sent_without_waiting_for_the_delay() -> None:
    fake = FakeTriton()
    batcher = MicroBatcher(fake.infer, max_size=4, max_delay_s=60)
    results = await asyncio.wait_for(
        asyncio.gather(*(batcher.infer(str(i).encode()) for i in range(4))), 5
    )
    assert [r["echo"] for r in results] == ["0", "1", "2", "3"]
    assert fake.batches == [[b"0", b"1", b"2", b"3"]]
    await batcher.close()


async def test_partial_batch_is_flushed_after_the_delay() -> None:
    fake = FakeTriton()
    batcher = MicroBatcher(fake.infer, max_size=8, max_delay_s=0.01)
    result = await asyncio.wait_for(batcher.infer(b"a"), 5)
    assert result == {"echo": "a"}
    assert fake.batches == [[b"a"]]
    await batcher.close()


async def test_several_batches_in_flight_and_frames_collect_while_slots_are_busy() -> None:
    fake = FakeTriton()
    fake.gate.clear()
    batcher = MicroBatcher(fake.infer, max_size=2, max_delay_s=0, max_inflight=2)
    futures = [batcher.submit(str(i).encode()) for i in range(6)]
    while len(fake.batches) < 2:
        await asyncio.sleep(0)  # yield until the dispatcher has used both slots
    assert fake.peak == 2
    fake.gate.set()
    results = await asyncio.wait_for(asyncio.gather(*futures), 5)
    assert [r["echo"] for r in results] == [str(i) for i in range(6)]
    assert sum(len(b) for b in fake.batches) == 6
    await batcher.close()


async def test_error_reaches_only_the_callers_of_that_batch() -> None:
    fake = FakeTriton()
    fake.fail_on = b"bad"
    batcher = MicroBatcher(fake.infer, max_size=2, max_delay_s=0.01)
    first = [batcher.submit(b"bad"), batcher.submit(b"x")]
    await asyncio.gather(*first, return_exceptions=True)
    second = await asyncio.wait_for(batcher.infer(b"ok"), 5)
    for f in first:
        with pytest.raises(RuntimeError, match="boom"):
            f.result()
    assert second == {"echo": "ok"}
    await batcher.close()


async def test_cancelled_frames_are_not_sent() -> None:
    fake = FakeTriton()
    batcher = MicroBatcher(fake.infer, max_size=8, max_delay_s=0.05)
    gone = batcher.submit(b"gone")
    gone.cancel()
    assert await asyncio.wait_for(batcher.infer(b"kept"), 5) == {"echo": "kept"}
    assert fake.batches == [[b"kept"]]
    await batcher.close()


async def test_closed_batcher_rejects_and_fails_queued_frames() -> None:
    fake = FakeTriton()
    batcher = MicroBatcher(fake.infer, max_size=8, max_delay_s=60)
    queued = batcher.submit(b"waiting")
    await batcher.close()
    with pytest.raises(BatcherClosed):
        queued.result()
    with pytest.raises(BatcherClosed):
        batcher.submit(b"late")


def _held(**limits) -> tuple[FakeTriton, MicroBatcher]:
    """A batcher over a fake Triton that holds every batch until `fake.gate` is set."""
    fake = FakeTriton()
    fake.gate.clear()
    return fake, MicroBatcher(fake.infer, **limits)


async def _until(condition, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.001)


async def test_live_frame_expires_unsent_while_triton_is_busy() -> None:
    fake, batcher = _held(max_size=1, max_delay_s=0, max_inflight=1, latency_budget_s=0.05)
    busy = batcher.submit(b"busy", received=time.monotonic())
    await _until(lambda: fake.batches)
    live = batcher.submit(b"live", received=time.monotonic())
    job = batcher.submit(b"job")  # no arrival time: a video job's frame never expires
    with pytest.raises(FrameExpired):
        await asyncio.wait_for(live, 5)  # failed while Triton was still busy, not after
    assert fake.batches == [[b"busy"]] and not job.done()
    fake.gate.set()
    assert (await asyncio.wait_for(busy, 5))["echo"] == "busy"
    assert (await asyncio.wait_for(job, 5))["echo"] == "job"
    assert fake.batches == [[b"busy"], [b"job"]]  # the expired frame cost no inference
    await batcher.close()


async def test_with_room_a_late_live_frame_is_still_sent() -> None:
    # A budget below what the hardware can do must give late results, not none.
    fake = FakeTriton()
    batcher = MicroBatcher(fake.infer, max_size=4, max_delay_s=0, latency_budget_s=0.001)
    result = await asyncio.wait_for(batcher.infer(b"old", received=time.monotonic() - 10), 5)
    assert result == {"echo": "old"}
    await batcher.close()


async def test_window_limits_every_frame_at_triton() -> None:
    fake, batcher = _held(max_size=4, max_delay_s=0, max_inflight=2, latency_budget_s=60)
    assert batcher.budget is not None and batcher.budget.max_window == 8  # size x inflight
    assert batcher.budget.window == 2  # slow start: one frame per slot
    batcher.budget.window = 1
    live = [batcher.submit(str(i).encode(), received=time.monotonic()) for i in range(3)]
    jobs = [batcher.submit(f"j{i}".encode()) for i in range(3)]
    await _until(lambda: fake.batches)
    for _ in range(20):
        await asyncio.sleep(0)  # give the dispatcher every chance to send more
    # One frame at Triton (a job's or the newest live one: they take turns); a slot is free, the
    # window is not. Job frames are held to it too: a big job batch would hold the cores while
    # live frames expire.
    assert fake.batches in ([[b"2"]], [[b"j0"]])
    batcher.budget.slow_start = False
    fake.gate.set()
    await asyncio.wait_for(asyncio.gather(*live, *jobs), 5)
    assert sorted(f for b in fake.batches for f in b) == sorted(
        [b"0", b"1", b"2", b"j0", b"j1", b"j2"]
    )
    await batcher.close()


async def test_frames_left_after_the_window_shrinks_are_still_sent() -> None:
    # The window closes in while the dispatcher waits for a batch to fill; no frame arrives
    # after that. What is left queued must still go, not wait for the next arrival.
    fake = FakeTriton()
    batcher = MicroBatcher(
        fake.infer, max_size=8, max_delay_s=0.05, max_inflight=1, latency_budget_s=60
    )
    assert batcher.budget is not None
    batcher.budget.window = 4
    frames = [batcher.submit(str(i).encode(), received=time.monotonic()) for i in range(3)]
    for _ in range(5):
        await asyncio.sleep(0)  # let the dispatcher start waiting for a fourth frame
    assert not fake.batches
    batcher.budget.window = 2  # as a late round trip would shrink it
    results = await asyncio.wait_for(asyncio.gather(*frames), 5)
    assert len(results) == 3 and len(fake.batches[0]) == 2
    await batcher.close()


async def test_one_frame_batches_alternate_between_jobs_and_live_frames() -> None:
    fake, batcher = _held(max_size=1, max_delay_s=0, max_inflight=1, latency_budget_s=60)
    first = batcher.submit(b"first")
    await _until(lambda: fake.batches)
    jobs = [batcher.submit(f"j{i}".encode()) for i in range(4)]
    live = [batcher.submit(f"l{i}".encode(), received=time.monotonic()) for i in range(2)]
    fake.gate.set()
    await asyncio.wait_for(asyncio.gather(first, *jobs, *live), 5)
    order = [b[0] for b in fake.batches[1:]]
    assert order[:4] in ([b"j0", b"l1", b"j1", b"l0"], [b"l1", b"j0", b"l0", b"j1"])
    await batcher.close()


async def test_without_a_budget_batches_fill_until_the_delay_as_before() -> None:
    fake = FakeTriton()
    fake.gate.clear()
    batcher = MicroBatcher(fake.infer, max_size=2, max_delay_s=0.2, max_inflight=1)
    first = batcher.submit(b"A")
    await _until(lambda: fake.batches)  # A waited the delay alone, then went
    waiting = batcher.submit(b"B")
    for _ in range(20):
        await asyncio.sleep(0)
    fake.gate.set()  # the slot frees while B is alone: B still waits for a partner or the delay
    late = batcher.submit(b"C")
    await asyncio.wait_for(asyncio.gather(first, waiting, late), 5)
    assert fake.batches == [[b"A"], [b"B", b"C"]]
    await batcher.close()


async def test_live_frames_go_newest_first_and_job_frames_are_not_starved() -> None:
    fake, batcher = _held(max_size=2, max_delay_s=0, max_inflight=1, latency_budget_s=60)
    first = batcher.submit(b"first", received=time.monotonic())
    await _until(lambda: fake.batches)
    now = time.monotonic()
    job = batcher.submit(b"job")
    waiting = [batcher.submit(f"live{i}".encode(), received=now + i) for i in range(3)]
    fake.gate.set()
    await asyncio.wait_for(asyncio.gather(first, job, *waiting), 5)
    # The job frame got a place in the very next batch; live frames newest first.
    assert fake.batches[1] == [b"job", b"live2"]
    assert fake.batches[2:] == [[b"live1", b"live0"]]
    await batcher.close()


async def test_one_request_per_frame_setups_stay_under_the_budget_window() -> None:
    # BATCH_MAX_SIZE=1 with hundreds of slots must not make the window's floor hundreds of frames.
    batcher = MicroBatcher(
        FakeTriton().infer, max_size=1, max_delay_s=0, max_inflight=256, latency_budget_s=0.1
    )
    assert batcher.budget is not None
    assert batcher.budget.max_window == 256 and batcher.budget.min_window == 4
    await batcher.close()


def test_invalid_limits_are_rejected() -> None:
    with pytest.raises(ValueError):
        MicroBatcher(FakeTriton().infer, max_size=0)


async def test_one_batch_is_handed_over_once_the_oldest_is_near_its_end() -> None:
    # The model instance the oldest batch frees should find the next one queued, not idle
    # through the gateway's turnaround. Round trips of 0.1 ms: the hand-over point is long past.
    fake, batcher = _held(max_size=1, max_delay_s=0, max_inflight=1, latency_budget_s=60)
    assert batcher.budget is not None
    batcher.budget.smoothed_s = 0.0001
    first = batcher.submit(b"first", received=time.monotonic())
    await _until(lambda: fake.batches)
    second = batcher.submit(b"second", received=time.monotonic())
    third = batcher.submit(b"third", received=time.monotonic())
    await _until(lambda: len(fake.batches) == 2)
    assert fake.active == 2  # handed over while the first was still at Triton
    for _ in range(20):
        await asyncio.sleep(0)  # give the dispatcher every chance to send more
    assert len(fake.batches) == 2  # never more than one beyond max_inflight
    fake.gate.set()
    await asyncio.wait_for(asyncio.gather(first, second, third), 5)
    await batcher.close()


async def test_no_hand_over_before_the_oldest_is_near_its_end() -> None:
    # Sent earlier, a frame would wait behind a whole model run at Triton.
    fake, batcher = _held(max_size=1, max_delay_s=0, max_inflight=1, latency_budget_s=60)
    assert batcher.budget is not None
    batcher.budget.smoothed_s = 3600.0  # the oldest batch is nowhere near its end
    first = batcher.submit(b"first", received=time.monotonic())
    await _until(lambda: fake.batches)
    second = batcher.submit(b"second", received=time.monotonic())
    for _ in range(20):
        await asyncio.sleep(0)  # give the dispatcher every chance to send it
    assert fake.batches == [[b"first"]]
    fake.gate.set()
    await asyncio.wait_for(asyncio.gather(first, second), 5)
    await batcher.close()


async def test_without_hand_over_batches_never_exceed_max_inflight() -> None:
    fake = FakeTriton()
    fake.gate.clear()
    batcher = MicroBatcher(
        fake.infer, max_size=1, max_delay_s=0, max_inflight=1, latency_budget_s=60, handover=0
    )
    assert batcher.budget is not None
    batcher.budget.smoothed_s = 0.0  # the would-be hand-over point is now
    frames = [batcher.submit(str(i).encode(), received=time.monotonic()) for i in range(2)]
    await _until(lambda: fake.batches)
    for _ in range(20):
        await asyncio.sleep(0)  # give the dispatcher every chance to send more
    assert fake.batches == [[b"1"]] and fake.peak == 1
    fake.gate.set()
    await asyncio.wait_for(asyncio.gather(*frames), 5)
    await batcher.close()
