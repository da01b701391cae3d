from __future__ import annotations

import pytest
from typer.testing import CliRunner

from api.cli import bench_cmd
from api.cli.main import app


def test_bare_bench_runs_the_full_benchmark(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict] = []
    monkeypatch.setattr(bench_cmd, "bench_run", lambda **kw: calls.append(kw))
    result = CliRunner().invoke(app, ["bench"])
    assert result.exit_code == 0, result.output
    assert calls == [{}]


@pytest.mark.parametrize(
    "command",
    [
        "up",
        "serve",
        "triton",
        "stream",
        "flag",
        "verify",
        "drill",
        "loadtest",
        "perf-input",
        "bench",
    ],
)
def test_every_command_has_help(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output
