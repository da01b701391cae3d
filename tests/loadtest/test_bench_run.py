"""`framegate bench run` end to end: a tiny smoke run of every row against the session's embedded
Triton (structure only: this machine's speed is not under test)."""

from __future__ import annotations

import os
import signal

import psutil
import pytest

from api.loadtest.bench.config import SCHEMA, BenchConfig
from api.loadtest.bench.report import BREAKDOWN_HEADER, markdown
from api.loadtest.bench.run import run_bench
from api.loadtest.bench.stack import CLIENT, GATEWAY, STUB, TRITONSERVER, columns


def _our_children() -> set[int]:
    return {p.pid for p in psutil.Process().children()}


@pytest.mark.triton
def test_smoke_run_every_row(triton) -> None:
    before = _our_children()
    config = BenchConfig(
        pipelines=("yolo",),
        duration_s=1.5,
        warmup_s=0.5,
        sessions=4,
        triton_url=triton.grpc_url,
        frames=8,
        budgets=(0.0,),
    )
    result = run_bench(config)
    assert result["schema"] == SCHEMA
    assert list(result["pipelines"]) == ["yolo"]
    run = result["pipelines"]["yolo"]
    rows = run["rows"]
    assert set(rows) == {*"abcde", "c0"}
    assert "no latency budget" in rows["c0"]["name"]
    for key, row in rows.items():
        assert row["frames"] > 0, key  # frames were processed and counted in the window
        assert row["frames_per_s"] == pytest.approx(row["frames"] / row["seconds"], rel=0.01), key
        assert row["result_errors"] == 0, key
        assert set(row["latency_ms"]) >= {"p50", "p99"}, key
        assert row["cpu_ms_per_frame"] > 0, key
    for key in "cde":
        assert rows[key]["offered_fps"] > 0
        assert rows[key]["detail"]["generator_cores"] > 0  # the client's own CPU
    assert set(run["ratios"]) == {"c/a", "c/b", "c/d", "c/e", "c0/a"}
    bars = run["bars"]
    assert bars["single_frame_latency_ms"]["count"] >= 5  # the run always measures 5 frames
    for name in ("half_load_bar", "overload_bar"):
        assert isinstance(bars[name]["met"], bool)
        assert bars[name]["met"] or bars[name]["why_missed"]
    assert result["machine"]["nproc"]

    # Where row c's CPU went: every process of the stack measured, the pipeline's own stubs busy.
    per = rows["c"]["detail"]["cpu"]["cpu_ms_per_result"]
    for role in (GATEWAY, TRITONSERVER, CLIENT, STUB + "pipeline_yolo"):
        assert per[role] > 0, role
    assert {STUB + "yolo", STUB + "ocr_rec"} <= set(per)  # the idle stage stubs are measured too
    # The CPU configs run the stages inline: the model's work shows in the pipeline's stubs.
    cells = columns(rows["c"]["detail"]["cpu"])
    assert cells.pipeline_stub is not None and cells.model_stubs is not None
    assert cells.pipeline_stub > 10 * cells.model_stubs
    assert 0 <= rows["c"]["detail"]["cpu"]["idle_fraction"] <= 1
    # Row e uses no Triton: only the naive gateway is its work.
    e_per = rows["e"]["detail"]["cpu"]["cpu_ms_per_result"]
    assert rows["e"]["cpu_ms_per_frame"] == pytest.approx(e_per[GATEWAY], abs=0.02)

    health = run["health"]
    assert health["sessions"] == 8 and health["requests"] == 200
    assert health["stream_results"] > 0
    assert isinstance(health["bar"]["met"], bool)

    text = markdown(result)
    assert "| c/a |" in text and "| c0/a |" in text and "STREAM_LATENCY_BUDGET_MS=80" in text
    assert "load generator (cores)" in text
    assert BREAKDOWN_HEADER in text and "| `yolo` |" in text
    assert "/health p99 with 8 sessions streaming flat out" in text
    leftover = _our_children() - before  # every API / naive gateway process was stopped
    for pid in leftover:
        os.kill(pid, signal.SIGKILL)
    assert not leftover
