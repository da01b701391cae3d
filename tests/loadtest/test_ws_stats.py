"""The WebSocket load test's bookkeeping, without a server: schedule, reply accounting,
percentiles, timeline, the generator's warnings, and /metrics differencing."""

from __future__ import annotations

import math

import pytest
import typer

from api.cli.loadtest_cmd import parse_concurrency
from api.loadtest import server_metrics
from api.loadtest.ws_load import LoadConfig
from api.loadtest.ws_stats import (
    NO_REPLY,
    Schedule,
    SessionRecord,
    errors_by_code,
    frame_counts,
    generator_section,
    summarize,
    timeline,
)


def _result(index: int) -> dict:
    return {"frame_index": index, "result": {"detections": []}, "timing_ms": 1.0}


def _dropped(index: int) -> dict:
    return {"frame_index": index, "dropped": True}


def _record(sends: list[float], index: int = 0) -> SessionRecord:
    record = SessionRecord(index, connected=True)
    for t in sends:
        record.on_send(t, 0.0)
    return record


# --- schedule -----------------------------------------------------------------------------------


def test_schedule_counts_frames_per_session() -> None:
    schedule = Schedule(sessions=16, fps=5, duration_s=30)
    assert schedule.frames_per_session == 150
    assert schedule.planned == 2400


def test_schedule_staggers_session_starts_within_one_period() -> None:
    schedule = Schedule(sessions=4, fps=5, duration_s=1)
    assert [schedule.offset_s(i) for i in range(4)] == pytest.approx([0.0, 0.05, 0.10, 0.15])


def test_schedule_spaces_frames_by_the_period() -> None:
    schedule = Schedule(sessions=2, fps=10, duration_s=1)
    assert schedule.send_at(1, 3) == pytest.approx(0.05 + 0.3)
    assert schedule.span_s == pytest.approx(schedule.send_at(1, 9) + 0.1)


def test_schedule_sends_at_least_one_frame() -> None:
    assert Schedule(sessions=1, fps=1, duration_s=0.1).frames_per_session == 1


@pytest.mark.parametrize(("sessions", "fps", "duration"), [(0, 5, 1), (1, 0, 1), (1, 5, 0)])
def test_schedule_rejects_empty_runs(sessions: int, fps: float, duration: float) -> None:
    with pytest.raises(ValueError, match="sessions must be"):
        Schedule(sessions, fps, duration)


def test_schedule_lag_limit_is_the_smaller_of_50ms_and_half_a_period() -> None:
    assert Schedule(1, 5, 1).lag_warn_s() == pytest.approx(0.05)
    assert Schedule(1, 30, 1).lag_warn_s() == pytest.approx(0.5 / 30)


# --- reply accounting ---------------------------------------------------------------------------


def test_result_latency_is_send_to_receipt() -> None:
    record = _record([1.0, 1.2])
    record.on_message(_result(1), 1.5)
    assert record.latencies == pytest.approx([0.3])
    assert record.processed_at == [1.5]


def test_every_frame_ends_processed_dropped_or_outstanding() -> None:
    record = _record([0.0, 0.2, 0.4, 0.6])
    record.on_message(_dropped(0), 0.3)
    record.on_message(_result(1), 0.5)
    assert (record.sent, record.processed, record.dropped, record.outstanding) == (4, 1, 1, 2)


def test_second_reply_for_a_frame_is_a_violation() -> None:
    record = _record([0.0])
    record.on_message(_result(0), 0.1)
    record.on_message(_dropped(0), 0.2)
    assert (record.processed, record.dropped, record.violations) == (1, 0, 1)


@pytest.mark.parametrize("index", [5, -1, "0"])
def test_reply_for_a_frame_never_sent_is_a_violation(index: object) -> None:
    record = _record([0.0])
    record.on_message({"frame_index": index, "dropped": True}, 0.1)
    assert (record.dropped, record.violations, record.outstanding) == (0, 1, 1)


def test_reply_without_result_or_dropped_is_a_violation_and_leaves_the_frame_open() -> None:
    record = _record([0.0])
    record.on_message({"frame_index": 0}, 0.1)
    assert record.violations == 1
    record.on_message(_result(0), 0.2)
    assert record.processed == 1


def test_slow_down_is_counted_with_the_suggested_fps() -> None:
    record = _record([])
    record.on_message({"warning": "slow_down", "suggested_fps": 2.5}, 0.1)
    assert (record.slow_down, record.suggested_fps) == (1, 2.5)


def test_error_result_is_processed_and_counted() -> None:
    record = _record([0.0])
    record.on_message({"frame_index": 0, "result": {"error": "corrupt_jpeg", "detail": "x"}}, 1)
    assert (record.processed, record.result_errors) == (1, 1)


def test_first_session_error_wins() -> None:
    record = _record([0.0])
    record.on_message({"error": "streaming_disabled", "detail": "flag off"}, 0.1)
    record.fail("closed_1001")
    assert (record.error, record.detail) == ("streaming_disabled", "flag off")


def test_finish_marks_unanswered_frames_of_an_open_session_no_reply() -> None:
    record = _record([0.0, 0.2])
    record.on_message(_result(0), 0.1)
    record.finish()
    assert record.error == NO_REPLY


def test_finish_keeps_a_fully_answered_session_clean() -> None:
    record = _record([0.0])
    record.on_message(_dropped(0), 0.1)
    record.finish()
    assert record.error is None


def test_undo_send_forgets_a_frame_that_never_left() -> None:
    record = _record([0.0, 0.2])
    record.undo_send()
    assert (record.sent, len(record.lags), len(record.replied)) == (1, 1, 1)


def test_achieved_fps_is_processed_over_the_streaming_time() -> None:
    record = _record([0.0, 0.2, 0.4, 0.6, 0.8])  # 5 frames at 5 fps: one second streamed
    for i in range(3):
        record.on_message(_result(i), 1.0)
    assert record.achieved_fps(0.2) == pytest.approx(3.0)
    assert _record([]).achieved_fps(0.2) == 0.0


# --- aggregation --------------------------------------------------------------------------------


def _finished_run() -> tuple[Schedule, list[SessionRecord]]:
    schedule = Schedule(sessions=3, fps=5, duration_s=0.8)  # 4 frames each
    healthy = _record([0.0, 0.2, 0.4, 0.6], 0)
    for i, at in enumerate([0.1, 0.5, 0.6]):
        healthy.on_message(_result(i), at)
    healthy.on_message(_dropped(3), 0.7)
    failed = _record([0.05, 0.25], 1)
    failed.on_message(_result(0), 0.3)
    failed.on_message({"error": "pipeline_failure", "detail": "boom"}, 0.35)
    refused = SessionRecord(2)
    refused.fail("http_404", "upgrade refused")
    records = [healthy, failed, refused]
    for r in records:
        r.finish()
    return schedule, records


def test_counts_add_up_with_errors_and_unsent_frames() -> None:
    schedule, records = _finished_run()
    counts = frame_counts(schedule, records)
    assert counts == {
        "planned": 12,
        "sent": 6,
        "processed": 4,
        "dropped": 1,
        "errors": 1,
        "not_sent": 6,
        "error_results": 0,
    }
    assert counts["sent"] == counts["processed"] + counts["dropped"] + counts["errors"]


def test_errors_by_code_counts_sessions_and_their_unanswered_frames() -> None:
    _, records = _finished_run()
    assert errors_by_code(records) == {
        "http_404": {"sessions": 1, "frames": 0},
        "pipeline_failure": {"sessions": 1, "frames": 1},
    }


def test_summary_latency_percentiles_in_ms() -> None:
    schedule = Schedule(sessions=1, fps=1, duration_s=100)
    record = _record([float(i) for i in range(100)])
    for i in range(100):
        record.on_message(_result(i), i + (i + 1) / 1000)  # latencies 1..100 ms
    latency = summarize(schedule, [record])["latency_ms"]
    assert latency["count"] == 100
    assert latency["p50"] == pytest.approx(50.5)
    assert latency["p90"] == pytest.approx(90.1)
    assert latency["p99"] == pytest.approx(99.01)
    assert latency["max"] == pytest.approx(100.0)


def test_summary_fps_only_over_sessions_that_streamed() -> None:
    schedule, records = _finished_run()
    fps = summarize(schedule, records)["fps"]
    assert fps["offered"] == 15
    assert fps["per_session"]["max"] == pytest.approx(3.75)  # 3 results over 0.8 s
    assert fps["per_session"]["min"] == pytest.approx(2.5)  # 1 result over 0.4 s
    assert fps["total"] == pytest.approx(6.25)


def test_summary_sessions_section() -> None:
    schedule, records = _finished_run()
    assert summarize(schedule, records)["sessions"] == {
        "planned": 3,
        "connected": 2,
        "ended_with_error": 2,
    }


def test_summary_of_nothing_is_zeroes() -> None:
    summary = summarize(Schedule(1, 1, 1), [SessionRecord(0)])
    assert summary["latency_ms"]["p99"] == 0.0
    assert summary["fps"]["per_session"] == {"min": 0.0, "mean": 0.0, "max": 0.0}
    assert summary["timeline"] == []


def test_timeline_buckets_events_by_second() -> None:
    record = _record([0.1, 0.9, 1.5])
    record.on_message(_result(0), 0.3)  # 200 ms, bucket 0
    record.on_message(_dropped(1), 1.0)  # bucket 1
    record.on_message(_result(2), 2.5)  # 1000 ms, bucket 2
    buckets = timeline([record])
    assert [b["t"] for b in buckets] == [0, 1, 2]
    assert [(b["sent"], b["processed"], b["dropped"]) for b in buckets] == [
        (2, 1, 0),
        (1, 0, 1),
        (0, 1, 0),
    ]
    assert buckets[0]["latency_p50_ms"] == pytest.approx(200.0)
    assert buckets[1]["latency_p99_ms"] is None
    assert buckets[2]["latency_p99_ms"] == pytest.approx(1000.0)


# --- generator ----------------------------------------------------------------------------------


def test_generator_reports_share_of_one_core_while_sending_and_overall() -> None:
    g = generator_section((3.0, 30.0), (3.5, 35.0), 8, 1.0, Schedule(16, 5, 30))
    assert g["sending"] == {"cpu_s": 3.0, "wall_s": 30.0, "cores": 0.1, "percent_of_core": 10.0}
    assert g["whole_run"]["cores"] == 0.1
    assert (g["percent_of_core"], g["cpu_count"], g["warnings"]) == (10.0, 8, [])


def test_generator_warns_above_70_percent_of_a_core_while_sending() -> None:
    g = generator_section((22.0, 30.0), (22.0, 60.0), 8, 1.0, Schedule(16, 5, 30))
    assert len(g["warnings"]) == 1
    assert "73% of one core while sending" in g["warnings"][0]


def test_generator_warns_when_it_fell_behind_its_schedule() -> None:
    g = generator_section((1.0, 30.0), (1.0, 30.0), 8, 80.0, Schedule(16, 5, 30))
    assert g["warnings"] == [
        "the load generator fell behind its send schedule: lag p99 80.0 ms (> 50.0 ms)"
    ]


# --- /metrics -----------------------------------------------------------------------------------

_BEFORE = """
# TYPE framegate_batch_size histogram
framegate_batch_size_bucket{le="1.0",pipeline="yolo_ocr"} 2
framegate_batch_size_bucket{le="2.0",pipeline="yolo_ocr"} 2
framegate_batch_size_bucket{le="4.0",pipeline="yolo_ocr"} 2
framegate_batch_size_bucket{le="+Inf",pipeline="yolo_ocr"} 2
framegate_batch_size_count{pipeline="yolo_ocr"} 2
framegate_batch_size_sum{pipeline="yolo_ocr"} 2
# TYPE framegate_triton_request_seconds histogram
framegate_triton_request_seconds_bucket{le="0.1",pipeline="yolo_ocr"} 1
framegate_triton_request_seconds_bucket{le="0.2",pipeline="yolo_ocr"} 2
framegate_triton_request_seconds_bucket{le="+Inf",pipeline="yolo_ocr"} 2
framegate_triton_request_seconds_count{pipeline="yolo_ocr"} 2
framegate_triton_request_seconds_sum{pipeline="yolo_ocr"} 0.25
framegate_triton_request_seconds_bucket{le="0.1",pipeline="ocr"} 0
framegate_triton_request_seconds_bucket{le="0.2",pipeline="ocr"} 0
framegate_triton_request_seconds_bucket{le="+Inf",pipeline="ocr"} 5
framegate_triton_request_seconds_count{pipeline="ocr"} 5
framegate_triton_request_seconds_sum{pipeline="ocr"} 50
# TYPE framegate_stream_frames counter
framegate_stream_frames_total{outcome="received"} 10
framegate_stream_frames_total{outcome="processed"} 10
# TYPE framegate_stream_errors counter
framegate_stream_errors_total{code="idle_timeout"} 1
"""

_AFTER = """
# TYPE framegate_batch_size histogram
framegate_batch_size_bucket{le="1.0",pipeline="yolo_ocr"} 2
framegate_batch_size_bucket{le="2.0",pipeline="yolo_ocr"} 4
framegate_batch_size_bucket{le="4.0",pipeline="yolo_ocr"} 6
framegate_batch_size_bucket{le="+Inf",pipeline="yolo_ocr"} 6
framegate_batch_size_count{pipeline="yolo_ocr"} 6
framegate_batch_size_sum{pipeline="yolo_ocr"} 14
# TYPE framegate_triton_request_seconds histogram
framegate_triton_request_seconds_bucket{le="0.1",pipeline="yolo_ocr"} 1
framegate_triton_request_seconds_bucket{le="0.2",pipeline="yolo_ocr"} 6
framegate_triton_request_seconds_bucket{le="+Inf",pipeline="yolo_ocr"} 6
framegate_triton_request_seconds_count{pipeline="yolo_ocr"} 6
framegate_triton_request_seconds_sum{pipeline="yolo_ocr"} 0.85
framegate_triton_request_seconds_bucket{le="0.1",pipeline="ocr"} 0
framegate_triton_request_seconds_bucket{le="0.2",pipeline="ocr"} 0
framegate_triton_request_seconds_bucket{le="+Inf",pipeline="ocr"} 9
framegate_triton_request_seconds_count{pipeline="ocr"} 9
framegate_triton_request_seconds_sum{pipeline="ocr"} 90
# TYPE framegate_stream_frames counter
framegate_stream_frames_total{outcome="received"} 30
framegate_stream_frames_total{outcome="processed"} 24
framegate_stream_frames_total{outcome="dropped"} 6
# TYPE framegate_stream_slowdown counter
framegate_stream_slowdown_total 2
# TYPE framegate_stream_errors counter
framegate_stream_errors_total{code="idle_timeout"} 1
"""


def _server() -> dict:
    before, after = server_metrics.parse(_BEFORE), server_metrics.parse(_AFTER)
    return server_metrics.server_section(before, after, "yolo_ocr")


def test_server_batch_size_mean_is_the_difference() -> None:
    assert _server()["batch_size"] == {
        "batches": 4,
        "frames": 12,
        "mean": 3.0,
    }


def test_histogram_quantile_interpolates_inside_the_bucket() -> None:
    cumulative = [(1.0, 0), (2.0, 2), (4.0, 4), (math.inf, 4)]
    assert server_metrics.histogram_quantile(0.5, cumulative) == pytest.approx(2.0)
    assert server_metrics.histogram_quantile(0.99, cumulative) == pytest.approx(3.96)


def test_server_triton_latency_only_for_the_pipeline() -> None:
    triton = _server()["triton_request_ms"]
    assert triton["count"] == 4
    assert triton["mean"] == pytest.approx(150.0)
    assert triton["p50"] == pytest.approx(150.0)  # rank 2 of 4, all in (100, 200] ms
    assert triton["p99"] == pytest.approx(199.0)
    assert (triton["last_bound"], triton["above_last_bound"]) == (200.0, 0)


def test_server_histogram_counts_observations_above_the_last_bucket() -> None:
    before, after = server_metrics.parse(_BEFORE), server_metrics.parse(_AFTER)
    ocr = server_metrics.server_section(before, after, "ocr")["triton_request_ms"]
    assert (ocr["count"], ocr["above_last_bound"], ocr["p99"]) == (4, 4, 200.0)


def test_server_counters_are_differences_without_zero_entries() -> None:
    server = _server()
    assert server["stream_frames"] == {"dropped": 6, "processed": 14, "received": 20}
    assert server["slow_down"] == 2
    assert server["errors_by_code"] == {}


def test_histogram_quantile_in_the_inf_bucket_is_the_last_finite_bound() -> None:
    assert server_metrics.histogram_quantile(0.99, [(0.1, 1), (0.2, 1), (math.inf, 10)]) == 0.2


def test_histogram_quantile_without_observations_is_none() -> None:
    assert server_metrics.histogram_quantile(0.5, [(0.1, 0), (math.inf, 0)]) is None
    assert server_metrics.histogram_quantile(0.5, []) is None


# --- URLs and CLI parsing -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "stream", "metrics"),
    [
        (
            "ws://127.0.0.1:8000",
            "ws://127.0.0.1:8000/ws/video/stream?pipeline_id=yolo_ocr",
            "http://127.0.0.1:8000/metrics",
        ),
        (
            "https://gw.example/base/",
            "wss://gw.example/base/ws/video/stream?pipeline_id=yolo_ocr",
            "https://gw.example/base/metrics",
        ),
    ],
)
def test_config_urls(url: str, stream: str, metrics: str) -> None:
    config = LoadConfig(url, "yolo_ocr", 1, 1, 1)
    assert (config.stream_url(), config.scrape_url()) == (stream, metrics)


def test_config_sends_the_token_as_bearer() -> None:
    assert LoadConfig("ws://h", "yolo", 1, 1, 1, token="t").headers() == {
        "Authorization": "Bearer t"
    }


@pytest.mark.parametrize(
    ("text", "levels"),
    [
        ("8", [8]),
        ("1,4,2", [1, 4, 2]),
        ("1:32", [1, 2, 4, 8, 16, 32]),
        ("1:24", [1, 2, 4, 8, 16, 24]),
        ("2:8:3", [2, 5, 8]),
    ],
)
def test_parse_concurrency(text: str, levels: list[int]) -> None:
    assert parse_concurrency(text) == levels


@pytest.mark.parametrize("text", ["", "0", "a", "1:2:3:4", "4:1", "1:8:0", "0:4"])
def test_parse_concurrency_rejects(text: str) -> None:
    with pytest.raises(typer.BadParameter):
        parse_concurrency(text)
