"""Drain (api/core/shutdown.py): begun once, the `framegate_draining` gauge, and the deadlines of
the drain's steps inside SHUTDOWN_TIMEOUT_S: answering frames first, then closing sessions and
jobs, with a reserve kept for uvicorn's own shutdown."""

from __future__ import annotations

import time

import pytest
from prometheus_client import REGISTRY

from api.core.shutdown import MAX_RESERVE_S, Drain


def draining_gauge() -> float | None:
    return REGISTRY.get_sample_value("framegate_draining")


def test_a_new_drain_has_not_begun_and_clears_the_gauge() -> None:
    Drain(5.0).begin()  # a drain of an earlier app in this process left the gauge at 1
    drain = Drain(5.0)

    assert drain.draining is False and drain.started is None
    assert draining_gauge() == 0


def test_begin_starts_it_once() -> None:
    drain = Drain(5.0)
    before = time.monotonic()

    assert drain.begin() is True
    started = drain.started
    assert drain.begin() is False  # SIGTERM, then the lifespan's end: the second does nothing

    assert drain.draining is True and draining_gauge() == 1
    assert started is not None and started >= before and drain.started == started


@pytest.mark.parametrize("missing", ["answer_by", "closed_by", "deadline", "elapsed_s"])
def test_deadlines_before_it_begins_are_a_clear_error(missing: str) -> None:
    with pytest.raises(RuntimeError, match="expected a drain in progress, none has begun"):
        getattr(Drain(5.0), missing)


@pytest.mark.parametrize("timeout_s", [0.0, -1.0])
def test_the_timeout_must_be_positive(timeout_s: float) -> None:
    with pytest.raises(ValueError, match=f"timeout_s must be > 0, got {timeout_s}"):
        Drain(timeout_s)


@pytest.mark.parametrize(
    ("timeout_s", "reserve_s"),
    [
        (10.0, MAX_RESERVE_S),  # the default SHUTDOWN_TIMEOUT_S: capped at 2 s
        (4.0, 1.0),  # a quarter of a short timeout
        (0.4, 0.1),
    ],
)
def test_the_steps_fit_inside_the_timeout_in_order(timeout_s: float, reserve_s: float) -> None:
    drain = Drain(timeout_s)
    drain.begin()
    started = drain.started
    assert started is not None

    assert drain.reserve_s == pytest.approx(reserve_s)
    assert drain.answer_by == pytest.approx(started + timeout_s - reserve_s)
    assert drain.closed_by == pytest.approx(started + timeout_s - reserve_s / 2)
    assert drain.deadline == pytest.approx(started + timeout_s)
    assert started < drain.answer_by < drain.closed_by < drain.deadline
