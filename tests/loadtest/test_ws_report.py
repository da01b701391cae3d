"""Rendering of load-test reports: the summary table, the Triton table, and the optional plot."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from api.cli.loadtest_cmd import app as loadtest_app
from api.loadtest import server_metrics
from api.loadtest.measure import Measurement
from api.loadtest.ws_load import Progress
from api.loadtest.ws_report import (
    PLOT_HINT,
    PlotUnavailable,
    check_plot_available,
    progress_line,
    triton_table,
    write_plot,
    ws_table,
)
from api.loadtest.ws_stats import Schedule, SessionRecord, generator_section, summarize

METRICS = """
# TYPE framegate_batch_size histogram
framegate_batch_size_bucket{le="4.0",pipeline="yolo_ocr"} 3
framegate_batch_size_bucket{le="+Inf",pipeline="yolo_ocr"} 3
framegate_batch_size_count{pipeline="yolo_ocr"} 3
framegate_batch_size_sum{pipeline="yolo_ocr"} 9
# TYPE framegate_triton_request_seconds histogram
framegate_triton_request_seconds_bucket{le="6.4",pipeline="yolo_ocr"} 1
framegate_triton_request_seconds_bucket{le="+Inf",pipeline="yolo_ocr"} 3
framegate_triton_request_seconds_count{pipeline="yolo_ocr"} 3
framegate_triton_request_seconds_sum{pipeline="yolo_ocr"} 30
"""


def render(renderable: object) -> str:
    buffer = io.StringIO()
    Console(file=buffer, width=200).print(renderable)
    return buffer.getvalue()


def sample_report(server_available: bool = True) -> dict:
    schedule = Schedule(sessions=2, fps=5, duration_s=1)
    records = [SessionRecord(0, connected=True), SessionRecord(1, connected=True)]
    for i in range(5):
        records[0].on_send(i * 0.2, 0.001)
        records[0].on_message({"frame_index": i, "result": {}}, i * 0.2 + 0.15)
    records[1].on_send(0.1, 0.002)
    records[1].on_message({"error": "pipeline_failure", "detail": "[boom]"}, 0.2)
    if server_available:
        empty, samples = server_metrics.parse(""), server_metrics.parse(METRICS)
        server = server_metrics.server_section(empty, samples, "yolo_ocr")
    else:
        server = server_metrics.unavailable("http://h/metrics", "ConnectError: [refused]")
    generator = generator_section((0.5, 1.2), (0.6, 1.5), 4, 2.0, schedule)
    return {
        "config": {
            "pipeline": "yolo_ocr",
            "sessions": 2,
            "fps": 5.0,
            "duration_s": 1.0,
            "stream_url": "ws://h/ws/video/stream?pipeline_id=yolo_ocr",
        },
        **summarize(schedule, records),
        "server": server,
        "generator": generator,
        "warnings": generator["warnings"],
    }


def test_table_shows_counts_fps_latency_and_errors() -> None:
    text = render(ws_table(sample_report()))
    assert "sent 6 = processed 5 + dropped 0 + errors 1" in text
    assert "per session min 0.00 / mean 2.50 / max 5.00" in text
    assert "p50 150 / p90 150 / p99 150 / max 150" in text
    assert "pipeline_failure 1 session(s), 1 frame(s)" in text


def test_table_shows_the_server_view_and_marks_overflowing_quantiles() -> None:
    text = render(ws_table(sample_report()))
    assert "mean 3.00 over 3 batches (9 frames)" in text
    assert "p50 ≥6400 / p99 ≥6400 / mean 10000.0" in text


def test_table_shows_the_generator_cost_and_core_count() -> None:
    text = render(ws_table(sample_report()))
    assert "CPU while sending 0.50 s / 1.2 s = 41.7% of one core" in text
    assert "os.cpu_count() 4" in text


def test_table_says_why_server_metrics_are_missing() -> None:
    text = render(ws_table(sample_report(server_available=False)))
    assert "unavailable: ConnectError: [refused]" in text


def test_progress_line_names_the_phase() -> None:
    sending = Progress(1.0, 10.0, 20, 5, 10, 0, 5, 4.0, sending=4, live=4)
    draining = Progress(11.0, 10.0, 40, 20, 15, 0, 5, 4.0, sending=0, live=2)
    assert "(4 live, 4 sending)" in render(progress_line(sending))
    assert "(2 live, draining, 5 replies owed)" in render(progress_line(draining))


def test_triton_table_has_a_row_per_level() -> None:
    rows = [
        Measurement(
            "triton", "pipeline yolo", 1, c, 10, 10, 1.0, 10.0 * c,
            {"mean": 1.0, "p50": 1.0, "p90": 2.0, "p99": 3.0, "max": 4.0},
        )
        for c in (1, 2, 4)
    ]  # fmt: skip
    text = render(triton_table(rows, "pipeline_yolo"))
    assert [line.split()[1] for line in text.splitlines() if "│ " in line] == ["1", "2", "4"]


def test_plot_writes_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    path = write_plot(sample_report(), tmp_path / "plots" / "run.png")
    assert path.read_bytes().startswith(b"\x89PNG")


def test_missing_matplotlib_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(PlotUnavailable, match="framegate\\[plot\\]"):
        check_plot_available()


def test_cli_checks_for_matplotlib_before_the_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    cli = typer.Typer()
    cli.add_typer(loadtest_app, name="loadtest")
    result = CliRunner().invoke(cli, ["loadtest", "--plot", str(tmp_path / "p.png")])
    assert result.exit_code == 2
    assert PLOT_HINT in result.output.replace("\n", "")
