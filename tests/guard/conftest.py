"""Fixtures for the guard tests: gateways' metrics as the gateway exports them (same names,
labels and buckets, their own registry), served over real HTTP when a test scrapes them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)

from api.core import metrics as gateway_metrics
from tests.guard.fake_kube_guard import GuardKube

LATENCY_BUCKETS = tuple(gateway_metrics.STREAM_LATENCY._upper_bounds[:-1])


@dataclass
class FakeGateway:
    """One gateway process's streaming metrics; `restart()` starts them again at zero."""

    started_at: float = 1_000.0
    registry: CollectorRegistry = field(init=False)

    def __post_init__(self) -> None:
        self.restart(self.started_at)

    def restart(self, started_at: float) -> None:
        self.started_at = started_at
        r = self.registry = CollectorRegistry()
        self.frames = Counter("framegate_stream_frames_total", "", ["outcome"], registry=r)
        self.expired_frames = Counter(
            "framegate_stream_frames_expired_total", "", ["pipeline"], registry=r
        )
        self.failures = Counter(
            "framegate_stream_frame_failures_total", "", ["pipeline"], registry=r
        )
        self.errors = Counter("framegate_stream_errors_total", "", ["code"], registry=r)
        self.latency = Histogram(
            "framegate_stream_latency_seconds",
            "",
            ["pipeline"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        Gauge("process_start_time_seconds", "", registry=r).set(started_at)

    def stream(
        self, received: int, processed: int, latency_s: float = 0.05, pipeline: str = "yolo"
    ) -> None:
        self.frames.labels("received").inc(received)
        self.frames.labels("processed").inc(processed)
        self.frames.labels("dropped").inc(received - processed)
        for _ in range(processed):
            self.latency.labels(pipeline).observe(latency_s)

    def expire(self, n: int, pipeline: str = "yolo") -> None:
        self.expired_frames.labels(pipeline).inc(n)

    def fail_frames(self, n: int, pipeline: str = "yolo") -> None:
        self.failures.labels(pipeline).inc(n)

    def close_sessions(self, code: str, n: int = 1) -> None:
        self.errors.labels(code).inc(n)

    def text(self) -> str:
        return generate_latest(self.registry).decode()


@dataclass
class ServedGateway:
    gateway: FakeGateway
    url: str
    port: int


@pytest.fixture
def serve_gateway() -> Iterator:
    """Serve a FakeGateway's /metrics over HTTP on a free port (stopped after the test)."""
    servers = []

    def serve(gateway: FakeGateway) -> ServedGateway:
        class Live:  # start_http_server reads the registry at every request
            def collect(self):
                yield from gateway.registry.collect()

        registry = CollectorRegistry()
        registry.register(Live())
        server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
        servers.append((server, thread))
        port = server.server_address[1]
        return ServedGateway(gateway, f"http://127.0.0.1:{port}/metrics", port)

    yield serve
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def guard_kube() -> Iterator[GuardKube]:
    kube = GuardKube()
    kube.start()
    try:
        yield kube
    finally:
        kube.stop()
