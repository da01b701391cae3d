"""Parsing a gateway's /metrics and the increase between two scrapes (restarts included)."""

from __future__ import annotations

from prometheus_client import REGISTRY, generate_latest

from api.core import metrics
from api.guard.samples import Sample, increase, is_reset, parse_sample
from tests.guard.conftest import FakeGateway


def scrape_this_process() -> Sample:
    return parse_sample(generate_latest(REGISTRY).decode())


def test_parse_sample_reads_the_gateways_own_metric_names() -> None:
    before = scrape_this_process()
    metrics.STREAM_FRAMES.labels("received").inc(10)
    metrics.STREAM_FRAMES.labels("processed").inc(6)
    metrics.STREAM_FRAMES.labels("dropped").inc(4)
    metrics.STREAM_EXPIRED.labels("yolo").inc(2)
    metrics.STREAM_FRAME_FAILURES.labels("yolo").inc(1)
    metrics.STREAM_ERRORS.labels("inference_unavailable").inc()
    metrics.STREAM_LATENCY.labels("yolo").observe(0.03)
    delta = increase(before, scrape_this_process())
    assert (delta.received, delta.processed, delta.expired) == (10, 6, 2)
    assert (delta.frame_failures, delta.server_errors) == (1, 1)
    assert dict(delta.latency_buckets)[0.05] == 1
    assert dict(delta.latency_buckets)[float("inf")] == 1


def test_client_caused_session_errors_are_not_server_errors() -> None:
    gateway = FakeGateway()
    for code in ("invalid_frame", "unauthorized", "idle_timeout", "too_many_sessions"):
        gateway.close_sessions(code, 5)
    gateway.close_sessions("streaming_disabled", 5)
    gateway.close_sessions("internal_error", 1)
    gateway.close_sessions("pipeline_failure", 2)
    assert parse_sample(gateway.text()).server_errors == 3


def test_latency_buckets_are_summed_over_pipelines() -> None:
    gateway = FakeGateway()
    gateway.stream(4, 4, latency_s=0.03, pipeline="yolo")
    gateway.stream(2, 2, latency_s=0.03, pipeline="ocr")
    assert dict(parse_sample(gateway.text()).latency_buckets)[0.05] == 6


def test_restart_with_a_new_start_time_counts_the_new_process_from_zero() -> None:
    gateway = FakeGateway(started_at=100.0)
    gateway.stream(500, 500)
    before = parse_sample(gateway.text())
    gateway.restart(started_at=200.0)
    gateway.stream(600, 590)  # already above the old value: only the start time tells
    after = parse_sample(gateway.text())
    assert is_reset(before, after)
    delta = increase(before, after)
    assert (delta.received, delta.processed) == (600, 590)


def test_a_counter_going_down_is_a_reset_without_a_start_time() -> None:
    before = Sample(received=100, processed=90)
    after = Sample(received=20, processed=20)
    assert is_reset(before, after)
    assert increase(before, after) == Sample(received=20, processed=20)


def test_no_reset_is_a_plain_difference() -> None:
    gateway = FakeGateway()
    gateway.stream(10, 8)
    before = parse_sample(gateway.text())
    gateway.stream(5, 5)
    gateway.expire(1)
    delta = increase(before, parse_sample(gateway.text()))
    assert (delta.received, delta.processed, delta.expired) == (5, 5, 1)
