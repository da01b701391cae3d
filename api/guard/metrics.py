"""The guard's own metrics (its own registry: nothing of the gateway's), served on `--port`."""

from __future__ import annotations

from functools import partial

from prometheus_client import CollectorRegistry, Counter, Gauge

from api.guard.signals import Signal, Thresholds

# Every label a series can take, created at zero up front: a counter that has not moved yet is
# still scraped, so rate() and alerts see 0 rather than a missing series.
VERDICTS = ("judged", "idle", "no_data")
SCRAPE_RESULTS = ("ok", "error")


class GuardMetrics:
    def __init__(self, thresholds: Thresholds) -> None:
        self.registry = CollectorRegistry()
        counter = partial(Counter, registry=self.registry)
        gauge = partial(Gauge, registry=self.registry)
        self.trips = counter(
            "framegate_guard_trips_total",
            "Times the guard turned video-streaming off, by the signal that breached",
            ["signal"],
        )
        self.dry_run_trips = counter(
            "framegate_guard_dry_run_trips_total",
            "Trips a --dry-run guard would have made (the flag was not written)",
            ["signal"],
        )
        self.reenables = counter(
            "framegate_guard_reenables_total",
            "Times --auto-reenable turned video-streaming back on",
        )
        self.evaluations = counter(
            "framegate_guard_evaluations_total",
            "Evaluation rounds by verdict: judged, idle (under --min-frames), no_data",
            ["verdict"],
        )
        self.scrapes = counter(
            "framegate_guard_scrapes_total",
            "Gateway /metrics scrapes by result (ok, error)",
            ["result"],
        )
        self.value = gauge(
            "framegate_guard_signal_value",
            "Last value of each signal (NaN when it could not be measured)",
            ["signal"],
        )
        self.threshold = gauge(
            "framegate_guard_signal_threshold", "Each signal's threshold", ["signal"]
        )
        self.window_frames = gauge("framegate_guard_window_frames", "Frames received in the window")
        self.tripped = gauge(
            "framegate_guard_tripped", "1 while the flag is off because this guard turned it off"
        )
        self._create_series(thresholds)

    def _create_series(self, thresholds: Thresholds) -> None:
        for signal in Signal:
            self.threshold.labels(signal).set(thresholds.limit(signal))
            self.value.labels(signal).set(float("nan"))
            self.trips.labels(signal)
        for verdict in VERDICTS:
            self.evaluations.labels(verdict)
        for result in SCRAPE_RESULTS:
            self.scrapes.labels(result)

    def scraped(self, ok: bool) -> None:
        self.scrapes.labels("ok" if ok else "error").inc()
