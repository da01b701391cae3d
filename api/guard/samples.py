"""One scrape of one gateway's `/metrics`, reduced to the cumulative counters the guard judges."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

FRAMES = "framegate_stream_frames_total"
EXPIRED = "framegate_stream_frames_expired_total"
FRAME_FAILURES = "framegate_stream_frame_failures_total"
SESSION_ERRORS = "framegate_stream_errors_total"
LATENCY_BUCKET = "framegate_stream_latency_seconds_bucket"
START_TIME = "process_start_time_seconds"
# Session-ending codes that are the server's fault; the others (invalid_frame, unauthorized,
# idle_timeout, too_many_sessions, streaming_disabled...) are the client's or by design.
SERVER_ERROR_CODES = frozenset({"pipeline_failure", "internal_error", "inference_unavailable"})

Buckets = tuple[tuple[float, float], ...]  # (upper bound in seconds, count), sorted, +Inf last


@dataclass(frozen=True, slots=True)
class Sample:
    """Cumulative counters of one gateway process (or their increases over a span)."""

    received: float = 0.0
    processed: float = 0.0
    expired: float = 0.0
    server_errors: float = 0.0
    frame_failures: float = 0.0
    latency_buckets: Buckets = ()
    started_at: float | None = None  # process_start_time_seconds: a new value is a restart


def parse_sample(text: str) -> Sample:
    """The guard's counters from Prometheus text format (summed over pipelines and labels)."""
    totals: dict[str, float] = defaultdict(float)
    buckets: dict[float, float] = defaultdict(float)
    started_at: float | None = None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name, labels, value = sample.name, sample.labels, float(sample.value)
            if name == FRAMES and labels.get("outcome") in ("received", "processed"):
                totals[labels["outcome"]] += value
            elif name == EXPIRED:
                totals["expired"] += value
            elif name == FRAME_FAILURES:
                totals["frame_failures"] += value
            elif name == SESSION_ERRORS and labels.get("code") in SERVER_ERROR_CODES:
                totals["server_errors"] += value
            elif name == LATENCY_BUCKET and "le" in labels:
                buckets[float(labels["le"])] += value
            elif name == START_TIME:
                started_at = value
    return Sample(
        received=totals["received"],
        processed=totals["processed"],
        expired=totals["expired"],
        server_errors=totals["server_errors"],
        frame_failures=totals["frame_failures"],
        latency_buckets=tuple(sorted(buckets.items())),
        started_at=started_at,
    )


def counters(sample: Sample) -> tuple[float, ...]:
    return (
        sample.received,
        sample.processed,
        sample.expired,
        sample.server_errors,
        sample.frame_failures,
        *(count for _, count in sample.latency_buckets),
    )


def is_reset(before: Sample, after: Sample) -> bool:
    """The process restarted between the two scrapes: a new start time, or any counter went
    down (counters only go down when the process that holds them started again)."""
    restarted = before.started_at is not None and after.started_at is not None
    if restarted and not math.isclose(before.started_at or 0.0, after.started_at or 0.0):
        return True
    old, new = dict(before.latency_buckets), dict(after.latency_buckets)
    if old.keys() - new.keys() or any(new[le] < count for le, count in old.items() if le in new):
        return True
    return any(b > a for b, a in zip(counters(before)[:5], counters(after)[:5], strict=True))


def increase(before: Sample, after: Sample) -> Sample:
    """What happened between two scrapes of one process, never negative: after a restart the
    counters began again at zero, so the increase is what the new process counted."""
    if is_reset(before, after):
        return Sample(
            after.received,
            after.processed,
            after.expired,
            after.server_errors,
            after.frame_failures,
            after.latency_buckets,
        )
    old = dict(before.latency_buckets)
    return Sample(
        after.received - before.received,
        after.processed - before.processed,
        after.expired - before.expired,
        after.server_errors - before.server_errors,
        after.frame_failures - before.frame_failures,
        tuple((le, count - old.get(le, 0.0)) for le, count in after.latency_buckets),
    )


def add(a: Sample, b: Sample) -> Sample:
    buckets: dict[float, float] = defaultdict(float)
    for le, count in (*a.latency_buckets, *b.latency_buckets):
        buckets[le] += count
    return Sample(
        a.received + b.received,
        a.processed + b.processed,
        a.expired + b.expired,
        a.server_errors + b.server_errors,
        a.frame_failures + b.frame_failures,
        tuple(sorted(buckets.items())),
    )
