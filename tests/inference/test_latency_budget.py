"""LatencyBudget: the adaptive window and the round-trip allowance that decides expiry."""

from __future__ import annotations

import pytest

from api.inference.latency_budget import DECREASE, LatencyBudget


def test_window_slow_starts_from_its_floor_then_grows_one_at_a_time() -> None:
    budget = LatencyBudget(budget_s=0.1, max_window=32, min_window=2)
    assert budget.window == 2  # a cold server gets no burst
    for k, expected in enumerate((4, 8, 16, 32, 32)):
        budget.observe(0.01, sent_at=k * 0.1, window_full=True)
        assert budget.window == expected
    budget.observe(0.5, sent_at=1.0, window_full=True)  # the first late round trip
    assert budget.window == 24 and not budget.slow_start
    for k in range(30):  # in time again: smoothed back under target, then +1 per full window
        budget.observe(0.001, sent_at=3.0 + k * 0.1, window_full=True)
    assert 24 < budget.window <= 32
    assert budget.window < 24 + 30


def test_window_shrinks_once_per_late_episode() -> None:
    budget = LatencyBudget(budget_s=0.1, max_window=16)
    budget.window = 16
    assert budget.round_trip_target_s == pytest.approx(0.05)
    budget.observe(0.2, sent_at=1.0, window_full=True)  # late: 200 ms > 50 ms
    assert budget.window == int(16 * DECREASE) == 12
    # A batch sent before that cut was sized under the old window: no second cut for it.
    budget.observe(0.2, sent_at=1.1, window_full=True)
    assert budget.window == 12
    # One sent after the cut (at 1.0 + 0.2) that is late again cuts again.
    budget.observe(0.2, sent_at=1.25, window_full=True)
    assert budget.window == 9


def test_window_grows_only_when_it_was_the_limit_and_never_past_max_or_below_one() -> None:
    budget = LatencyBudget(budget_s=0.1, max_window=3)
    budget.slow_start = False
    budget.window = 1
    budget.observe(0.01, sent_at=0.0, window_full=False)
    assert budget.window == 1  # in time, but the window was not what held frames back
    budget.observe(0.01, sent_at=0.1, window_full=True)
    budget.observe(0.01, sent_at=0.2, window_full=True)
    budget.observe(0.01, sent_at=0.3, window_full=True)
    assert budget.window == 3
    for k in range(10):
        budget.observe(1.0, sent_at=10.0 + 2 * k, window_full=True)
    assert budget.window == 1


def test_expiry_allows_for_a_conservative_round_trip() -> None:
    budget = LatencyBudget(budget_s=0.2, max_window=8)
    assert budget.deadline(5.0) == pytest.approx(5.2)
    assert budget.send_by(5.2) == pytest.approx(5.2)  # no round trip seen yet
    budget.observe(0.04, sent_at=0.0, window_full=False)
    budget.observe(0.02, sent_at=0.1, window_full=False)
    # smoothed = 0.04 + 0.25 * (0.02 - 0.04) = 0.035; deviation = 0.02 + 0.25 * (0.02 - 0.02)
    assert budget.smoothed_s == pytest.approx(0.035)
    assert budget.round_trip_allowance_s == pytest.approx(0.035 + 2 * 0.02)
    assert budget.send_by(5.2) == pytest.approx(5.2 - 0.075)
    budget.observe(0.5, sent_at=0.2, window_full=False)  # a noisy round trip
    assert budget.round_trip_allowance_s > 0.2
    assert budget.send_by(5.2) == pytest.approx(5.1)  # frames may still wait half the budget


@pytest.mark.parametrize(
    "kwargs", [{"budget_s": 0, "max_window": 1}, {"budget_s": 1, "max_window": 0}]
)
def test_invalid_budget_is_rejected(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        LatencyBudget(**kwargs)


def test_one_slow_batch_among_fast_ones_does_not_cut_the_window() -> None:
    budget = LatencyBudget(budget_s=0.1, max_window=8)
    budget.window = 8
    for k in range(10):
        budget.observe(0.02, sent_at=k * 0.1, window_full=False)
    budget.observe(0.09, sent_at=1.0, window_full=False)  # one outlier over the 50 ms target
    assert budget.window == 8
    for k in range(10):  # a lasting slowdown does
        budget.observe(0.09, sent_at=2.0 + k * 0.2, window_full=False)
    assert budget.window < 8


def test_window_never_drops_below_one_frame_per_batch_slot() -> None:
    budget = LatencyBudget(budget_s=0.1, max_window=16, min_window=2)
    for k in range(20):
        budget.observe(1.0, sent_at=k * 2.0, window_full=True)
    assert budget.window == 2
    with pytest.raises(ValueError):
        LatencyBudget(budget_s=0.1, max_window=2, min_window=3)


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({}, 0.08),  # the default: 80 ms
        ({"role": "stream", "stream_latency_budget_ms": 150}, 0.15),
        ({"stream_latency_budget_ms": 0}, None),  # off
        ({"role": "jobs"}, None),  # nothing live to protect: jobs keep full batches
        ({"streaming_router": False}, None),
    ],
)
def test_budget_applies_only_where_frames_are_streamed(settings: dict, expected) -> None:
    from api.core.config import Settings
    from api.inference.service import _latency_budget_s

    assert _latency_budget_s(Settings(**settings)) == expected
