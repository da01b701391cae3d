"""api/loadtest/bench/report.py: the markdown of a two-pipeline result, without servers."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from api.loadtest.bench import bars
from api.loadtest.bench.config import BenchConfig
from api.loadtest.bench.report import (
    BREAKDOWN_HEADER,
    DOC_HEADING,
    breakdown_table,
    health_table,
    markdown,
    replace_last_section,
)
from tests.loadtest.bench_fakes import make_row

CPU = {
    "cpu_ms_per_result": {
        "gateway": 2.04,
        "client": 0.96,
        "tritonserver": 1.5,
        "stub:yolo": 9.3,
        "stub:ocr_rec": 20.25,
        "stub:ocr_det": 0.01,
        "stub:pipeline_yolo_ocr": 3.0,
        "stub:pipeline_yolo": 0.02,
    },
    "idle_fraction": 0.153,
}


def _pipeline(health_p99: float | None = 3.0) -> dict:
    rows = {k: make_row(k, 30.0, 100.0, 20.0) for k in "abcde"}
    rows["c"].detail["cpu"] = CPU
    half = make_row("c50", 15.0, 90.0, 25.0, offered_fps=15.0)
    over = make_row("c200", 30.0, 400.0, 20.0, offered_fps=60.0, dropped=300)
    health = None
    if health_p99 is not None:
        health = {
            "sessions": 8,
            "requests": 200,
            "interval_ms": 10.0,
            "latency_ms": {"mean": 2.0, "p50": 1.5, "p90": 2.5, "p99": health_p99, "max": 9.0},
            "stream_results": 330,
            "stream_dropped": 70,
            "stream_results_per_s": 41.25,
            "stream_dropped_per_s": 8.75,
            "bar": bars.health_bar(health_p99, 200),
        }
    return {
        "rows": {k: r.as_dict() for k, r in rows.items()},
        "ratios": bars.ratios(rows),
        "bars": {
            "single_frame_latency_ms": {"p50": 60.0, "p99": 70.0, "count": 50},
            "half_load": half.as_dict(),
            "overload": over.as_dict(),
            "overload_factor": 2.0,
            "half_load_bar": bars.bar("half", 90.0, 60.0, 2.0, "x"),
            "overload_bar": bars.bar("over", 400.0, 60.0, 3.0, "batches take long"),
        },
        "health": health,
    }


def _result(**pipelines: dict) -> dict:
    return {
        "config": asdict(BenchConfig()),
        "machine": {
            "date_utc": "2026-11-29 16:00 UTC",
            "nproc": "2",
            "cpu": "AMD EPYC",
            "cpu_flags": "avx2",
        },
        "versions": {"triton": "2.51.0"},
        "pipelines": pipelines,
    }


def test_markdown_has_a_section_per_pipeline_with_its_own_rows_and_bars() -> None:
    text = markdown(_result(yolo=_pipeline(), yolo_ocr=_pipeline(80.0)), "framegate bench run")
    assert text.startswith(DOC_HEADING)
    assert text.index("### `yolo`") < text.index("### `yolo_ocr`")
    assert text.count("| c/e |") == 2 and text.count("| e | e |") == 2
    assert "**met**" in text and "**missed**: batches take long" in text
    assert "$ framegate bench run" in text and "tritonserver 2.51.0" in text


def test_markdown_adds_the_breakdown_and_health_sections() -> None:
    text = markdown(_result(yolo=_pipeline()), "framegate bench run")
    assert "### Where the CPU goes (row c)" in text and BREAKDOWN_HEADER in text
    assert "### /health p99 with 8 sessions streaming flat out" in text


def test_breakdown_row_is_ms_per_result_per_process_and_idle_cores() -> None:
    table = breakdown_table({"yolo_ocr": _pipeline()})
    assert table[0] == (
        "| pipeline | results/s | model stubs | pipeline stub | gateway | tritonserver | client "
        "| idle |"
    )
    # model stubs: yolo + ocr_rec + ocr_det (too small to name); pipeline stubs summed.
    assert table[2] == (
        "| `yolo_ocr` | 30.0 | 29.6 (ocr_rec 20.2, yolo 9.3) | 3.0 | 2.0 | 1.5 | 1.0 | 0.15 |"
    )


def test_breakdown_skips_pipelines_without_row_c() -> None:
    run = _pipeline()
    del run["rows"]["c"]
    assert breakdown_table({"yolo": run}) == []
    assert "Where the CPU goes" not in markdown(_result(yolo=run))


def test_health_rows_are_marked_met_or_missed() -> None:
    table = health_table({"yolo": _pipeline(3.0), "yolo_ocr": _pipeline(51.0)})
    assert table[2] == "| `yolo` | 8 | 200 | 1.5 | 3.0 | 41.2 | 8.8 | < 50 ms | **met** |"
    assert table[3].startswith("| `yolo_ocr` |") and table[3].endswith("| **missed** |")


def test_no_health_run_means_no_health_section() -> None:
    assert health_table({"yolo": _pipeline(None)}) == []
    assert "/health p99" not in markdown(_result(yolo=_pipeline(None)))


def test_replace_last_section_keeps_everything_before_it() -> None:
    doc = "# T\n\n## One\n\ntext\n\n## Last — not yet measured\n\nold\n"
    out = replace_last_section(doc, "## Last — measured\n\n### sub\n\nnew\n")
    assert out == "# T\n\n## One\n\ntext\n\n## Last — measured\n\n### sub\n\nnew\n"
    with pytest.raises(ValueError):
        replace_last_section("no sections", "x")


def test_the_machine_row_names_the_cpu_and_its_vector_flags() -> None:
    # Ratios are comparable between machines only with the CPU beside them (AVX-512 or not).
    assert "| machine | nproc 2, AMD EPYC, CPU flags `avx2`," in markdown(_result(yolo=_pipeline()))
