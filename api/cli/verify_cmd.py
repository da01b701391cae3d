"""`framegate verify`: a deployment's health, readiness, `/v1` endpoints and streaming state.

Exit codes: 0 every check passed; 1 a check failed (an unreachable server is a failed `health`
check, still with a full report); 2 bad usage (typer's own code for a bad option).
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated
from urllib.parse import urlsplit

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from api.ops.probe import Endpoint
from api.ops.verify import Check, Expect, VerifyOptions, VerifyReport, run_verify

EXIT_FAILED = 1

out = Console(soft_wrap=True, highlight=False)

# The WebSocket endpoint's bearer token, as every command that streams to a deployment takes it.
TokenOpt = Annotated[
    str | None,
    typer.Option(envvar="STREAM_AUTH_TOKEN", help="Bearer token for the WebSocket endpoint."),
]


def verify(
    url: Annotated[
        str, typer.Option(help="Base URL of the deployment (gateway Service or port-forward).")
    ] = "http://127.0.0.1:8000",
    expect_streaming: Annotated[
        Expect,
        typer.Option(
            case_sensitive=False,
            help="Expected WebSocket state: on (a frame is processed), off (upgrade gets 404), "
            "any (only report it).",
        ),
    ] = Expect.ANY,
    pipeline: Annotated[str, typer.Option(help="Pipeline described and streamed to.")] = "yolo_ocr",
    token: TokenOpt = None,
    client_id: Annotated[
        str | None,
        typer.Option(
            help="Targeting key sent as X-Client-Id, so a flag targeting rule can name this check "
            "(default: none, each handshake gets a random key).",
        ),
    ] = None,
    require_jobs: Annotated[
        bool,
        typer.Option(
            "--require-jobs",
            help="Fail when GET /v1/video/jobs is not served (default: skipped, as on a "
            "ROLE=stream gateway).",
        ),
    ] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON object {ok, url, checks} instead.")
    ] = False,
    timeout: Annotated[
        float, typer.Option(min=0.1, help="Seconds each check may take (incl. a frame's result).")
    ] = 30.0,
) -> None:
    """Check a running deployment as the rollback plan's verification asks.

    Checks: /health, /ready, /v1/pipelines, /v1/video/jobs, the WebSocket endpoint's state.
    The jobs check is skipped where jobs are not served (ROLE=stream) unless --require-jobs.
    Exit codes: 0 all passed, 1 a check failed (also an unreachable server), 2 bad usage.
    """
    _check_url(url)
    options = VerifyOptions(
        endpoint=Endpoint(url, pipeline, token, client_id),
        expect=expect_streaming,
        timeout_s=timeout,
        require_jobs=require_jobs,
    )
    report = asyncio.run(run_verify(options))
    if json_output:
        print(json.dumps(report.to_dict()))
    else:
        print_report(report)
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise typer.BadParameter(f"expected http(s)://host:port, got {url!r}", param_hint="--url")


def checks_table(report: VerifyReport, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("check")
    table.add_column("result")
    table.add_column("ms", justify="right")
    table.add_column("detail", overflow="fold")
    for check in report.checks:
        table.add_row(
            check.name, _mark(check), f"{check.duration_s * 1000:.0f}", escape(check.detail)
        )
    return table


def print_report(report: VerifyReport) -> None:
    title = f"framegate verify {report.url} (expect streaming {report.expect})"
    out.print(checks_table(report, title))
    if report.ok:
        out.print(f"[green]OK[/]: {report.summary()}; streaming {report.streaming}")
    else:
        failed = ", ".join(check.name for check in report.failed)
        out.print(f"[red]FAILED[/]: {failed}")


def _mark(check: Check) -> str:
    if check.skipped:
        return "[yellow]skip[/]"
    return "[green]pass[/]" if check.ok else "[red]FAIL[/]"
