"""`framegate drill`: end to end against the stack it starts itself, and its failure modes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from api.core import processes
from api.core.polling import poll_until
from api.ops.drill import (
    FLIP_OFF,
    FLIP_ON,
    SESSION_CLOSED,
    START_STACK,
    STOP_STACK,
    STREAM,
    STREAMING_BACK,
    UPGRADES_REFUSED,
    VERIFY_OFF,
    VERIFY_ON,
    VERIFY_ON_AGAIN,
)
from tests.ops.conftest import framegate, processes_mentioning, upgrade
from tests.support.api_server import ApiServer

pytestmark = pytest.mark.triton  # framegate drill starts the whole local stack

LOCAL_STEPS = [
    START_STACK,
    VERIFY_ON,
    STREAM,
    FLIP_OFF,
    SESSION_CLOSED,
    UPGRADES_REFUSED,
    VERIFY_OFF,
    FLIP_ON,
    STREAMING_BACK,
    VERIFY_ON_AGAIN,
    STOP_STACK,
]


def test_drill_passes_against_the_local_stack_and_leaves_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "stack"
    report_path = tmp_path / "drill.json"
    result = framegate("drill", "--data-dir", str(data_dir), "--report", str(report_path))
    assert result.exit_code == 0, result.output
    report = json.loads(report_path.read_text())
    assert report["ok"] is True, report["failure"]
    assert report["local_stack"] is True
    assert report["data_dir"] == str(data_dir.resolve())
    assert [s["name"] for s in report["steps"]] == LOCAL_STEPS
    assert [s["step"] for s in report["steps"]] == list(range(1, len(LOCAL_STEPS) + 1))
    timings = report["timings"]
    assert 0 < timings["close_live_session_s"] <= 2.0
    assert 0 < timings["until_404_s"] <= 10.0
    assert 0 < timings["until_back_on_s"] <= 10.0
    verifications = report["verifications"]
    assert [v["streaming"] for v in verifications.values()] == ["on", "off", "on"]
    assert all(v["ok"] for v in verifications.values())
    assert "drill passed" in result.stdout
    assert processes_mentioning(str(data_dir.resolve())) == []


def test_drill_fails_when_the_flip_does_not_reach_the_server(
    gateway: ApiServer, tmp_path: Path
) -> None:
    wrong = tmp_path / "not-the-servers-flags.json"
    result = framegate(
        "drill", "--url", gateway.http, "--flag-file", str(wrong), "--json", "--timeout", "20"
    )
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    failed = [s for s in report["steps"] if not s["ok"]]
    assert [s["name"] for s in failed] == [SESSION_CLOSED]
    assert report["failure"].startswith(
        f"step 4 '{SESSION_CLOSED}' failed: the live session was still open 2s after the flag "
        f"was turned off in {wrong}; the server reads its flags from file {gateway.flag_file}"
    )
    assert "drill FAILED: step 4 'live session closed' failed" in result.stderr
    assert not wrong.exists()  # the drill put the file back as it found it (absent)
    assert upgrade(gateway) == 101  # the server's own flag was never touched


def test_drill_url_needs_a_flag_file() -> None:
    result = framegate("drill", "--url", "http://127.0.0.1:8000")
    assert result.exit_code == 2
    assert "--url and --flag-file go together" in result.output


DRILL_MAIN = "import typer; from api.cli.drill_cmd import drill; typer.run(drill)"


def _start_drill(data_dir: Path) -> psutil.Popen:
    return processes.spawn(
        [sys.executable, "-c", DRILL_MAIN, "--data-dir", str(data_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        die_with_parent=True,
        default_sigint=True,
    )


def _interrupt(process: psutil.Popen, sig: int) -> tuple[int, str]:
    try:
        process.send_signal(sig)
        _, stderr = process.communicate(timeout=60)
    finally:
        processes.kill(process)
    return process.returncode, stderr.decode()


def test_drill_ctrl_c_while_starting_stops_everything(tmp_path: Path) -> None:
    data_dir = (tmp_path / "stack").resolve()
    process = _start_drill(data_dir)
    # Interrupt while Triton loads its models: `framegate up` and tritonserver both exist.
    backends = str(data_dir / "triton" / "backends")
    poll_until(lambda: len(processes_mentioning(backends)) > 0, 60, what="tritonserver to start")
    code, stderr = _interrupt(process, signal.SIGINT)
    assert code == 130, stderr
    assert "drill interrupted" in stderr
    assert processes_mentioning(str(data_dir)) == []


def test_drill_sigterm_mid_drill_stops_everything(tmp_path: Path) -> None:
    data_dir = (tmp_path / "stack").resolve()
    process = _start_drill(data_dir)
    assert process.stderr is not None
    for line in process.stderr:  # progress lines, one per step
        if f"2. {VERIFY_ON} " in line.decode():
            break
    code, stderr = _interrupt(process, signal.SIGTERM)
    assert code == 130, stderr
    assert "drill interrupted" in stderr
    assert processes_mentioning(str(data_dir)) == []
