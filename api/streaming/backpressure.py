"""Per-session drop accounting over a sliding time window, and the normal/warning/critical state.

The window is time-based so a session recovers as soon as its client slows down (the replaced
system's rate, once over the threshold, stayed there forever). The sustainable FPS suggested to
the client is what the session actually got processed over the same window.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from enum import StrEnum


class PressureState(StrEnum):
    NORMAL = "normal"
    WARNING = "warning"
    CRITICAL = "critical"


class DropWindow:
    def __init__(self, window_s: float = 1.5, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self._clock = clock
        self._arrivals: deque[tuple[float, bool]] = deque()  # (time, dropped)
        self._dropped = 0  # arrivals in the window marked dropped (drop_rate runs twice a frame)
        self._completions: deque[float] = deque()

    def _trim(self, now: float) -> None:
        horizon = now - self.window_s
        while self._arrivals and self._arrivals[0][0] < horizon:
            self._dropped -= self._arrivals.popleft()[1]
        while self._completions and self._completions[0] < horizon:
            self._completions.popleft()

    def record_arrival(self) -> None:
        self._arrivals.append((self._clock(), False))

    def record_drop(self) -> None:
        """A frame that arrived earlier was dropped: re-mark its slot as dropped."""
        now = self._clock()
        self._trim(now)
        for i in range(len(self._arrivals) - 1, -1, -1):
            if not self._arrivals[i][1]:
                self._arrivals[i] = (self._arrivals[i][0], True)
                self._dropped += 1
                return
        self._arrivals.append((now, True))
        self._dropped += 1

    def record_completion(self) -> None:
        self._completions.append(self._clock())

    def drop_rate(self) -> float:
        self._trim(self._clock())
        if not self._arrivals:
            return 0.0
        return self._dropped / len(self._arrivals)

    def processed_fps(self) -> float:
        self._trim(self._clock())
        return len(self._completions) / self.window_s


class PressureTracker:
    """State machine on top of a DropWindow. `update()` returns True exactly when the session
    enters CRITICAL (send slow_down once). The signal re-arms only when the drop rate is back
    under the warning threshold, so a rate hovering around the critical line does not spam."""

    def __init__(self, window: DropWindow, warn_above: float, critical_above: float) -> None:
        if not 0 <= warn_above <= critical_above <= 1:
            raise ValueError("thresholds must satisfy 0 <= warn_above <= critical_above <= 1")
        self.window = window
        self.warn_above = warn_above
        self.critical_above = critical_above
        self.state = PressureState.NORMAL
        self._armed = True

    def update(self) -> bool:
        rate = self.window.drop_rate()
        if rate > self.critical_above:
            new = PressureState.CRITICAL
        elif rate > self.warn_above:
            new = PressureState.WARNING
        else:
            new = PressureState.NORMAL
        self.state = new
        if new is PressureState.NORMAL:
            self._armed = True
        elif new is PressureState.CRITICAL and self._armed:
            self._armed = False
            return True
        return False

    def suggested_fps(self) -> float:
        # Never suggest 0: a client told "0 fps" stops, and then nothing can recover.
        return max(self.window.processed_fps(), 1.0)
