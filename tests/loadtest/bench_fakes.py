"""Rows with round numbers for the bench tests that need no servers."""

from __future__ import annotations

from api.loadtest.bench.rows import Row


def make_row(key: str, fps: float, p99: float, cpu_ms: float, **kw) -> Row:
    return Row(
        key=key,
        name=key,
        frames=int(fps * 10),
        seconds=10.0,
        frames_per_s=fps,
        latency_ms={"mean": p99 / 2, "p50": p99 / 2, "p90": p99, "p99": p99, "max": p99},
        cpu_s=cpu_ms * fps * 10 / 1000,
        cpu_ms_per_frame=cpu_ms,
        **kw,
    )
