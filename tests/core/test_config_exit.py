"""Contradictory settings stop the real processes before anything starts: exit status EX_CONFIG
and one line naming the variables, no traceback (api/core/config.py `load_settings`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from api.core.config import EX_CONFIG
from tests.support.ports import free_port, free_ports

pytestmark = pytest.mark.triton  # real subprocesses

HANG_GUARD_S = 120  # a process that ignored the settings would serve until killed
CONTRADICTION = {"STREAM_DROP_THRESHOLD": "0.5", "STREAM_SLOWDOWN_THRESHOLD": "0.3"}
LINE = (
    "framegate: invalid settings: "
    "STREAM_DROP_THRESHOLD (0.5) must be <= STREAM_SLOWDOWN_THRESHOLD (0.3)\n"
)


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], env={**os.environ, **env}, capture_output=True, text=True,
        timeout=HANG_GUARD_S, check=False,
    )  # fmt: skip


def assert_one_clear_line(result: subprocess.CompletedProcess[str], line: str = LINE) -> None:
    assert (result.returncode, result.stderr, result.stdout) == (EX_CONFIG, line, "")


def test_serve_exits_on_contradictory_thresholds() -> None:
    result = run(["-m", "api.cli.main", "serve", "--port", str(free_port())], CONTRADICTION)
    assert_one_clear_line(result)


def test_app_factory_exits_on_contradictory_thresholds() -> None:
    args = ["-m", "uvicorn", "--factory", "api.main:app_factory", "--port", str(free_port())]
    assert_one_clear_line(run(args, CONTRADICTION))


def test_up_exits_before_starting_triton(tmp_path: Path) -> None:
    ports = free_ports()
    result = run(
        [
            "-m", "api.cli.main", "up", "--port", str(free_port()), "--data-dir", str(tmp_path),
            "--triton-grpc-port", str(ports.grpc), "--triton-http-port", str(ports.http),
            "--triton-metrics-port", str(ports.metrics),
        ],
        CONTRADICTION,
    )  # fmt: skip
    assert_one_clear_line(result)
    assert not (tmp_path / "triton").exists()  # no Triton workdir: nothing was started


def test_serve_names_every_bad_variable() -> None:
    env = {"BATCH_MAX_SIZE": "64", "TRITON_URL": "triton", "LOG_LEVEL": "loud"}
    result = run(["-m", "api.cli.main", "serve", "--port", str(free_port())], env)
    assert result.returncode == EX_CONFIG and "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    assert all(f"{name}=" in line for name in env)
