"""`framegate drill`: rehearse the rollback (flag off and on again) against the local stack or a
running server, print a timed report, exit non-zero naming the step that failed.

Exit codes: 0 the drill passed; 1 a step failed (the message names it); 2 bad usage;
130 interrupted (the local stack is stopped first).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console, JustifyMethod
from rich.markup import escape
from rich.table import Table

from api.cli.signals import sigterm_as_interrupt
from api.cli.verify_cmd import TokenOpt, checks_table
from api.ops.drill import DrillOptions, DrillReport, Step, drill_local, drill_server
from api.ops.guard_drill import GuardDrillOptions, guard_drill_local

EXIT_FAILED = 1
EXIT_INTERRUPTED = 130
TIMING_LABELS = {
    "stack_start_s": "stack start (until /ready)",
    "close_live_session_s": "flip off → live session closed",
    "until_404_s": "flip off → upgrades get 404",
    "until_back_on_s": "flip on → a frame processed again",
    "guard_trip_s": "Triton hung → guard turned the flag off",
    "close_live_sessions_s": "guard trip → live sessions closed",
    "triton_back_s": "SIGCONT → /ready answers 200",
    "total_s": "whole drill",
}

out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)


def drill(
    url: Annotated[
        str | None,
        typer.Option(help="Drill this running server instead of starting the local stack."),
    ] = None,
    flag_file: Annotated[
        Path | None,
        typer.Option(help="With --url: the flagd file that server's file flag provider reads."),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Local stack data dir. Default: a new temp dir, removed when the drill passes."
        ),
    ] = None,
    pipeline: Annotated[str, typer.Option(help="Pipeline to stream to.")] = "yolo_ocr",
    token: TokenOpt = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the report as one JSON object instead.")
    ] = False,
    report: Annotated[
        Path | None, typer.Option("--report", help="Also write the report as JSON to this file.")
    ] = None,
    timeout: Annotated[
        float, typer.Option(min=0.1, help="Seconds for each check, session open, frame result.")
    ] = 30.0,
    close_within: Annotated[
        float, typer.Option(min=0.1, help="Flip off → the live session must be closed.")
    ] = 2.0,
    flip_deadline: Annotated[
        float,
        typer.Option(min=0.1, help="Flip → new upgrades get 404 / a frame is processed again."),
    ] = 10.0,
    start_timeout: Annotated[
        float, typer.Option(min=1, help="Local stack: seconds until /ready answers 200.")
    ] = 300.0,
    with_guard: Annotated[
        bool,
        typer.Option(
            help="Automatic rollback instead: framegate guard on the local stack, Triton hung "
            "(SIGSTOP), the guard must trip the flag off; sessions drain; verify (off)."
        ),
    ] = False,
    guard_arg: Annotated[
        list[str] | None,
        typer.Option(help="With --with-guard: an extra framegate guard option (repeatable)."),
    ] = None,
) -> None:
    """Rehearse the rollback: stream, flip video-streaming off, verify, flip on, verify.

    Default: starts the local stack (framegate up, free ports, temp data dir), stops it on exit.
    --url with --flag-file: drills a running server whose file flag provider reads that file.
    --with-guard: framegate guard must trip the flag off when Triton hangs (SIGSTOP).
    Exit codes: 0 passed, 1 a step failed (named), 2 bad usage, 130 interrupted.
    """
    if (url is None) != (flag_file is None):
        raise typer.BadParameter("--url and --flag-file go together")
    if url is not None and data_dir is not None:
        raise typer.BadParameter("--data-dir is for the local stack, not with --url")
    options = DrillOptions(
        pipeline=pipeline,
        token=token,
        timeout_s=timeout,
        close_within_s=close_within,
        flip_deadline_s=flip_deadline,
        start_timeout_s=start_timeout,
    )
    if with_guard and url is not None:
        raise typer.BadParameter("--with-guard drills the local stack, not with --url")
    try:
        with sigterm_as_interrupt():
            if with_guard:
                err.print("starting the local stack and framegate guard…")
                guard = GuardDrillOptions(guard_args=tuple(guard_arg or ()))
                result = guard_drill_local(options, guard, data_dir, on_step=_progress)
            elif url is None:
                err.print("starting the local stack (framegate up: embedded Triton + API)…")
                result = drill_local(options, data_dir, on_step=_progress)
            else:
                assert flag_file is not None
                result = asyncio.run(drill_server(url, flag_file, options, on_step=_progress))
    except KeyboardInterrupt:
        err.print("[red]drill interrupted[/]; everything it started was stopped")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    if report is not None:
        report.write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    if json_output:
        print(json.dumps(result.to_dict()))
    else:
        print_report(result)
    if not result.ok:
        err.print(f"[red]drill FAILED[/]: {escape(result.failure or 'a step failed')}")
        if result.local_stack and result.data_dir:
            err.print(f"logs kept in {escape(result.data_dir)}")
        raise typer.Exit(EXIT_FAILED)


def _progress(step: Step) -> None:
    mark = "[green]✓[/]" if step.ok else "[red]✗[/]"
    err.print(f"{mark} {step.number}. {step.name} ({step.duration_s:.2f}s): {escape(step.detail)}")


def print_report(report: DrillReport) -> None:
    target = "local stack" if report.local_stack else "server"
    steps = Table(title=f"framegate drill: {target} {report.url}", title_justify="left")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("#", "right"),
        ("step", "left"),
        ("result", "left"),
    )
    for column, justify in columns:
        steps.add_column(column, justify=justify)
    steps.add_column("s", justify="right")
    steps.add_column("detail", overflow="fold")
    for step in report.steps:
        mark = "[green]pass[/]" if step.ok else "[red]FAIL[/]"
        steps.add_row(
            str(step.number), step.name, mark, f"{step.duration_s:.2f}", escape(step.detail)
        )
    out.print(steps)
    timings = Table(title="timings", title_justify="left")
    timings.add_column("measure")
    timings.add_column("seconds", justify="right")
    for key, label in TIMING_LABELS.items():
        if key in report.timings:
            timings.add_row(label, f"{report.timings[key]:.2f}")
    out.print(timings)
    for name, verification in report.verifications.items():
        if not verification.ok:
            out.print(checks_table(verification, f"{name}: framegate verify {verification.url}"))
    out.print("[green]drill passed[/]" if report.ok else "[red]drill failed[/]")
