"""The guard's signals as pure functions of window totals, and when a breach becomes a trip."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from api.guard.window import Totals
from api.loadtest.server_metrics import histogram_quantile  # the one Prometheus estimate


class Signal(StrEnum):
    ERROR_RATIO = "error_ratio"
    EXPIRY_RATIO = "expiry_ratio"
    P99_MS = "p99_ms"
    STALL = "stall"


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Defaults measured not to trip on a healthy service loaded at and above saturation
    (README, "framegate guard"). Under overload the latency budget expires most admitted
    frames by design (0.55-0.91 measured at 1-4x saturation), so only a near-total expiry
    trips; p99 stays under the histogram's top bucket (6.4 s) to be measurable at all."""

    max_error_ratio: float = 0.05
    max_expiry_ratio: float = 0.98
    max_p99_ms: float = 5000.0
    stall_s: float = 25.0
    min_frames: int = 50
    window_s: float = 30.0
    for_s: float = 15.0

    def limit(self, signal: Signal) -> float:
        return {
            Signal.ERROR_RATIO: self.max_error_ratio,
            Signal.EXPIRY_RATIO: self.max_expiry_ratio,
            Signal.P99_MS: self.max_p99_ms,
            Signal.STALL: self.stall_s,
        }[signal]


@dataclass(frozen=True, slots=True)
class Reading:
    signal: Signal
    value: float | None  # None: nothing to measure it on (no frames, no latency observed)
    threshold: float
    breached: bool


@dataclass(frozen=True, slots=True)
class Verdict:
    """One evaluation: `judged` is False while the window holds fewer than `min_frames`."""

    judged: bool
    frames: float
    readings: tuple[Reading, ...]

    @property
    def breached(self) -> tuple[Reading, ...]:
        return tuple(r for r in self.readings if r.breached)


def error_ratio(totals: Totals) -> float | None:
    """Server-side failures (session-ending pipeline_failure / internal_error /
    inference_unavailable, plus per-frame pipeline_failure results) over frames received."""
    c = totals.counts
    return (c.server_errors + c.frame_failures) / c.received if c.received > 0 else None


def expiry_ratio(totals: Totals) -> float | None:
    """Frames dropped by the latency budget over frames received. Frames a client sends faster
    than its session takes (replaced in the mailbox) are not expiries and do not count."""
    c = totals.counts
    return c.expired / c.received if c.received > 0 else None


def p99_ms(totals: Totals) -> float | None:
    value = histogram_quantile(0.99, totals.counts.latency_buckets)
    return None if value is None else value * 1000


def stalled_s(stall: Totals) -> float:
    """Seconds during which frames arrived but no result went out (0 when any result did, or
    when no frame arrived: an idle service is not stalled)."""
    c = stall.counts
    return stall.span_s if c.received > 0 and c.processed <= 0 else 0.0


def evaluate(window: Totals, stall: Totals, thresholds: Thresholds) -> Verdict:
    frames = window.counts.received
    judged = frames >= thresholds.min_frames
    values = {
        Signal.ERROR_RATIO: error_ratio(window),
        Signal.EXPIRY_RATIO: expiry_ratio(window),
        Signal.P99_MS: p99_ms(window),
        # Only once the history covers the whole stall span (not in the first seconds).
        Signal.STALL: stalled_s(stall) if stall.span_s >= thresholds.stall_s else 0.0,
    }
    readings = []
    for signal, value in values.items():
        limit = thresholds.limit(signal)
        over = value is not None and (value >= limit if signal is Signal.STALL else value > limit)
        readings.append(Reading(signal, value, limit, judged and over))
    return Verdict(judged, frames, tuple(readings))


@dataclass
class Breaches:
    """When each signal's current breach began; a trip once one lasted `for_s` (the stall
    signal's own duration is `stall_s`, already in its value: it trips at once)."""

    for_s: float
    since: dict[Signal, float] = field(default_factory=dict)

    def update(self, verdict: Verdict, now: float) -> list[Reading]:
        breached = {r.signal: r for r in verdict.breached}
        for signal in list(self.since):
            if signal not in breached:
                del self.since[signal]
        due = []
        for signal, reading in breached.items():
            started = self.since.setdefault(signal, now)
            if signal is Signal.STALL or now - started >= self.for_s:
                due.append(reading)
        return due

    def clear(self) -> None:
        self.since.clear()
