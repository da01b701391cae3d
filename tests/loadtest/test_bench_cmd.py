"""`framegate bench run` options, with the run itself replaced by a fake (no servers)."""

from __future__ import annotations

from dataclasses import asdict

import pytest
import typer
from typer.testing import CliRunner, Result

from api.cli import bench_cmd
from api.loadtest.bench import run as bench_run_module
from api.loadtest.bench.config import BenchConfig

cli = typer.Typer()
cli.command("run")(bench_cmd.bench_run)
cli.command("other")(lambda: None)  # two commands, so `run` is a subcommand as in framegate


@pytest.fixture
def configs(monkeypatch: pytest.MonkeyPatch) -> list[BenchConfig]:
    seen: list[BenchConfig] = []

    def fake_run(config: BenchConfig, progress=None) -> dict:
        seen.append(config)
        empty = {"rows": {}, "ratios": {}, "bars": {}, "health": None}
        return {
            "config": asdict(config),
            "machine": {},
            "versions": {},
            "pipelines": {kind: empty for kind in config.pipelines},
        }

    monkeypatch.setattr(bench_run_module, "run_bench", fake_run)
    return seen


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["run", *args])


def test_both_pipelines_by_default(configs: list[BenchConfig]) -> None:
    result = run()
    assert result.exit_code == 0, result.output
    assert configs[0].pipelines == ("yolo", "yolo_ocr")
    assert configs[0].health and configs[0].bars
    assert "### `yolo`" in result.output and "### `yolo_ocr`" in result.output


def test_pipelines_option_picks_and_orders_them(configs: list[BenchConfig]) -> None:
    assert run("--pipelines", "yolo_ocr, yolo,yolo_ocr").exit_code == 0
    assert configs[0].pipelines == ("yolo_ocr", "yolo")


def test_unknown_pipeline_is_refused(configs: list[BenchConfig]) -> None:
    result = run("--pipelines", "yolo,nope")
    assert result.exit_code == 2 and "nope" in result.output
    assert configs == []


def test_health_and_bars_need_row_c(configs: list[BenchConfig]) -> None:
    assert run("--rows", "ab").exit_code == 0
    assert not configs[0].health and not configs[0].bars
    assert run("--no-health").exit_code == 0
    assert not configs[1].health and configs[1].bars
