"""`framegate guard` against the real stack (`framegate up`: embedded Triton + API): quiet
through healthy streaming and 2x overload with its default thresholds; `framegate drill
--with-guard` for a hung Triton (the drill's own GUARD_TRIPS step holds the 45 s promise: the
test asserts what happened, the stall signal tripped it; sessions drained, verify off, the flag
stays off once Triton is back).

Phase lengths: FRAMEGATE_GUARD_PHASE_S (default 20 s, to keep CI cheap; the acceptance run
uses 45 s). The guard always runs with the product's default thresholds and windows.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from api.cli.main import app
from api.core.polling import poll_until
from api.flags.flagfile import describe, read_document
from api.ops.drill import START_STACK, STOP_STACK, VERIFY_OFF, VERIFY_ON
from api.ops.guard_drill import (
    FLAG_STAYS_OFF,
    GUARD_QUIET,
    GUARD_TRIPS,
    HANG_TRITON,
    RESUME_TRITON,
    SESSIONS_DRAINED,
    START_GUARD,
    STOP_GUARD,
    STREAM,
    GuardProcess,
    guard_rounds,
    guard_trips,
)
from api.ops.stack import LocalStack
from tests.ops.conftest import processes_mentioning

pytestmark = pytest.mark.triton

PHASE_S = float(os.environ.get("FRAMEGATE_GUARD_PHASE_S", "20"))
PIPELINE = "yolo"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    local = LocalStack(tmp_path_factory.mktemp("guard-stack"))
    try:
        local.start(timeout_s=400)
        yield local
    finally:
        local.stop()


@pytest.fixture
def guard(stack: LocalStack) -> Iterator[GuardProcess]:
    process = GuardProcess(stack, ())
    process.start()
    try:
        yield process
    finally:
        process.stop()


def loadtest(stack: LocalStack, out: Path, sessions: int, fps: float, duration: float) -> dict:
    command = [
        sys.executable, "-m", "api.cli.main", "loadtest",
        "--url", stack.url, "--pipeline", PIPELINE,
        "--sessions", str(sessions), "--fps", f"{fps:.3f}", "--duration", f"{duration:g}",
        "--no-progress", "--json", str(out),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=duration + 180)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(out.read_text())


def streaming_on(stack: LocalStack) -> bool | None:
    return describe(read_document(stack.flag_file)).value


def guard_samples(guard: GuardProcess) -> dict[str, float]:
    return asyncio.run(guard.samples())


def test_guard_stays_quiet_through_healthy_streaming_and_2x_overload(
    stack: LocalStack, guard: GuardProcess, tmp_path: Path
) -> None:
    poll_until(lambda: _can_scrape(guard), 60, what="the guard's /metrics")
    before = guard_rounds(guard_samples(guard), "judged")

    healthy = loadtest(stack, tmp_path / "healthy.json", sessions=4, fps=5, duration=PHASE_S)
    assert healthy["frames"]["processed"] > 0
    assert streaming_on(stack) is True

    probe = loadtest(stack, tmp_path / "saturate.json", sessions=16, fps=10, duration=8)
    saturation = probe["frames"]["processed"] / probe["wall_s"]
    assert probe["frames"]["dropped"] > 0, "the probe did not saturate the stack"
    overload = loadtest(
        stack, tmp_path / "overload.json", sessions=16, fps=2 * saturation / 16, duration=PHASE_S
    )
    assert overload["frames"]["dropped"] > 0  # over saturation: backpressure at work
    assert streaming_on(stack) is True

    samples = guard_samples(guard)
    assert guard_trips(samples) == 0, guard.trip_lines()
    assert guard.trip_lines() == []
    judged = guard_rounds(samples, "judged") - before
    assert judged >= PHASE_S / 2, f"the guard judged only {judged:g} rounds"  # it did look


def _can_scrape(guard: GuardProcess) -> bool:
    try:
        guard_samples(guard)
    except httpx.HTTPError:
        return False
    return True


GUARD_DRILL_STEPS = [
    START_STACK,
    VERIFY_ON,
    START_GUARD,
    STREAM,
    GUARD_QUIET,
    HANG_TRITON,
    GUARD_TRIPS,
    SESSIONS_DRAINED,
    RESUME_TRITON,
    VERIFY_OFF,
    FLAG_STAYS_OFF,
    STOP_GUARD,
    STOP_STACK,
]


def test_drill_with_guard_trips_on_a_hung_triton_and_the_flag_stays_off(tmp_path: Path) -> None:
    data_dir = tmp_path / "drill"
    report_path = tmp_path / "drill.json"
    args = ["drill", "--with-guard", "--pipeline", PIPELINE, "--data-dir", str(data_dir)]
    result = CliRunner().invoke(app, [*args, "--report", str(report_path)])
    report = json.loads(report_path.read_text())
    assert result.exit_code == 0, (report["failure"], result.output)
    assert [s["name"] for s in report["steps"]] == GUARD_DRILL_STEPS
    assert report["verifications"][VERIFY_OFF]["streaming"] == "off"
    trip_line = next(s for s in report["steps"] if s["name"] == GUARD_TRIPS)["detail"]
    assert ": stall " in trip_line  # a hung Triton: frames arrive, no result goes out
    assert describe(read_document(data_dir / "flags.json")).value is False
    assert processes_mentioning(str(data_dir.resolve())) == []
