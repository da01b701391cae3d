"""StreamSession admission and ordering with a fake inference boundary."""

from __future__ import annotations

import asyncio

from prometheus_client import REGISTRY

from api.inference.errors import FrameExpired, InferenceUnavailable, PipelineFailure
from api.streaming.protocol import ErrorCode
from api.streaming.session import SessionLimits, StreamSession
from tests.support.fakes import Harness, settle


async def test_newer_frame_replaces_the_waiting_one_before_any_inference() -> None:
    h = Harness()
    session = StreamSession("yolo", h.infer, h.send, SessionLimits(max_inflight=1))
    for i in range(4):
        assert await session.offer(f"f{i}".encode()) == i
    await settle()
    assert h.calls == [b"f0"]  # only the first reached inference
    assert [m for m in h.sent if "dropped" in m] == [
        {"frame_index": 1, "dropped": True},
        {"frame_index": 2, "dropped": True},
    ]
    h.finish(0)
    await settle()
    assert h.calls == [b"f0", b"f3"]  # the mailbox frame (newest) went next
    h.finish(1)
    await settle()
    results = [m["frame_index"] for m in h.sent if "result" in m]
    assert results == [0, 3]
    assert session.received == 4 and session.processed == 2 and session.dropped == 2
    await session.aclose()


async def test_results_go_out_in_frame_order_with_several_in_flight() -> None:
    h = Harness()
    session = StreamSession("yolo", h.infer, h.send, SessionLimits(max_inflight=3))
    for i in range(3):
        await session.offer(bytes([i]))
    await settle()
    h.finish(2)
    h.finish(1)
    await settle()
    assert not [m for m in h.sent if "result" in m]  # frame 0 still running: hold 1 and 2
    h.finish(0)
    await settle()
    assert [m["frame_index"] for m in h.sent if "result" in m] == [0, 1, 2]
    await session.aclose()


async def test_expired_frame_is_reported_dropped_and_the_mailbox_frame_goes_next() -> None:
    h = Harness()
    session = StreamSession("yolo", h.infer, h.send, SessionLimits(max_inflight=1))
    await session.offer(b"f0")
    await session.offer(b"f1")  # waits in the mailbox
    await settle()
    h.finish(0, FrameExpired("late"))
    await settle()
    replies = [m for m in h.sent if "frame_index" in m]  # (1 drop in 2 frames: slow_down too)
    assert replies == [{"frame_index": 0, "dropped": True}]
    assert h.calls == [b"f0", b"f1"]
    h.finish(1)
    await settle()
    assert [m["frame_index"] for m in h.sent if "result" in m] == [1]
    assert (session.received, session.processed, session.dropped) == (2, 1, 1)
    assert not session.terminated.done()  # an expired frame is not an error
    await session.aclose()


async def test_expiries_alone_put_the_session_in_slow_down() -> None:
    # Closed-loop clients never fill the mailbox: every drop is an expiry, counted when the
    # replies go out. The warning must still be sent.
    h = Harness()
    session = StreamSession("yolo", h.infer, h.send, SessionLimits(max_inflight=1))
    for i in range(6):
        await session.offer(bytes([i]))
        await settle()
        h.finish(i, FrameExpired("late"))
        await settle()
    warnings = [m for m in h.sent if "warning" in m]
    assert len(warnings) == 1 and warnings[0]["warning"] == "slow_down"
    assert session.dropped == 6
    await session.aclose()


async def test_expired_frame_keeps_its_place_in_the_reply_order() -> None:
    h = Harness()
    session = StreamSession("yolo", h.infer, h.send, SessionLimits(max_inflight=2))
    await session.offer(b"f0")
    await session.offer(b"f1")
    await settle()
    h.finish(1, FrameExpired("late"))
    await settle()
    assert h.sent == []  # frame 0 is still running: frame 1's reply waits for it
    h.finish(0)
    await settle()
    replies = [m for m in h.sent if "frame_index" in m]
    assert [(m["frame_index"], "dropped" in m) for m in replies] == [(0, False), (1, True)]
    await session.aclose()


async def test_slow_down_sent_once_when_critical() -> None:
    h = Harness()
    session = StreamSession("yolo", h.infer, h.send, SessionLimits(max_inflight=1))
    for i in range(20):
        await session.offer(bytes([i]))
    warnings = [m for m in h.sent if m.get("warning") == "slow_down"]
    assert len(warnings) == 1 and warnings[0]["suggested_fps"] >= 1.0
    await session.aclose()


async def test_inference_unavailable_past_the_grace_terminates_with_its_code() -> None:
    h = Harness()
    session = StreamSession("yolo", h.infer, h.send, SessionLimits(unavailable_grace_s=0))
    await session.offer(b"x")
    await settle()
    h.finish(0, InferenceUnavailable("triton down"))
    termination = await asyncio.wait_for(session.terminated, 1)
    assert termination.error is not None
    assert termination.error.code is ErrorCode.INFERENCE_UNAVAILABLE
    assert termination.close_code == 1013
    await session.aclose()


async def test_unavailable_frames_are_dropped_without_telling_the_client_to_slow_down() -> None:
    h = Harness()
    session = StreamSession("yolo", h.infer, h.send, SessionLimits(max_inflight=1))
    for i in range(6):
        await session.offer(b"x")
        await settle()
        h.finish(i, InferenceUnavailable("triton down"))
        await settle()
    assert not session.terminated.done()  # inside the grace period
    assert session.dropped == 6
    assert not [m for m in h.sent if "warning" in m]  # Triton is down; the client's rate is fine
    assert h.sent == [{"frame_index": i, "dropped": True} for i in range(6)]
    await session.aclose()


async def test_aclose_cancels_work_and_releases_frames() -> None:
    h = Harness()
    session = StreamSession("yolo", h.infer, h.send)
    await session.offer(b"a")
    await session.offer(b"b")
    await settle()
    await session.aclose()
    assert session.inflight == 0
    assert h.pending[0].cancelled()


async def test_per_frame_pipeline_failure_is_counted_as_a_frame_failure() -> None:
    def failures() -> float:
        value = REGISTRY.get_sample_value(
            "framegate_stream_frame_failures_total", {"pipeline": "guarded"}
        )
        return value or 0.0

    h = Harness()
    session = StreamSession("guarded", h.infer, h.send, SessionLimits(max_consecutive_failures=5))
    before = failures()
    for i in range(2):
        await session.offer(b"x")
        await settle()
        h.finish(i, PipelineFailure("model crashed"))
        await settle()
    assert [m["result"]["error"] for m in h.sent] == ["pipeline_failure", "pipeline_failure"]
    assert failures() - before == 2
    await session.aclose()
