"""Prometheus metrics (one registry per process; names are part of the runbook)."""

from __future__ import annotations

from prometheus_client import Histogram

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
