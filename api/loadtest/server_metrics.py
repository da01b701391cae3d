"""The gateway's own view of a load test: `/metrics` scraped before and after, differenced.

The metrics are per process and cumulative, so the difference covers the run, plus any other
traffic the same process served meanwhile. Histogram quantiles are estimated from the bucket
counts with linear interpolation inside the bucket, as Prometheus' `histogram_quantile` does.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import httpx
from prometheus_client.parser import text_string_to_metric_families

Key = tuple[str, tuple[tuple[str, str], ...]]
Samples = dict[Key, float]

BATCH_SIZE = "framegate_batch_size"
TRITON_REQUEST = "framegate_triton_request_seconds"
STREAM_LATENCY = "framegate_stream_latency_seconds"
STREAM_FRAMES = "framegate_stream_frames_total"
STREAM_SLOWDOWN = "framegate_stream_slowdown_total"
STREAM_ERRORS = "framegate_stream_errors_total"
STREAM_SESSIONS = "framegate_stream_sessions_total"


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[s.name, tuple(sorted(s.labels.items()))] = s.value
    return samples


async def scrape(url: str, timeout_s: float = 5.0) -> Samples:
    async with httpx.AsyncClient(timeout=timeout_s) as client:
        response = await client.get(url)
        response.raise_for_status()
        return parse(response.text)


def delta(before: Samples, after: Samples) -> Samples:
    return {key: value - before.get(key, 0.0) for key, value in after.items()}


def _matching(samples: Samples, name: str, **labels: str) -> Iterable[tuple[dict, float]]:
    for (sample, pairs), value in samples.items():
        found = dict(pairs)
        if sample == name and all(found.get(k) == v for k, v in labels.items()):
            yield found, value


def total(samples: Samples, name: str, **labels: str) -> float:
    return sum(value for _, value in _matching(samples, name, **labels))


def by_label(samples: Samples, name: str, label: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for found, value in _matching(samples, name):
        if label in found and value:
            out[found[label]] = out.get(found[label], 0.0) + value
    return dict(sorted(out.items()))


def buckets(samples: Samples, name: str, **labels: str) -> list[tuple[float, float]]:
    """Cumulative (upper bound, count) pairs of a histogram, summed over matching series."""
    counts: dict[float, float] = {}
    for found, value in _matching(samples, f"{name}_bucket", **labels):
        bound = float(found["le"])
        counts[bound] = counts.get(bound, 0.0) + value
    return sorted(counts.items())


def histogram_quantile(q: float, cumulative: Sequence[tuple[float, float]]) -> float | None:
    """Prometheus' estimate: linear inside the bucket the rank falls in; the highest finite bound
    when it falls in +Inf; None without observations."""
    if not cumulative or cumulative[-1][1] <= 0:
        return None
    rank = q * cumulative[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in cumulative:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = bound, count
    return lower_bound


def _round(value: float | None, scale: float = 1.0) -> float | None:
    return None if value is None else round(value * scale, 2)


def histogram_summary(samples: Samples, name: str, scale: float = 1.0, **labels: str) -> dict:
    """count, sum, mean, p50, p99 of one histogram (values multiplied by `scale`)."""
    count = total(samples, f"{name}_count", **labels)
    value_sum = total(samples, f"{name}_sum", **labels)
    cumulative = buckets(samples, name, **labels)
    finite = [(bound, n) for bound, n in cumulative if not math.isinf(bound)]
    last_bound, last_count = finite[-1] if finite else (None, 0.0)
    return {
        "count": int(count),
        "sum": _round(value_sum, scale),
        "mean": _round(value_sum / count if count else None, scale),
        "p50": _round(histogram_quantile(0.5, cumulative), scale),
        "p99": _round(histogram_quantile(0.99, cumulative), scale),
        # Observations above the highest finite bucket: a quantile there reads "at least".
        "last_bound": _round(last_bound, scale),
        "above_last_bound": int(count - last_count) if finite else 0,
    }


def server_section(before: Samples, after: Samples, pipeline: str) -> dict:
    """The run as the gateway saw it (histograms of `pipeline` only)."""
    d = delta(before, after)
    batch = histogram_summary(d, BATCH_SIZE, pipeline=pipeline)
    return {
        "available": True,
        "batch_size": {
            "batches": batch["count"],
            "frames": int(batch["sum"] or 0),
            "mean": batch["mean"],
        },
        "triton_request_ms": histogram_summary(d, TRITON_REQUEST, 1000.0, pipeline=pipeline),
        "stream_latency_ms": histogram_summary(d, STREAM_LATENCY, 1000.0, pipeline=pipeline),
        "stream_frames": _ints(by_label(d, STREAM_FRAMES, "outcome")),
        "slow_down": int(total(d, STREAM_SLOWDOWN)),
        "errors_by_code": _ints(by_label(d, STREAM_ERRORS, "code")),
        "sessions_by_outcome": _ints(by_label(d, STREAM_SESSIONS, "outcome")),
    }


def _ints(values: Mapping[str, float]) -> dict[str, int]:
    return {k: int(v) for k, v in values.items()}


def unavailable(url: str, reason: str) -> dict:
    return {"available": False, "url": url, "reason": reason}
