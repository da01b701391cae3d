"""Prometheus metrics (one registry per process; names are part of the runbook)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

BATCH_SIZE = Histogram(
    "framegate_batch_size",
    "Frames per request sent to Triton by the micro-batcher",
    ["pipeline"],
    buckets=(1, 2, 3, 4, 6, 8, 12, 16),
)
TRITON_REQUEST_SECONDS = Histogram(
    "framegate_triton_request_seconds",
    "Latency of one batched request to Triton",
    ["pipeline"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4),
)

STREAM_SESSIONS_ACTIVE = Gauge("framegate_stream_sessions_active", "Live WebSocket sessions")
STREAM_SESSIONS_TOTAL = Counter(
    "framegate_stream_sessions_total", "WebSocket sessions by how they ended", ["outcome"]
)
STREAM_FRAMES = Counter(
    "framegate_stream_frames_total",
    "Streamed frames by outcome (received = valid frames; each ends processed or dropped)",
    ["outcome"],
)
STREAM_EXPIRED = Counter(
    "framegate_stream_frames_expired_total",
    "Dropped frames that were admitted but expired unsent: they could only have been answered "
    "after STREAM_LATENCY_BUDGET_MS (a subset of the dropped outcome)",
    ["pipeline"],
)
BATCH_WINDOW = Gauge(
    "framegate_batch_window_frames",
    "Frames allowed at Triton at once while live frames wait (adaptive, latency budget)",
    ["pipeline"],
)
STREAM_FRAME_FAILURES = Counter(
    "framegate_stream_frame_failures_total",
    "Frames answered with a per-frame pipeline_failure result: Triton failed the frame alone "
    "(a subset of the processed outcome)",
    ["pipeline"],
)
STREAM_SLOWDOWN = Counter("framegate_stream_slowdown_total", "slow_down warnings sent")
STREAM_ERRORS = Counter("framegate_stream_errors_total", "Session-ending errors by code", ["code"])
STREAM_LATENCY = Histogram(
    "framegate_stream_latency_seconds",
    "Frame receipt to result sent, per processed frame",
    ["pipeline"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4),
)
STREAM_HANDSHAKES_REFUSED = Counter(
    "framegate_stream_handshakes_refused_total", "Upgrades refused with 404 (flag off)"
)
TRITON_READY = Gauge(
    "framegate_triton_ready",
    "1 while Triton answers ready with every pipeline's models loaded, as last checked (every "
    "few seconds and on each /ready); readiness probes no longer ask Triton",
)
DRAINING = Gauge(
    "framegate_draining", "1 while this process drains after SIGTERM (unready, refusing streams)"
)
