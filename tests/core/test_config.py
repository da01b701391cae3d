"""Settings checked at startup (api/core/config.py): each value alone and against the others, and
one line naming the environment variables when they are wrong."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from api.core.config import EX_CONFIG, Settings, explain, load_settings
from api.pipelines_spec import PIPELINES
from api.streaming.backpressure import DropWindow, PressureTracker

# Hypothesis: no example database in the checkout, and no per-example deadline (no wall clock).
PROPERTY = settings(database=None, deadline=None, max_examples=200)
fraction = st.floats(0, 1, allow_nan=False)


def problem(**values: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        Settings(**values)
    return explain(caught.value)


def test_defaults_are_consistent() -> None:
    assert Settings().contradictions() == []


def test_drop_threshold_above_slowdown_threshold_rejected() -> None:
    assert problem(stream_drop_threshold=0.5, stream_slowdown_threshold=0.3) == (
        "STREAM_DROP_THRESHOLD (0.5) must be <= STREAM_SLOWDOWN_THRESHOLD (0.3)"
    )


def test_drop_threshold_equal_to_slowdown_threshold_accepted() -> None:
    Settings(stream_drop_threshold=0.3, stream_slowdown_threshold=0.3)


def test_threshold_out_of_range_names_the_variable() -> None:
    assert problem(stream_drop_threshold="5").startswith("STREAM_DROP_THRESHOLD=5: ")


def test_batch_delay_not_under_latency_budget_rejected() -> None:
    assert problem(batch_max_delay_ms=80, stream_latency_budget_ms=80).startswith(
        "BATCH_MAX_DELAY_MS (80) must be < STREAM_LATENCY_BUDGET_MS (80) unless the budget is 0"
    )


@pytest.mark.parametrize(
    "unbudgeted",
    [{"stream_latency_budget_ms": 0}, {"role": "jobs"}, {"streaming_router": False}],
)
def test_batch_delay_free_where_no_budget_applies(unbudgeted: dict[str, Any]) -> None:
    assert Settings(batch_max_delay_ms=500, **unbudgeted).live_latency_budget_s is None


def test_triton_timeout_beyond_an_hour_rejected() -> None:
    """gRPC fails every call at once whose deadline lies that far ahead (tests/inference)."""
    assert problem(triton_timeout_s="1e10").startswith("TRITON_TIMEOUT_S=1e10: ")
    assert Settings(triton_timeout_s=3600).triton_timeout_s == 3600


def test_latency_budget_beyond_triton_timeout_rejected() -> None:
    assert problem(stream_latency_budget_ms=3000, triton_timeout_s=2).startswith(
        "STREAM_LATENCY_BUDGET_MS (3000) must be <= TRITON_TIMEOUT_S (2 s)"
    )


def test_retry_initial_above_retry_max_rejected() -> None:
    assert problem(jobs_retry_initial_s=5, jobs_retry_max_s=1) == (
        "JOBS_RETRY_INITIAL_S (5) must be <= JOBS_RETRY_MAX_S (1)"
    )


def test_every_contradiction_reported_at_once() -> None:
    line = problem(
        stream_drop_threshold=0.5, stream_slowdown_threshold=0.3, jobs_retry_initial_s=5,
        jobs_retry_max_s=1,
    )  # fmt: skip
    assert "STREAM_DROP_THRESHOLD" in line and "; JOBS_RETRY_INITIAL_S" in line


def test_batch_size_above_a_pipeline_limit_rejected() -> None:
    limit = min(p.max_batch_size for p in PIPELINES.values())
    line = problem(batch_max_size=limit + 1)
    assert line.startswith(f"BATCH_MAX_SIZE={limit + 1}: must be <= every pipeline's ")
    assert all(f"{p.id} {p.max_batch_size}" in line for p in PIPELINES.values())


def test_batch_size_at_every_pipeline_limit_accepted() -> None:
    Settings(batch_max_size=min(p.max_batch_size for p in PIPELINES.values()))


@pytest.mark.parametrize("port", [0, 65536])
def test_flagd_port_out_of_range_rejected(port: int) -> None:
    assert problem(flagd_port=port).startswith(f"FLAGD_PORT={port}: ")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("triton", "is not host:port"),
        ("triton:70000", "port out of range 1-65535"),
        (" , ", "names no server"),
        ("dns:///triton", "is not host:port"),
    ],
)
def test_triton_url_unparseable_rejected(url: str, reason: str) -> None:
    line = problem(triton_url=url)
    assert line.startswith("TRITON_URL=") and reason in line


def test_log_level_normalised() -> None:
    assert Settings(log_level="debug").log_level == "DEBUG"


def test_log_level_unknown_rejected() -> None:
    assert problem(log_level="loud") == (
        "LOG_LEVEL=loud: not a log level (one of DEBUG, INFO, WARNING, ERROR, CRITICAL)"
    )


def test_secret_value_never_echoed() -> None:
    assert problem(stream_auth_token=12345).startswith("STREAM_AUTH_TOKEN: ")


def test_problem_is_one_line_whatever_the_values() -> None:
    assert "\n" not in problem(log_level="a\nb", flagd_port="x\ny")


def test_environment_read_and_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAM_DROP_THRESHOLD", "0.9")
    assert problem() == "STREAM_DROP_THRESHOLD (0.9) must be <= STREAM_SLOWDOWN_THRESHOLD (0.3)"


def test_load_settings_exits_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STREAM_DROP_THRESHOLD", "0.9")
    with pytest.raises(SystemExit) as caught:
        load_settings()
    assert caught.value.code == EX_CONFIG
    assert capsys.readouterr().err == (
        "framegate: invalid settings: "
        "STREAM_DROP_THRESHOLD (0.9) must be <= STREAM_SLOWDOWN_THRESHOLD (0.3)\n"
    )


def test_load_settings_overrides_are_checked(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        load_settings(triton_url="nowhere")
    assert capsys.readouterr().err.startswith("framegate: invalid settings: TRITON_URL=nowhere: ")


@PROPERTY
@given(drop=fraction, slowdown=fraction)
def test_threshold_pair_accepted_iff_the_tracker_accepts_it(drop: float, slowdown: float) -> None:
    """The settings let through exactly the pairs a session's tracker can run with (the defect:
    a reversed pair passed startup and then failed every session with a bare 1011)."""
    try:
        PressureTracker(DropWindow(), drop, slowdown)
        tracker_ok = True
    except ValueError:
        tracker_ok = False
    try:
        Settings(stream_drop_threshold=drop, stream_slowdown_threshold=slowdown)
        settings_ok = True
    except ValidationError:
        settings_ok = False
    assert settings_ok == tracker_ok == (drop <= slowdown)


@PROPERTY
@given(
    drop=fraction,
    slowdown=fraction,
    delay_ms=st.floats(0, 200, allow_nan=False),
    budget_ms=st.one_of(st.just(0.0), st.floats(0.01, 5000)),  # 0 is off, no subnormals
    timeout_s=st.floats(0.01, 5, allow_nan=False),
    retry=st.tuples(st.floats(0.01, 60), st.floats(0.01, 60)),
    role=st.sampled_from(["all", "stream", "jobs"]),
)
def test_settings_rejected_exactly_for_broken_rules_and_name_them(
    drop: float,
    slowdown: float,
    delay_ms: float,
    budget_ms: float,
    timeout_s: float,
    retry: tuple[float, float],
    role: str,
) -> None:
    live = budget_ms > 0 and role != "jobs"
    broken = {
        "STREAM_DROP_THRESHOLD": drop > slowdown,
        "BATCH_MAX_DELAY_MS": live and delay_ms >= budget_ms,
        "STREAM_LATENCY_BUDGET_MS": live and budget_ms / 1000 > timeout_s,
        "JOBS_RETRY_INITIAL_S": retry[0] > retry[1],
    }
    values = {
        "stream_drop_threshold": drop,
        "stream_slowdown_threshold": slowdown,
        "batch_max_delay_ms": delay_ms,
        "stream_latency_budget_ms": budget_ms,
        "triton_timeout_s": timeout_s,
        "jobs_retry_initial_s": retry[0],
        "jobs_retry_max_s": retry[1],
        "role": role,
    }
    if not any(broken.values()):
        Settings(**values)
        return
    line = problem(**values)
    leading = {part.split(" (", 1)[0] for part in line.split("; ")}  # each names its rule first
    assert leading == {name for name, is_broken in broken.items() if is_broken}
