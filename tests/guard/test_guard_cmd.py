"""`framegate guard` and `framegate drill --with-guard` usage errors (no stack needed)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from api.cli.drill_cmd import drill
from api.cli.guard_cmd import guard

cli = typer.Typer()
cli.command("guard")(guard)
cli.command("drill")(drill)
runner = CliRunner()


def test_guard_needs_exactly_one_source() -> None:
    result = runner.invoke(cli, ["guard", "--flag-file", "f.json"])
    assert result.exit_code == 2
    assert "give one of --metrics-url, --kube-endpoints, --prometheus-url" in result.output
    both = ["--metrics-url", "http://a/metrics", "--prometheus-url", "http://p:9090"]
    result = runner.invoke(cli, ["guard", *both, "--flag-file", "f.json"])
    assert result.exit_code == 2


def test_guard_needs_exactly_one_flag_destination() -> None:
    result = runner.invoke(cli, ["guard", "--metrics-url", "http://a/metrics"])
    assert result.exit_code == 2
    assert "give one of --flag-file, --configmap, --featureflag" in result.output


def test_guard_stall_span_must_fit_in_the_window() -> None:
    args = ["--metrics-url", "http://a/metrics", "--flag-file", "f.json"]
    result = runner.invoke(cli, ["guard", *args, "--window-s", "10", "--stall-s", "20"])
    assert result.exit_code == 2
    assert "--stall-s must not exceed --window-s" in result.output


def test_drill_with_guard_is_for_the_local_stack() -> None:
    args = ["--with-guard", "--url", "http://127.0.0.1:8000", "--flag-file", "f.json"]
    result = runner.invoke(cli, ["drill", *args])
    assert result.exit_code == 2
    assert "--with-guard drills the local stack, not with --url" in result.output


@pytest.mark.triton  # a subprocess: a clean interpreter's imports
def test_the_gateway_never_imports_the_guard() -> None:
    code = (
        "import sys, api.main, api.cli.serve_cmd; "
        "print(sorted(m for m in sys.modules if m.startswith('api.guard')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
