"""Bookkeeping for the open-loop WebSocket load test: the send schedule, what each session saw,
and the summary built from it. No I/O here, so all of it is tested without a server.

Times are seconds relative to the run's clock start (t0). Every frame a session sends ends in
exactly one of three ways: a result (processed), a `dropped` reply, or no reply at all (an error:
the session ended with an error first, or the reply never came before the drain deadline). So
`sent = processed + dropped + errors` holds by construction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from api.loadtest.measure import latency_summary

# Client-side error codes, next to the server's protocol codes (api.streaming.protocol.ErrorCode).
CONNECT_FAILED = "connect_failed"  # TCP or WebSocket handshake failed (refused, timeout, ...)
CONNECTION_LOST = "connection_lost"  # closed without a close frame and without an error message
NO_REPLY = "no_reply"  # connection still open, but frames unanswered at the drain deadline
PROTOCOL_VIOLATION = "protocol_violation"  # a reply for a frame never sent, or a second reply


def http_refused(status: int) -> str:
    """Upgrade refused with an HTTP status (404: streaming off or not mounted)."""
    return f"http_{status}"


def closed_without_error(code: int) -> str:
    """The server closed with `code` but sent no `{"error"}` message first."""
    return f"closed_{code}"


CPU_WARN_FRACTION = 0.70  # of one core: one asyncio process is close to its ceiling above this
LAG_WARN_MAX_S = 0.050
LAG_WARN_PERIOD_FRACTION = 0.5


@dataclass(frozen=True)
class Schedule:
    """Each session sends on its own clock: frame k of session i at offset(i) + k / fps. Sessions
    start staggered evenly across one frame period, as independent cameras would."""

    sessions: int
    fps: float
    duration_s: float

    def __post_init__(self) -> None:
        if self.sessions < 1 or self.fps <= 0 or self.duration_s <= 0:
            raise ValueError("sessions must be >= 1, fps and duration_s > 0")

    @property
    def period_s(self) -> float:
        return 1.0 / self.fps

    @property
    def frames_per_session(self) -> int:
        return max(1, round(self.duration_s * self.fps))

    @property
    def planned(self) -> int:
        return self.sessions * self.frames_per_session

    def offset_s(self, session: int) -> float:
        return session * self.period_s / self.sessions

    def send_at(self, session: int, frame: int) -> float:
        return self.offset_s(session) + frame * self.period_s

    @property
    def span_s(self) -> float:
        """From t0 to one period after the last scheduled send."""
        return self.send_at(self.sessions - 1, self.frames_per_session - 1) + self.period_s

    def lag_warn_s(self) -> float:
        return min(LAG_WARN_MAX_S, LAG_WARN_PERIOD_FRACTION * self.period_s)


@dataclass
class SessionRecord:
    """What one session sent and received. `sent_at[i]` is frame i's send time (frame_index
    counts the session's valid frames from 0, and every frame this tool sends is valid)."""

    index: int
    connected: bool = False
    sent_at: list[float] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)
    replied: bytearray = field(default_factory=bytearray)
    processed_at: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    dropped_at: list[float] = field(default_factory=list)
    slow_down: int = 0
    suggested_fps: float | None = None
    result_errors: int = 0  # results of the form {"error": ...} (e.g. corrupt_jpeg)
    violations: int = 0
    error: str | None = None
    detail: str = ""

    @property
    def sent(self) -> int:
        return len(self.sent_at)

    @property
    def processed(self) -> int:
        return len(self.processed_at)

    @property
    def dropped(self) -> int:
        return len(self.dropped_at)

    @property
    def outstanding(self) -> int:
        return self.sent - self.processed - self.dropped

    def on_send(self, at: float, lag: float) -> None:
        self.sent_at.append(at)
        self.lags.append(lag)
        self.replied.append(0)

    def undo_send(self) -> None:
        """The last send failed (connection already closed): the server never saw that frame."""
        self.sent_at.pop()
        self.lags.pop()
        self.replied.pop()

    def fail(self, code: str, detail: str = "") -> None:
        """First reason wins, as on the server."""
        if self.error is None:
            self.error, self.detail = code, detail

    def on_message(self, message: dict, at: float) -> None:
        if "frame_index" in message:
            self._on_reply(message, at)
        elif message.get("warning") == "slow_down":
            self.slow_down += 1
            self.suggested_fps = message.get("suggested_fps")
        elif "error" in message:
            self.fail(str(message["error"]), str(message.get("detail", "")))
        else:
            self.violations += 1

    def _on_reply(self, message: dict, at: float) -> None:
        index = message["frame_index"]
        if not isinstance(index, int) or not 0 <= index < self.sent or self.replied[index]:
            self.violations += 1
            return
        self.replied[index] = 1
        if message.get("dropped") is True:
            self.dropped_at.append(at)
        elif "result" in message:
            self.processed_at.append(at)
            self.latencies.append(at - self.sent_at[index])
            if isinstance(message["result"], dict) and "error" in message["result"]:
                self.result_errors += 1
        else:
            self.replied[index] = 0
            self.violations += 1

    def finish(self) -> None:
        """After the drain: frames still unanswered on an open, error-free session are no_reply."""
        if self.outstanding and self.error is None:
            self.fail(NO_REPLY, f"{self.outstanding} frame(s) unanswered at the drain deadline")

    def achieved_fps(self, period_s: float) -> float:
        """Processed frames per second of the time this session was streaming."""
        if not self.sent_at:
            return 0.0
        return self.processed / (self.sent_at[-1] - self.sent_at[0] + period_s)


def _summary_ms(values_s: Sequence[float]) -> dict[str, float]:
    return {**latency_summary(values_s), "count": len(values_s)}


def _spread(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"min": 0.0, "mean": 0.0, "max": 0.0}
    return {
        "min": round(min(values), 2),
        "mean": round(sum(values) / len(values), 2),
        "max": round(max(values), 2),
    }


def frame_counts(schedule: Schedule, records: Sequence[SessionRecord]) -> dict[str, int]:
    sent = sum(r.sent for r in records)
    processed = sum(r.processed for r in records)
    dropped = sum(r.dropped for r in records)
    return {
        "planned": schedule.planned,
        "sent": sent,
        "processed": processed,
        "dropped": dropped,
        "errors": sent - processed - dropped,
        "not_sent": schedule.planned - sent,
        "error_results": sum(r.result_errors for r in records),
    }


def errors_by_code(records: Sequence[SessionRecord]) -> dict[str, dict[str, int]]:
    """Per error code: sessions that ended with it, and their frames left without a reply."""
    out: dict[str, dict[str, int]] = {}
    for r in records:
        if r.error is None:
            continue
        entry = out.setdefault(r.error, {"sessions": 0, "frames": 0})
        entry["sessions"] += 1
        entry["frames"] += r.outstanding
    return dict(sorted(out.items()))


def timeline(records: Sequence[SessionRecord], bucket_s: float = 1.0) -> list[dict]:
    """Per bucket of `bucket_s` (by event time): frames sent, results and drops received, and the
    latency p50/p99 of the results received in it (None when there were none)."""
    events: Counter[tuple[int, str]] = Counter()
    latencies: dict[int, list[float]] = {}
    last = 0.0
    for r in records:
        for t in r.sent_at:
            events[int(t // bucket_s), "sent"] += 1
        for t in r.dropped_at:
            events[int(t // bucket_s), "dropped"] += 1
        for t, lat in zip(r.processed_at, r.latencies, strict=True):
            events[int(t // bucket_s), "processed"] += 1
            latencies.setdefault(int(t // bucket_s), []).append(lat)
        last = max([last, *r.sent_at, *r.processed_at, *r.dropped_at])
    out = []
    for b in range(int(last // bucket_s) + 1 if events else 0):
        ms = np.asarray(latencies.get(b, ()), dtype=np.float64) * 1000.0
        out.append(
            {
                "t": round(b * bucket_s, 3),
                "sent": events[b, "sent"],
                "processed": events[b, "processed"],
                "dropped": events[b, "dropped"],
                "latency_p50_ms": round(float(np.percentile(ms, 50)), 2) if ms.size else None,
                "latency_p99_ms": round(float(np.percentile(ms, 99)), 2) if ms.size else None,
            }
        )
    return out


def per_session(schedule: Schedule, records: Sequence[SessionRecord]) -> list[dict]:
    return [
        {
            "session": r.index,
            "connected": r.connected,
            "sent": r.sent,
            "processed": r.processed,
            "dropped": r.dropped,
            "errors": r.outstanding,
            "slow_down": r.slow_down,
            "suggested_fps": r.suggested_fps,
            "fps": round(r.achieved_fps(schedule.period_s), 2),
            "error": r.error,
            "detail": r.detail,
        }
        for r in records
    ]


def summarize(schedule: Schedule, records: Sequence[SessionRecord]) -> dict:
    """Everything the client saw, as plain data (the JSON report's client-side sections)."""
    streaming = [r for r in records if r.sent]
    session_fps = [r.achieved_fps(schedule.period_s) for r in streaming]
    return {
        "sessions": {
            "planned": schedule.sessions,
            "connected": sum(r.connected for r in records),
            "ended_with_error": sum(r.error is not None for r in records),
        },
        "frames": frame_counts(schedule, records),
        "errors_by_code": errors_by_code(records),
        "fps": {
            "offered": round(schedule.sessions * schedule.fps, 2),
            "per_session": _spread(session_fps),
            "total": round(sum(session_fps), 2),
        },
        "latency_ms": _summary_ms([lat for r in records for lat in r.latencies]),
        "slow_down": sum(r.slow_down for r in records),
        "protocol_violations": sum(r.violations for r in records),
        "schedule_lag_ms": _summary_ms([lag for r in records for lag in r.lags]),
        "timeline": timeline(records),
        "per_session": per_session(schedule, records),
    }


def generator_section(
    sending: tuple[float, float],
    whole: tuple[float, float],
    cpu_count: int | None,
    lag_p99_ms: float,
    schedule: Schedule,
) -> dict:
    """The load generator's own cost, as (CPU s, wall s) while sending (the busy phase, judged)
    and over the whole run (with the drain), and warnings when it may have been the bottleneck."""
    cores = _cores(*sending)
    warnings = []
    if cores > CPU_WARN_FRACTION:
        warnings.append(
            f"the load generator used {cores:.0%} of one core while sending (> "
            f"{CPU_WARN_FRACTION:.0%}): it may be the bottleneck; split the sessions over several "
            "processes"
        )
    lag_limit_ms = schedule.lag_warn_s() * 1000.0
    if lag_p99_ms > lag_limit_ms:
        warnings.append(
            f"the load generator fell behind its send schedule: lag p99 {lag_p99_ms:.1f} ms "
            f"(> {lag_limit_ms:.1f} ms)"
        )
    return {
        "sending": _usage(*sending),
        "whole_run": _usage(*whole),
        "percent_of_core": round(100.0 * cores, 1),
        "cpu_count": cpu_count,
        "schedule_lag_p99_ms": round(lag_p99_ms, 2),
        "schedule_lag_warn_ms": round(lag_limit_ms, 2),
        "warnings": warnings,
    }


def _cores(cpu_s: float, wall_s: float) -> float:
    return cpu_s / wall_s if wall_s > 0 else 0.0


def _usage(cpu_s: float, wall_s: float) -> dict[str, float]:
    cores = _cores(cpu_s, wall_s)
    return {
        "cpu_s": round(cpu_s, 3),
        "wall_s": round(wall_s, 3),
        "cores": round(cores, 3),
        "percent_of_core": round(100.0 * cores, 1),
    }
