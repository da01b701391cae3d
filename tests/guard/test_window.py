"""The sliding window: increases over a span, per gateway, never negative across restarts."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from api.guard.samples import Sample
from api.guard.window import Window

# One step of one gateway: frames received since the last scrape, and whether the process
# restarted just before this scrape (its counters began again at zero).
steps = st.lists(st.tuples(st.integers(0, 500), st.booleans()), min_size=1, max_size=40)


def play(steps: list[tuple[int, bool]], with_start_time: bool) -> tuple[Window, int]:
    """Feed a gateway's scrapes, one per second; the true number of frames after the first."""
    window = Window(keep_s=1_000)
    value, started, true_total = 0, 0.0, 0
    window.add(0.0, {"pod": Sample(received=0, started_at=started if with_start_time else None)})
    for t, (frames, restarted) in enumerate(steps, start=1):
        if restarted:
            value, started = 0, float(t)
        value += frames
        true_total += frames
        sample = Sample(received=value, started_at=started if with_start_time else None)
        window.add(float(t), {"pod": sample})
    return window, true_total


@given(steps)
def test_restarts_with_a_start_time_are_counted_exactly(steps: list[tuple[int, bool]]) -> None:
    window, true_total = play(steps, with_start_time=True)
    totals = window.totals(float(len(steps)), span_s=1_000)
    assert totals.counts.received == true_total


@given(steps)
def test_without_a_start_time_restarts_never_give_negative_or_inflated_counts(
    steps: list[tuple[int, bool]],
) -> None:
    window, true_total = play(steps, with_start_time=False)
    received = window.totals(float(len(steps)), span_s=1_000).counts.received
    assert 0 <= received <= true_total


@given(steps, st.integers(1, 40))
def test_a_span_counts_only_the_steps_inside_it(steps: list[tuple[int, bool]], span: int) -> None:
    window, _ = play(steps, with_start_time=True)
    now = float(len(steps))
    inside = sum(frames for t, (frames, _) in enumerate(steps, start=1) if t > now - span)
    totals = window.totals(now, span_s=span)
    assert totals.counts.received == inside
    assert totals.span_s == min(span, now)


def test_gateways_are_summed_and_a_new_one_counts_from_its_second_scrape() -> None:
    window = Window(keep_s=60)
    window.add(0.0, {"a": Sample(received=100)})
    window.add(1.0, {"a": Sample(received=150), "b": Sample(received=7_000)})
    window.add(2.0, {"a": Sample(received=200), "b": Sample(received=7_010)})
    assert window.totals(2.0, 60).counts.received == 110


def test_a_gateway_missing_from_a_round_is_compared_with_its_last_scrape() -> None:
    window = Window(keep_s=60)
    window.add(0.0, {"a": Sample(received=0), "b": Sample(received=0)})
    window.add(1.0, {"a": Sample(received=10)})  # b's scrape failed
    window.add(2.0, {"a": Sample(received=20), "b": Sample(received=30)})
    assert window.totals(2.0, 60).counts.received == 50


def test_a_gateway_gone_for_the_whole_window_is_forgotten() -> None:
    window = Window(keep_s=10)
    window.add(0.0, {"a": Sample(received=0), "gone": Sample(received=0)})
    window.add(1.0, {"a": Sample(received=5), "gone": Sample(received=5)})
    for t in range(2, 14):
        window.add(float(t), {"a": Sample(received=5 * t)})
    assert window.sources == 1
