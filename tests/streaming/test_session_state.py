"""StreamSession's lifecycle: open → finishing (drain) → terminated → closed, checked; a call its
state does not allow raises an error naming the states."""

from __future__ import annotations

import pytest

from api.streaming.protocol import ErrorCode, StreamError
from api.streaming.session import SessionState, SessionStateError, StreamSession, Termination
from tests.support.fakes import Harness, settle

BYE = Termination(1012, "server shutting down")


def _session() -> tuple[StreamSession, Harness]:
    h = Harness()
    return StreamSession("yolo", h.infer, h.send), h


async def test_a_session_starts_open_and_closes_through_terminated() -> None:
    session, _ = _session()
    assert session.lifecycle is SessionState.OPEN
    session.terminate(BYE)
    assert session.lifecycle is SessionState.TERMINATED
    await session.aclose()
    assert session.lifecycle is SessionState.CLOSED
    assert session.terminated.result() is BYE


async def test_the_first_reason_wins() -> None:
    session, _ = _session()
    session.fail(StreamError(ErrorCode.PIPELINE_FAILURE, "pipeline failed"))
    session.terminate(BYE)
    assert session.terminated.result().error is not None
    assert session.lifecycle is SessionState.TERMINATED


async def test_finishing_admits_no_new_inference() -> None:
    session, h = _session()
    await session.finish(timeout_s=0.0)
    assert session.lifecycle is SessionState.FINISHING
    await session.offer(b"late")
    await settle()
    assert h.calls == []
    assert h.sent == [{"frame_index": 0, "dropped": True}]


async def test_a_terminated_session_starts_no_inference() -> None:
    session, h = _session()
    session.terminate(BYE)
    await session.offer(b"after the end")
    await settle()
    assert h.calls == []
    assert h.sent == []  # nothing is sent once a reason to close is set


async def test_offer_after_close_names_the_state() -> None:
    session, _ = _session()
    await session.aclose()
    with pytest.raises(SessionStateError, match=r"offer\(\) after it was closed"):
        await session.offer(b"frame")


async def test_an_illegal_transition_names_both_states() -> None:
    session, _ = _session()
    await session.aclose()
    with pytest.raises(SessionStateError, match="cannot go from closed to open"):
        session._move(SessionState.OPEN)


async def test_draining_an_ended_session_changes_nothing() -> None:
    session, _ = _session()
    session.terminate(BYE)
    await session.finish(timeout_s=0.0)
    assert session.lifecycle is SessionState.TERMINATED
