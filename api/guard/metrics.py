"""The guard's own metrics (its own registry: nothing of the gateway's), served on `--port`."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from api.guard.signals import Signal, Thresholds


class GuardMetrics:
    def __init__(self, thresholds: Thresholds) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.trips = Counter(
            "framegate_guard_trips_total",
            "Times the guard turned video-streaming off, by the signal that breached",
            ["signal"],
            registry=r,
        )
        self.dry_run_trips = Counter(
            "framegate_guard_dry_run_trips_total",
            "Trips a --dry-run guard would have made (the flag was not written)",
            ["signal"],
            registry=r,
        )
        self.reenables = Counter(
            "framegate_guard_reenables_total",
            "Times --auto-reenable turned video-streaming back on",
            registry=r,
        )
        self.evaluations = Counter(
            "framegate_guard_evaluations_total",
            "Evaluation rounds by verdict: judged, idle (under --min-frames), no_data",
            ["verdict"],
            registry=r,
        )
        self.scrapes = Counter(
            "framegate_guard_scrapes_total",
            "Gateway /metrics scrapes by result (ok, error)",
            ["result"],
            registry=r,
        )
        self.value = Gauge(
            "framegate_guard_signal_value",
            "Last value of each signal (NaN when it could not be measured)",
            ["signal"],
            registry=r,
        )
        self.threshold = Gauge(
            "framegate_guard_signal_threshold", "Each signal's threshold", ["signal"], registry=r
        )
        self.window_frames = Gauge(
            "framegate_guard_window_frames", "Frames received in the window", registry=r
        )
        self.tripped = Gauge(
            "framegate_guard_tripped",
            "1 while the flag is off because this guard turned it off",
            registry=r,
        )
        for signal in Signal:
            self.threshold.labels(signal).set(thresholds.limit(signal))
            self.value.labels(signal).set(float("nan"))
            self.trips.labels(signal)
        for verdict in ("judged", "idle", "no_data"):
            self.evaluations.labels(verdict)
        for result in ("ok", "error"):
            self.scrapes.labels(result)

    def scraped(self, ok: bool) -> None:
        self.scrapes.labels("ok" if ok else "error").inc()
