"""Scraping gateways over HTTP (a failing one skipped) and PromQL instant queries."""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from api.guard.signals import Signal, Thresholds, evaluate
from api.guard.sources import PrometheusSource, ScrapeSource, SourceError, static_targets
from tests.guard.conftest import FakeGateway, ServedGateway
from tests.support.ports import free_port

TH = Thresholds(window_s=30, stall_s=20)


async def test_every_gateway_is_scraped_and_summed(
    serve_gateway: Callable[[FakeGateway], ServedGateway],
) -> None:
    a, b = serve_gateway(FakeGateway()), serve_gateway(FakeGateway())
    source = ScrapeSource(static_targets([a.url, b.url]), window_s=30, stall_s=20)
    try:
        await source.read(0.0)
        a.gateway.stream(100, 90)
        b.gateway.stream(50, 50)
        b.gateway.fail_frames(5)
        reading = await source.read(2.0)
    finally:
        await source.aclose()
    assert reading.sources == 2
    counts = reading.window.counts
    assert (counts.received, counts.processed, counts.frame_failures) == (150, 140, 5)


async def test_a_failing_gateway_is_logged_and_skipped(
    serve_gateway: Callable[[FakeGateway], ServedGateway], caplog: pytest.LogCaptureFixture
) -> None:
    up = serve_gateway(FakeGateway())
    down = f"http://127.0.0.1:{free_port()}/metrics"  # nothing listens there
    scrapes: list[bool] = []
    source = ScrapeSource(static_targets([up.url, down]), 30, 20, on_scrape=scrapes.append)
    caplog.set_level(logging.WARNING, logger="framegate.guard")
    try:
        await source.read(0.0)
        up.gateway.stream(80, 80)
        reading = await source.read(2.0)
    finally:
        await source.aclose()
    assert reading.sources == 1
    assert reading.window.counts.received == 80
    assert sorted(scrapes) == [False, False, True, True]
    failed = [r for r in caplog.records if r.getMessage() == "scrape failed"]
    assert {r.target for r in failed} == {down}  # type: ignore[attr-defined]


async def test_every_gateway_failing_is_no_data_not_a_signal() -> None:
    down = [f"http://127.0.0.1:{free_port()}/metrics" for _ in range(2)]
    source = ScrapeSource(static_targets(down), 30, 20)
    try:
        with pytest.raises(SourceError, match=r"every gateway failed to answer \(2 tried\)"):
            await source.read(0.0)
    finally:
        await source.aclose()


async def test_a_restarted_gateway_gives_no_negative_rate_and_no_trip(
    serve_gateway: Callable[[FakeGateway], ServedGateway],
) -> None:
    served = serve_gateway(FakeGateway(started_at=100.0))
    gateway = served.gateway
    source = ScrapeSource(static_targets([served.url]), window_s=30, stall_s=20)
    try:
        gateway.stream(10_000, 10_000)  # a long-running pod...
        gateway.fail_frames(10)
        await source.read(0.0)
        gateway.stream(200, 200)
        await source.read(2.0)
        gateway.restart(started_at=250.0)  # ...restarted: its counters begin again
        gateway.stream(150, 150)
        reading = await source.read(4.0)
    finally:
        await source.aclose()
    counts = reading.window.counts
    assert (counts.received, counts.processed, counts.frame_failures) == (350, 350, 0)
    assert evaluate(reading.window, reading.stall, TH).breached == ()


def prometheus(answers: dict[str, list[dict]], seen: list[str]) -> httpx.MockTransport:
    """A Prometheus HTTP API answering instant queries: the first key found in the query."""

    def handle(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v1/query"
        query = parse_qs(urlsplit(str(request.url)).query)["query"][0]
        seen.append(query)
        result = next((v for k, v in answers.items() if k in query), [])
        body = {"status": "success", "data": {"resultType": "vector", "result": result}}
        return httpx.Response(200, json=body)

    return httpx.MockTransport(handle)


def scalar(value: float, **labels: str) -> dict:
    return {"metric": labels, "value": [1700000000.0, str(value)]}


async def test_prometheus_queries_increase_over_the_window_with_the_selector() -> None:
    seen: list[str] = []
    answers = {
        '{job="gw",outcome="received"}[30s]': [scalar(1_000)],
        '{job="gw",outcome="processed"}[30s]': [scalar(940)],
        '{job="gw",outcome="received"}[20s]': [scalar(600)],
        '{job="gw",outcome="processed"}[20s]': [scalar(0)],
        "framegate_stream_frames_expired_total": [scalar(12)],
        "framegate_stream_errors_total": [scalar(2)],
        "framegate_stream_frame_failures_total": [scalar(3)],
        "framegate_stream_latency_seconds_bucket": [
            scalar(900, le="0.1"),
            scalar(940, le="+Inf"),
        ],
    }
    source = PrometheusSource(
        "http://prometheus:9090/",
        30,
        20,
        selector='{job="gw"}',
        transport=prometheus(answers, seen),
    )
    try:
        reading = await source.read(0.0)
    finally:
        await source.aclose()
    counts = reading.window.counts
    assert (counts.received, counts.processed, counts.expired) == (1_000, 940, 12)
    assert (counts.server_errors, counts.frame_failures) == (2, 3)
    assert counts.latency_buckets == ((0.1, 900.0), (float("inf"), 940.0))
    errors_query = next(q for q in seen if "framegate_stream_errors_total" in q)
    assert 'code=~"inference_unavailable|internal_error|pipeline_failure"' in errors_query
    assert all('job="gw"' in q for q in seen)
    verdict = evaluate(reading.window, reading.stall, TH)
    assert [r.signal for r in verdict.breached] == [Signal.STALL]


async def test_a_prometheus_error_is_no_data() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        body = {"status": "error", "errorType": "bad_data", "error": "parse error"}
        return httpx.Response(400, json=body)

    source = PrometheusSource("http://p:9090", 30, 20, transport=httpx.MockTransport(handle))
    try:
        with pytest.raises(SourceError, match="Prometheus answered bad_data: parse error"):
            await source.read(0.0)
    finally:
        await source.aclose()
