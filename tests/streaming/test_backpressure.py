from __future__ import annotations

import pytest

from api.streaming.backpressure import DropWindow, PressureState, PressureTracker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_drop_rate_counts_only_the_window() -> None:
    clock = Clock()
    window = DropWindow(window_s=1.0, clock=clock)
    for _ in range(10):
        window.record_arrival()
    for _ in range(5):
        window.record_drop()
    assert window.drop_rate() == pytest.approx(0.5)
    clock.now += 1.01
    assert window.drop_rate() == 0.0  # the flood is forgotten once it leaves the window


def test_processed_fps_is_completions_over_the_window() -> None:
    clock = Clock()
    window = DropWindow(window_s=2.0, clock=clock)
    for _ in range(8):
        window.record_completion()
    assert window.processed_fps() == pytest.approx(4.0)


def test_states_follow_thresholds_and_slow_down_fires_once_per_episode() -> None:
    clock = Clock()
    tracker = PressureTracker(DropWindow(1.0, clock), warn_above=0.10, critical_above=0.30)
    window = tracker.window
    for _ in range(10):
        window.record_arrival()
    window.record_drop()
    window.record_drop()
    assert tracker.update() is False and tracker.state is PressureState.WARNING
    for _ in range(3):
        window.record_drop()
    assert tracker.update() is True and tracker.state is PressureState.CRITICAL
    window.record_arrival()
    assert tracker.update() is False  # still critical: no second slow_down
    clock.now += 2
    for _ in range(5):
        window.record_arrival()
    assert tracker.update() is False and tracker.state is PressureState.NORMAL  # re-armed
    for _ in range(5):
        window.record_drop()
    assert tracker.update() is True  # a new episode signals again


def test_warning_does_not_rearm_the_signal() -> None:
    clock = Clock()
    tracker = PressureTracker(DropWindow(1.0, clock), warn_above=0.10, critical_above=0.30)
    for _ in range(10):
        tracker.window.record_arrival()
    for _ in range(4):
        tracker.window.record_drop()
    assert tracker.update() is True
    clock.now += 1.5
    for _ in range(10):
        tracker.window.record_arrival()
    for _ in range(2):
        tracker.window.record_drop()
    assert tracker.update() is False and tracker.state is PressureState.WARNING
    for _ in range(3):
        tracker.window.record_drop()
    assert tracker.update() is False  # hovering around the line after warning: still quiet


def test_suggested_fps_is_never_zero() -> None:
    tracker = PressureTracker(DropWindow(1.0, Clock()), 0.1, 0.3)
    assert tracker.suggested_fps() == 1.0


def test_inverted_thresholds_are_rejected() -> None:
    with pytest.raises(ValueError):
        PressureTracker(DropWindow(), warn_above=0.5, critical_above=0.3)
