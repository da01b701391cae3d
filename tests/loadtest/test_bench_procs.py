"""api/loadtest/bench/procs.py: each row's gateway environment."""

from __future__ import annotations

from api.loadtest.bench.procs import api_env, default_budget_ms


def test_api_env_pins_the_latency_budget_of_each_row(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("STREAM_LATENCY_BUDGET_MS", "999")  # must not leak into a row
    default = api_env("127.0.0.1:1", tmp_path / "c", batching=True)
    assert default["STREAM_LATENCY_BUDGET_MS"] == f"{default_budget_ms():g}" == "80"
    off = api_env("127.0.0.1:1", tmp_path / "c0", batching=True, budget_ms=0)
    assert off["STREAM_LATENCY_BUDGET_MS"] == "0"


def test_api_env_without_batching_sends_one_frame_per_request(tmp_path) -> None:
    unbatched = api_env("127.0.0.1:1", tmp_path / "d", batching=False)
    assert unbatched["BATCH_MAX_SIZE"] == "1"
    assert "BATCH_MAX_SIZE" not in api_env("127.0.0.1:1", tmp_path / "c", batching=True)


def test_api_env_turns_streaming_on_from_a_flag_file(tmp_path) -> None:
    env = api_env("127.0.0.1:1", tmp_path / "c", batching=True)
    assert env["FLAG_PROVIDER"] == "file" and env["ROLE"] == "stream"
    assert (tmp_path / "c" / "flags.json").exists()
