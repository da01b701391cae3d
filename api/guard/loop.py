"""The guard's loop: read the signals every `interval_s`, trip the flag off when one breached
for long enough, and (only with `auto_reenable_s`) turn it back on after a cool-down.

A round without numbers (every gateway's scrape failed, Prometheus unreachable) is logged and
never judged: a gateway whose Triton hangs still answers `/metrics` (the endpoint runs on the
gateway's event loop, not through Triton), so a hung or failing Triton shows up in the signals
themselves (stall, error ratio). Gateways that all stop answering mean the guard cannot see
them (a network policy, the guard's own network, a rollout replacing every pod), and turning
streaming off on that evidence would make the guard an outage of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from kubernetes.client.exceptions import ApiException
from kubernetes.config import ConfigException
from urllib3.exceptions import HTTPError

from api.flags.flagfile import FlagFileError
from api.guard.metrics import GuardMetrics
from api.guard.signals import Breaches, Reading, Thresholds, Verdict, evaluate
from api.guard.sources import Source, SourceError
from api.guard.trip import EVENT_NORMAL, EVENT_WARNING, REASON_REENABLED, REASON_TRIPPED, FlagTarget

log = logging.getLogger("framegate.guard")

# What writing the flag or an Event may run into: logged, retried next round.
WRITE_ERRORS = (FlagFileError, ApiException, ConfigException, HTTPError, OSError)
MAX_COOLDOWN_S = 3600.0


class State(StrEnum):
    ARMED = "armed"
    TRIPPED = "tripped"  # this guard turned the flag off


@dataclass(frozen=True, slots=True)
class GuardOptions:
    thresholds: Thresholds = field(default_factory=Thresholds)
    interval_s: float = 2.0
    dry_run: bool = False
    # Turn the flag back on this long after a trip (doubling with every further trip, up to
    # MAX_COOLDOWN_S) once a whole window passed without a breach. None: never.
    auto_reenable_s: float | None = None


class Guard:
    def __init__(
        self,
        source: Source,
        target: FlagTarget,
        options: GuardOptions,
        metrics: GuardMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source, self.target, self.options = source, target, options
        self.metrics = metrics or GuardMetrics(options.thresholds)
        self.clock = clock
        self.state = State.ARMED
        self.trips = 0
        self._breaches = Breaches(options.thresholds.for_s)
        self._tripped_at = 0.0
        self._healthy_since: float | None = None
        self._would_trip: set[str] = set()

    @property
    def cooldown_s(self) -> float | None:
        after = self.options.auto_reenable_s
        if after is None:
            return None
        return min(after * 2 ** max(self.trips - 1, 0), max(after, MAX_COOLDOWN_S))

    async def run(self, stop: asyncio.Event) -> None:
        log.info(
            "guard started",
            extra={
                "target": str(self.target),
                "dry_run": self.options.dry_run,
                "auto_reenable_s": self.options.auto_reenable_s,
                **_thresholds(self.options.thresholds),
            },
        )
        while not stop.is_set():
            started = self.clock()
            await self.tick()
            pause = max(0.0, self.options.interval_s - (self.clock() - started))
            with contextlib.suppress(TimeoutError):  # the next round is due
                await asyncio.wait_for(stop.wait(), pause)

    async def tick(self) -> Verdict | None:
        """One round: read, judge, act. The verdict, or None when there were no numbers."""
        now = self.clock()
        try:
            reading = await self.source.read(now)
        except SourceError as exc:
            log.warning("no data this round", extra={"error": str(exc)})
            self.metrics.evaluations.labels("no_data").inc()
            self._healthy_since = None
            return None
        verdict = evaluate(reading.window, reading.stall, self.options.thresholds)
        self._record(verdict)
        if self.state is State.TRIPPED:
            await self._while_tripped(verdict, now)
            return verdict
        due = self._breaches.update(verdict, now)
        if self.options.dry_run:
            self._dry_run(verdict, due)
        elif due:
            await self._trip(due[0], verdict, reading.sources)
        return verdict

    def _record(self, verdict: Verdict) -> None:
        self.metrics.evaluations.labels("judged" if verdict.judged else "idle").inc()
        self.metrics.window_frames.set(verdict.frames)
        for r in verdict.readings:
            self.metrics.value.labels(r.signal).set(float("nan") if r.value is None else r.value)

    def _dry_run(self, verdict: Verdict, due: list[Reading]) -> None:
        self._would_trip &= {r.signal for r in verdict.breached}  # recovered: would re-arm
        for reading in due:
            if reading.signal not in self._would_trip:
                self._would_trip.add(reading.signal)
                self.metrics.dry_run_trips.labels(reading.signal).inc()
                log.warning("guard would trip (dry run)", extra=self._trip_fields(reading, verdict))

    async def _trip(self, reading: Reading, verdict: Verdict, gateways: int) -> None:
        try:
            await asyncio.to_thread(self.target.set, False)
        except WRITE_ERRORS as exc:
            log.error(
                "trip failed, retrying next round",
                extra={"target": str(self.target), "error": f"{type(exc).__name__}: {exc}"},
            )
            return
        self.state, self.trips = State.TRIPPED, self.trips + 1
        self._tripped_at, self._healthy_since = self.clock(), None
        self.metrics.trips.labels(reading.signal).inc()
        self.metrics.tripped.set(1)
        fields = self._trip_fields(reading, verdict) | {"gateways": gateways}
        log.warning("guard tripped: video-streaming turned off", extra=fields)
        message = (
            f"framegate guard turned video-streaming off: {reading.signal} "
            f"{_fmt(reading.value)} breached {reading.threshold:g} for "
            f"{self.options.thresholds.for_s:g}s (window {self.options.thresholds.window_s:g}s, "
            f"{verdict.frames:.0f} frames)"
        )
        await self._event(REASON_TRIPPED, message, EVENT_WARNING)

    async def _while_tripped(self, verdict: Verdict, now: float) -> None:
        try:
            flag = await asyncio.to_thread(self.target.get)
        except WRITE_ERRORS as exc:
            log.warning("cannot read the flag", extra={"error": f"{type(exc).__name__}: {exc}"})
            self._healthy_since = None
            return
        if flag.value is True:
            log.info("video-streaming turned back on by someone else; guard re-armed")
            self._rearm()
            return
        if verdict.breached:
            self._healthy_since = None
        elif self._healthy_since is None:
            self._healthy_since = now
        cooldown = self.cooldown_s
        if cooldown is None or self._healthy_since is None:
            return
        window = self.options.thresholds.window_s
        if now - self._tripped_at >= cooldown and now - self._healthy_since >= window:
            await self._reenable(cooldown)

    async def _reenable(self, cooldown: float) -> None:
        try:
            await asyncio.to_thread(self.target.set, True)
        except WRITE_ERRORS as exc:
            log.error("re-enable failed", extra={"error": f"{type(exc).__name__}: {exc}"})
            return
        self.metrics.reenables.inc()
        log.warning(
            "guard re-enabled video-streaming",
            extra={"target": str(self.target), "cooldown_s": cooldown, "trips": self.trips},
        )
        message = f"framegate guard turned video-streaming back on after {cooldown:g}s"
        await self._event(REASON_REENABLED, message, EVENT_NORMAL)
        self._rearm()

    def _rearm(self) -> None:
        self.state = State.ARMED
        self.metrics.tripped.set(0)
        self._breaches.clear()
        self.source.reset()  # the bad window is history; judge what comes next

    async def _event(self, reason: str, message: str, event_type: str) -> None:
        try:
            await asyncio.to_thread(self.target.record_event, reason, message, event_type)
        except WRITE_ERRORS as exc:
            log.warning(
                "cannot record a Kubernetes Event",
                extra={"reason": reason, "error": f"{type(exc).__name__}: {exc}"},
            )

    def _trip_fields(self, reading: Reading, verdict: Verdict) -> dict[str, object]:
        th = self.options.thresholds
        return {
            "signal": str(reading.signal),
            "value": reading.value,
            "threshold": reading.threshold,
            "window_s": th.window_s,
            "for_s": th.for_s,
            "frames_in_window": verdict.frames,
            "breached": [str(r.signal) for r in verdict.breached],
            "target": str(self.target),
            "dry_run": self.options.dry_run,
        }


def _thresholds(th: Thresholds) -> dict[str, float]:
    return {
        "max_error_ratio": th.max_error_ratio,
        "max_expiry_ratio": th.max_expiry_ratio,
        "max_p99_ms": th.max_p99_ms,
        "stall_s": th.stall_s,
        "min_frames": th.min_frames,
        "window_s": th.window_s,
        "for_s": th.for_s,
    }


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"
