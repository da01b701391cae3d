"""Signals as pure functions of window totals; breaches and when they become trips."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.guard.samples import Sample
from api.guard.signals import (
    Breaches,
    Signal,
    Thresholds,
    error_ratio,
    evaluate,
    expiry_ratio,
    histogram_quantile,
    p99_ms,
)
from api.guard.window import Totals

BOUNDS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, math.inf)
TH = Thresholds()


def totals(span_s: float = 30.0, **counts: object) -> Totals:
    return Totals(span_s, Sample(**counts))  # type: ignore[arg-type]


def cumulative(counts: list[int]) -> tuple[tuple[float, float], ...]:
    running, out = 0, []
    for bound, n in zip(BOUNDS, counts, strict=True):
        running += n
        out.append((bound, float(running)))
    return tuple(out)


def readings(window: Totals, stall: Totals | None = None, th: Thresholds = TH) -> dict:
    verdict = evaluate(window, stall or totals(0.0), th)
    return {r.signal: r for r in verdict.readings}


bucket_counts = st.lists(st.integers(0, 1_000), min_size=len(BOUNDS), max_size=len(BOUNDS))


@given(bucket_counts, st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_quantile_is_monotone_and_within_the_finite_bounds(
    counts: list[int], q1: float, q2: float
) -> None:
    buckets = cumulative(counts)
    low, high = histogram_quantile(min(q1, q2), buckets), histogram_quantile(max(q1, q2), buckets)
    if sum(counts) == 0:
        assert low is None and high is None
        return
    assert low is not None and high is not None
    assert 0.0 <= low <= high <= BOUNDS[-2]


def test_quantile_interpolates_inside_the_bucket_like_prometheus() -> None:
    # 100 observations, 90 under 50 ms and 10 between 50 and 100 ms: p99 at 9/10 of that bucket.
    buckets = cumulative([0, 0, 90, 10, 0, 0, 0, 0, 0, 0, 0])
    assert histogram_quantile(0.99, buckets) == pytest.approx(0.095)
    assert p99_ms(totals(latency_buckets=buckets)) == pytest.approx(95.0)


def test_quantile_in_the_inf_bucket_is_the_highest_finite_bound() -> None:
    assert histogram_quantile(0.99, cumulative([0] * 10 + [5])) == 6.4


def test_error_ratio_counts_server_failures_over_frames_received() -> None:
    window = totals(received=1_000, processed=900, server_errors=3, frame_failures=27)
    assert error_ratio(window) == pytest.approx(0.03)
    assert error_ratio(totals(received=0)) is None


def test_expiry_ratio_ignores_frames_dropped_for_client_overload() -> None:
    # 1000 frames, 600 processed: 400 dropped, of which only 50 by the latency budget.
    assert expiry_ratio(totals(received=1_000, processed=600, expired=50)) == 0.05


counts = st.integers(0, 10_000)


@given(counts, counts, counts, counts, counts, bucket_counts)
def test_an_idle_window_is_never_judged(
    received: int, processed: int, expired: int, errors: int, failures: int, lat: list[int]
) -> None:
    th = Thresholds(min_frames=received + 1)
    window = totals(
        received=received,
        processed=processed,
        expired=expired,
        server_errors=errors,
        frame_failures=failures,
        latency_buckets=cumulative(lat),
    )
    verdict = evaluate(window, totals(span_s=th.stall_s, received=received), th)
    assert not verdict.judged
    assert verdict.breached == ()


def test_each_ratio_breaches_only_above_its_threshold() -> None:
    th = Thresholds(max_error_ratio=0.05, max_expiry_ratio=0.5)
    at = readings(totals(received=1_000, frame_failures=50, expired=500), th=th)
    assert not at[Signal.ERROR_RATIO].breached and not at[Signal.EXPIRY_RATIO].breached
    over = readings(totals(received=1_000, frame_failures=51, expired=501), th=th)
    assert over[Signal.ERROR_RATIO].breached and over[Signal.EXPIRY_RATIO].breached
    assert over[Signal.ERROR_RATIO].value == pytest.approx(0.051)


def test_overload_expiries_stay_under_the_default_expiry_threshold() -> None:
    # At 2x saturation (measured): 91 % of the frames expired, 6 % processed.
    overload = readings(totals(received=1_584, processed=97, expired=1_441))
    assert not overload[Signal.EXPIRY_RATIO].breached


def test_p99_breaches_above_max_p99_ms() -> None:
    slow = cumulative([0, 0, 0, 0, 0, 0, 0, 0, 0, 100, 0])  # all between 3.2 and 6.4 s
    r = readings(totals(received=100, processed=100, latency_buckets=slow))[Signal.P99_MS]
    assert r.breached and r.value is not None and r.value > TH.max_p99_ms


def test_stall_needs_frames_arriving_no_results_and_the_whole_span_covered() -> None:
    window = totals(received=500, processed=400)
    stalled = totals(span_s=TH.stall_s, received=40, processed=0)
    assert readings(window, stalled)[Signal.STALL].breached
    assert readings(window, stalled)[Signal.STALL].value == TH.stall_s
    short = totals(span_s=TH.stall_s - 1, received=40, processed=0)
    assert not readings(window, short)[Signal.STALL].breached  # the guard just started
    idle = totals(span_s=TH.stall_s, received=0, processed=0)
    assert not readings(window, idle)[Signal.STALL].breached  # nothing arrives: not a stall
    slow = totals(span_s=TH.stall_s, received=40, processed=1)
    assert not readings(window, slow)[Signal.STALL].breached  # slow, but results go out


bad = totals(received=1_000, processed=1_000, frame_failures=100)
good = totals(received=1_000, processed=1_000)


@given(st.lists(st.tuples(st.booleans(), st.floats(0.1, 5.0)), min_size=1, max_size=60))
def test_a_trip_needs_a_breach_that_lasted_for_s_without_a_gap(
    rounds: list[tuple[bool, float]],
) -> None:
    breaches = Breaches(for_s=TH.for_s)
    now, since = 0.0, None
    for breached, step in rounds:
        now += step
        since = (since if since is not None else now) if breached else None
        due = breaches.update(evaluate(bad if breached else good, totals(0.0), TH), now)
        expected = since is not None and now - since >= TH.for_s
        assert bool(due) is expected
        if due:
            assert [r.signal for r in due] == [Signal.ERROR_RATIO]


def test_stall_trips_at_once_its_duration_is_already_in_its_value() -> None:
    stalled = totals(span_s=TH.stall_s, received=40, processed=0)
    due = Breaches(for_s=TH.for_s).update(evaluate(good, stalled, TH), now=1.0)
    assert [r.signal for r in due] == [Signal.STALL]
