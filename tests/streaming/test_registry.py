"""SessionRegistry: the STREAM_MAX_SESSIONS limit, the active-sessions gauge, the kill switch's
terminate_all and the graceful drain (frames answered, then 1012), with real sessions fed by a
test harness (no socket, no Triton)."""

from __future__ import annotations

import asyncio
import time

from prometheus_client import REGISTRY

from api.streaming import protocol
from api.streaming.registry import SHUTTING_DOWN, SessionRegistry
from api.streaming.session import StreamSession, Termination
from tests.support.fakes import JPEG, Harness, settle

WAIT_S = 10.0  # deadline for conditions that are not latency assertions
ACTIVE = "framegate_stream_sessions_active"


def session(harness: Harness | None = None) -> StreamSession:
    harness = harness or Harness()
    return StreamSession("yolo", harness.infer, harness.send)


def active() -> float | None:
    return REGISTRY.get_sample_value(ACTIVE)


async def release_when_terminated(registry: SessionRegistry, session: StreamSession) -> None:
    """What the router does for each session: close it once told to, then let it go."""
    await session.terminated
    await session.aclose()
    registry.remove(session)


async def test_try_add_refuses_beyond_the_limit() -> None:
    registry = SessionRegistry(2)
    first, second, third = session(), session(), session()

    assert registry.try_add(first) and registry.try_add(second)
    assert not registry.try_add(third)
    assert len(registry) == 2
    assert list(registry) == [first, second]


async def test_remove_frees_a_slot_and_unknown_sessions_are_ignored() -> None:
    registry = SessionRegistry(1)
    first, second = session(), session()
    assert registry.try_add(first)

    registry.remove(second)  # never added: nothing happens
    assert len(registry) == 1 and not registry.try_add(second)
    registry.remove(first)
    registry.remove(first)  # twice: the router's finally may run after a drain removed it
    assert len(registry) == 0
    assert registry.try_add(second)


async def test_the_active_sessions_gauge_follows_adds_and_removes() -> None:
    registry = SessionRegistry(4)
    sessions = [session() for _ in range(3)]
    for s in sessions:
        registry.try_add(s)
    assert active() == 3
    assert registry.try_add(session())
    assert not registry.try_add(session())  # refused: the gauge stays at the limit
    assert active() == 4
    for s in sessions:
        registry.remove(s)
    assert active() == 1


async def test_iteration_is_a_snapshot_so_sessions_may_leave_meanwhile() -> None:
    registry = SessionRegistry(3)
    sessions = [session() for _ in range(3)]
    for s in sessions:
        registry.try_add(s)

    seen = []
    for s in registry:
        registry.remove(s)  # a dict iterated directly would raise here
        seen.append(s)

    assert seen == sessions and len(registry) == 0


async def test_terminate_all_gives_every_live_session_the_same_reason() -> None:
    registry = SessionRegistry(3)
    sessions = [session() for _ in range(3)]
    for s in sessions:
        registry.try_add(s)
    earlier = Termination(protocol.WS_1000_NORMAL_CLOSURE, "idle")
    sessions[0].terminate(earlier)  # already closing: the first reason wins

    registry.terminate_all(SHUTTING_DOWN)

    assert [s.terminated.result() for s in sessions] == [earlier, SHUTTING_DOWN, SHUTTING_DOWN]
    assert SHUTTING_DOWN.close_code == protocol.WS_1012_SERVICE_RESTART
    assert SHUTTING_DOWN.reason == protocol.SHUTDOWN_REASON and SHUTTING_DOWN.error is None


async def test_drain_answers_admitted_frames_then_closes_with_1012() -> None:
    registry = SessionRegistry(2)
    harness = Harness()
    live = session(harness)
    registry.try_add(live)
    assert await live.offer(JPEG) == 0  # at inference
    assert await live.offer(JPEG) == 1  # waiting in the mailbox
    router = asyncio.create_task(release_when_terminated(registry, live))

    now = time.monotonic()
    drain = asyncio.create_task(registry.drain(now + WAIT_S, now + WAIT_S))
    await settle()
    assert not live.terminated.done()  # frame 0 is still owed its result
    harness.finish(0)
    left = await asyncio.wait_for(drain, WAIT_S)
    await router

    assert left == 0 and len(registry) == 0
    assert harness.sent[0] == {"frame_index": 1, "dropped": True}  # never sent to inference
    assert harness.sent[1]["frame_index"] == 0 and harness.sent[1]["result"]["call"] == 0
    assert live.terminated.result() == SHUTTING_DOWN
    assert len(harness.calls) == 1


async def test_drain_answers_dropped_what_inference_did_not_return_in_time() -> None:
    registry = SessionRegistry(1)
    harness = Harness()
    live = session(harness)
    registry.try_add(live)
    await live.offer(JPEG)
    now = time.monotonic()
    router = asyncio.create_task(release_when_terminated(registry, live))

    left = await asyncio.wait_for(registry.drain(now, now + WAIT_S), WAIT_S)  # answer_by passed
    await router

    assert left == 0
    assert harness.sent == [{"frame_index": 0, "dropped": True}]
    assert live.terminated.result() == SHUTTING_DOWN


async def test_drain_returns_how_many_sessions_were_not_let_go_by_closed_by() -> None:
    registry = SessionRegistry(3)
    sessions = [session() for _ in range(3)]
    for s in sessions:
        registry.try_add(s)
    now = time.monotonic()

    # No router lets them go, and closed_by is already here: all three are still open.
    left = await asyncio.wait_for(registry.drain(now, now), WAIT_S)

    assert left == 3 == len(registry)
    assert all(s.terminated.result() == SHUTTING_DOWN for s in sessions)


async def test_drain_of_an_empty_registry_returns_at_once() -> None:
    now = time.monotonic()
    assert await asyncio.wait_for(SessionRegistry(1).drain(now, now + 3600), WAIT_S) == 0
