"""`framegate bench run`: the ratio and bar logic without servers, and a tiny smoke run of every
row against the session's embedded Triton (structure only: this machine's speed is not under
test)."""

from __future__ import annotations

import os
import signal

import pytest

from api.loadtest import bench
from api.loadtest.bench import BenchConfig, Row


def _row(key: str, fps: float, p99: float, cpu_ms: float, **kw) -> Row:
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


def test_ratios_are_c_over_each_other_row() -> None:
    rows = {
        "a": _row("a", 40.0, 100.0, 20.0),
        "b": _row("b", 32.0, 200.0, 25.0),
        "c": _row("c", 30.0, 300.0, 30.0),
        "d": _row("d", 20.0, 600.0, 40.0),
        "e": _row("e", 15.0, 3000.0, 20.0),
    }
    r = bench.ratios(rows)
    assert list(r) == ["c/a", "c/b", "c/d", "c/e"]
    assert r["c/a"] == {"frames_per_s": 0.75, "p99_ms": 3.0, "cpu_ms_per_frame": 1.5}
    assert r["c/d"]["frames_per_s"] == 1.5
    assert r["c/e"]["p99_ms"] == 0.1
    assert bench.ratios({"a": rows["a"]}) == {}  # no c: nothing to compare
    assert "c/b" not in bench.ratios({"a": rows["a"], "c": rows["c"]})


def test_ratio_of_zero_is_none() -> None:
    assert bench.ratio(1.0, 0.0) is None
    assert bench.ratio(3.0, 2.0) == 1.5


def test_bar_met_and_missed() -> None:
    met = bench.bar("half", 40.0, 20.0, 2.0, "never shown")
    assert met["met"] is True and met["ratio"] == 2.0 and met["why_missed"] == ""
    missed = bench.bar("over", 100.0, 20.0, 3.0, "batches take long")
    assert missed["met"] is False and missed["ratio"] == 5.0
    assert missed["why_missed"] == "batches take long"
    assert bench.bar("edge", 40.1, 20.0, 2.0, "just over")["met"] is False
    assert bench.bar("none", 10.0, 0.0, 2.0, "no single-frame latency")["met"] is False


def test_explanations_name_the_numbers() -> None:
    over = _row("c", 30.0, 500.0, 30.0, dropped=300)
    text = bench.explain_overload(over, 60.0, 240.0, budget_ms=250)
    assert "500 ms" in text and "60 ms" in text and "240 ms" in text
    assert "STREAM_LATENCY_BUDGET_MS=250" in text
    assert "Little's law" in bench.explain_overload(over, 60.0, None, budget_ms=0)
    half = _row("c50", 15.0, 200.0, 30.0, detail={"batch_size_mean": 3.5})
    assert "3.5" in bench.explain_half_load(half, 60.0, 120.0)


def test_replace_last_section_keeps_everything_before_it() -> None:
    doc = "# T\n\n## One\n\ntext\n\n## Last — not yet measured\n\nold\n"
    out = bench.replace_last_section(doc, "## Last — measured\n\nnew\n")
    assert out == "# T\n\n## One\n\ntext\n\n## Last — measured\n\nnew\n"
    with pytest.raises(ValueError):
        bench.replace_last_section("no sections", "x")


def test_markdown_marks_bars() -> None:
    rows = {k: _row(k, 30.0, 100.0, 20.0) for k in "abcde"}
    half = _row("c50", 15.0, 90.0, 25.0, offered_fps=15.0)
    over = _row("c200", 30.0, 400.0, 20.0, offered_fps=60.0, dropped=300)
    result = {
        "config": BenchConfig().__dict__,
        "machine": {"date_utc": "2026-11-29 16:00 UTC", "nproc": "2"},
        "versions": {"triton": "2.51.0"},
        "rows": {k: r.as_dict() for k, r in rows.items()},
        "ratios": bench.ratios(rows),
        "bars": {
            "single_frame_latency_ms": {"p50": 60.0, "p99": 70.0, "count": 50},
            "half_load": half.as_dict(),
            "overload": over.as_dict(),
            "overload_factor": 2.0,
            "half_load_bar": bench.bar("half", 90.0, 60.0, 2.0, "x"),
            "overload_bar": bench.bar("over", 400.0, 60.0, 3.0, "batches take long"),
        },
    }
    text = bench.markdown(result, "framegate bench run")
    assert text.startswith(bench.DOC_HEADING)
    assert "| c/e |" in text and "| e | e |" in text
    assert "**met**" in text and "**missed**: batches take long" in text


def _our_children() -> set[int]:
    """Live processes whose parent is this test process."""
    me = os.getpid()
    out = set()
    for pid in bench._pids():
        try:
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == me:
            out.add(pid)
    return out


@pytest.mark.triton
def test_smoke_run_every_row(triton) -> None:
    before = _our_children()
    config = BenchConfig(
        pipeline="yolo",
        duration_s=1.5,
        warmup_s=0.5,
        sessions=4,
        triton_url=triton.grpc_url,
        frames=8,
        budgets=(0.0,),
    )
    result = bench.run_bench(config)
    assert result["schema"] == bench.SCHEMA
    assert set(result["rows"]) == {*"abcde", "c0"}
    assert "no latency budget" in result["rows"]["c0"]["name"]
    for key, row in result["rows"].items():
        assert row["frames"] > 0, key
        assert row["frames_per_s"] > 0, key
        assert row["result_errors"] == 0, key
        assert row["latency_ms"]["p99"] > 0, key
        assert row["cpu_ms_per_frame"] > 0, key
    for key in "cde":
        assert result["rows"][key]["offered_fps"] > 0
        assert result["rows"][key]["detail"]["generator_cores"] > 0  # the client's own CPU
    assert set(result["ratios"]) == {"c/a", "c/b", "c/d", "c/e", "c0/a"}
    bars = result["bars"]
    assert bars["single_frame_latency_ms"]["count"] > 0
    for name in ("half_load_bar", "overload_bar"):
        assert isinstance(bars[name]["met"], bool)
        assert bars[name]["met"] or bars[name]["why_missed"]
    assert result["machine"]["nproc"]
    text = bench.markdown(result)
    assert "| c/a |" in text and "| c0/a |" in text and "STREAM_LATENCY_BUDGET_MS=80" in text
    assert "load generator (cores)" in text
    leftover = _our_children() - before  # every API / naive gateway process was stopped
    for pid in leftover:
        os.kill(pid, signal.SIGKILL)
    assert not leftover


def test_api_env_pins_the_latency_budget_of_each_row(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("STREAM_LATENCY_BUDGET_MS", "999")  # must not leak into a row
    default = bench.api_env("127.0.0.1:1", tmp_path / "c", batching=True)
    assert default["STREAM_LATENCY_BUDGET_MS"] == f"{bench.default_budget_ms():g}" == "80"
    off = bench.api_env("127.0.0.1:1", tmp_path / "c0", batching=True, budget_ms=0)
    assert off["STREAM_LATENCY_BUDGET_MS"] == "0"
    unbatched = bench.api_env("127.0.0.1:1", tmp_path / "d", batching=False)
    assert unbatched["BATCH_MAX_SIZE"] == "1"


def test_throughput_bars_are_marked_met_or_missed() -> None:
    from api.loadtest.bench import throughput_verdict

    assert throughput_verdict("c/a", 0.81) == "≥ 0.85: **missed**"
    assert throughput_verdict("c/a", 0.9) == "≥ 0.85: **met**"
    assert throughput_verdict("c/d", 1.3) == "≥ 1.3: **met**"
    assert throughput_verdict("c/e", 5.0) == ""
