"""`framegate loadtest`: open-loop WebSocket load like real cameras (the group's own command), and
`framegate loadtest triton`: closed-loop load straight at Triton, on the same JPEGs.

Exit codes. WebSocket test: 0 every sent frame was answered (processed or dropped) and at least
one was processed; 1 otherwise (the table and JSON are still written); 2 no session could connect,
or bad usage. Triton test: 0 all levels measured without frame errors; 1 a level failed or had
frame errors; 2 Triton or the model is not ready, or bad usage.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.live import Live
from rich.markup import escape

from api.loadtest import event_loop
from api.loadtest.ws_load import LoadConfig, Progress, load_jpegs, run_ws_load
from api.loadtest.ws_report import (
    PlotUnavailable,
    check_plot_available,
    progress_line,
    triton_table,
    write_plot,
    ws_table,
)

if TYPE_CHECKING:  # the Triton run's modules load only when it runs
    from api.loadtest.cpu import CpuMonitor
    from api.loadtest.measure import Measurement

EXIT_ERRORS = 1
EXIT_UNREACHABLE = 2
EXIT_USAGE = 2
LOG_EVERY_S = 5.0

out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)

app = typer.Typer(
    help="Load tests: open-loop WebSocket sessions (default) or Triton directly (`triton`).",
    add_completion=False,
)

VideoOpt = Annotated[Path | None, typer.Option(help="Send this video file's frames")]
SyntheticOpt = Annotated[
    bool, typer.Option(help="Send a synthetic plate video (the default without --video)")
]
FramesOpt = Annotated[int, typer.Option(min=1, help="Distinct JPEGs, encoded once and cycled")]
SeedOpt = Annotated[int, typer.Option(help="Synthetic video seed")]
JsonOpt = Annotated[Path | None, typer.Option("--json", help="Write the full report as JSON")]


def _jpegs(video: Path | None, synthetic: bool, frames: int, seed: int) -> list[bytes]:
    if video is not None and synthetic:
        raise typer.BadParameter("give at most one of --video FILE or --synthetic")
    try:
        return load_jpegs(video, frames, seed)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _write_json(path: Path | None, payload: object) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2))
    err.print(f"wrote {path}")


def parse_concurrency(text: str) -> list[int]:
    """`8`, `1,2,8`, `lo:hi` (doubling from lo, hi included) or `lo:hi:step` (lo to hi in steps,
    as perf_analyzer's --concurrency-range)."""
    try:
        if ":" not in text:
            levels = [int(v) for v in text.split(",") if v.strip()]
        else:
            parts = [int(v) for v in text.split(":")]
            if len(parts) not in (2, 3):
                raise ValueError(text)
            start, end = parts[0], parts[1]
            if len(parts) == 3:
                if parts[2] < 1:
                    raise ValueError(text)
                levels = list(range(start, end + 1, parts[2]))
            else:
                levels = []
                level = start
                while 1 <= level <= end:
                    levels.append(level)
                    level *= 2
                if levels and levels[-1] != end:
                    levels.append(end)
    except ValueError:
        raise typer.BadParameter(
            f"expected N, N,M,..., lo:hi or lo:hi:step, got {text!r}"
        ) from None
    if not levels or min(levels) < 1:
        raise typer.BadParameter(f"concurrency levels must be positive, got {text!r}")
    return levels


@app.callback(invoke_without_command=True)
def loadtest(
    ctx: typer.Context,
    url: Annotated[str, typer.Option(help="Server base URL (ws, wss, http or https)")] = (
        "ws://127.0.0.1:8000"
    ),
    pipeline: Annotated[str, typer.Option(help="Pipeline id")] = "yolo_ocr",
    sessions: Annotated[int, typer.Option(min=1, help="Concurrent WebSocket sessions")] = 4,
    fps: Annotated[float, typer.Option(min=0.01, help="Frames per second per session")] = 5.0,
    duration: Annotated[float, typer.Option(min=0.1, help="Seconds of sending")] = 10.0,
    video: VideoOpt = None,
    synthetic: SyntheticOpt = False,
    frames: FramesOpt = 100,
    seed: SeedOpt = 1000,
    json_out: JsonOpt = None,
    plot: Annotated[
        Path | None, typer.Option(help="Write latency/throughput over time as a PNG")
    ] = None,
    token: Annotated[
        str | None, typer.Option(envvar="STREAM_AUTH_TOKEN", help="Bearer token")
    ] = None,
    drain_timeout: Annotated[
        float, typer.Option(min=0, help="Seconds to wait for replies after the last frame")
    ] = 30.0,
    metrics_url: Annotated[
        str | None, typer.Option(help="The gateway's /metrics (default: <url>/metrics)")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Live progress on stderr")] = True,
) -> None:
    """Open-loop WebSocket load like real cameras (run without a subcommand).

    Every session sends --fps frames per second on its own clock, never waiting for replies;
    prints a summary table (client and server view) and optionally JSON and a plot.
    """
    if ctx.invoked_subcommand is not None:
        return
    if plot is not None:
        try:
            check_plot_available()
        except PlotUnavailable as exc:
            err.print(f"[red]{escape(str(exc))}[/]")
            raise typer.Exit(EXIT_USAGE) from None
    try:
        config = LoadConfig(
            url=url,
            pipeline=pipeline,
            sessions=sessions,
            fps=fps,
            duration_s=duration,
            token=token,
            drain_timeout_s=drain_timeout,
            metrics_url=metrics_url,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--url") from None
    jpegs = _jpegs(video, synthetic, frames, seed)
    err.print(
        f"{sessions} sessions × {fps:g} fps × {duration:g} s → {config.stream_url()} "
        f"({len(jpegs)} distinct JPEGs, {sum(map(len, jpegs)) // len(jpegs)} bytes on average)"
    )
    report = _run_live(config, jpegs, progress)
    out.print(ws_table(report))
    for warning in report["warnings"]:
        out.print(f"[yellow]warning:[/] {escape(warning)}")
    _write_json(json_out, report)
    if plot is not None:
        err.print(f"wrote {write_plot(report, plot)}")
    _exit_for(report)


def _run_live(config: LoadConfig, jpegs: list[bytes], show: bool) -> dict:
    """Live progress on a terminal; on a pipe (CI logs) a plain line every few seconds."""
    if not show:
        return run_ws_load(config, jpegs)
    if not err.is_terminal:
        printed = -LOG_EVERY_S

        def log(p: Progress) -> None:
            nonlocal printed
            if p.elapsed_s - printed >= LOG_EVERY_S or p.live == 0:
                printed = p.elapsed_s
                err.print(progress_line(p))

        return run_ws_load(config, jpegs, log)
    with Live(console=err, auto_refresh=False) as live:
        return run_ws_load(config, jpegs, lambda p: live.update(progress_line(p), refresh=True))


def _exit_for(report: dict) -> None:
    if report["sessions"]["connected"] == 0:
        reasons = {r["error"]: r["detail"] for r in report["per_session"] if r["error"]}
        err.print(f"[red]no session could connect: {escape(str(reasons))}[/]")
        raise typer.Exit(EXIT_UNREACHABLE)
    frames = report["frames"]
    if frames["errors"] or frames["not_sent"] or not frames["processed"]:
        raise typer.Exit(EXIT_ERRORS)


@app.command("triton")
def triton(
    url: Annotated[str, typer.Option(help="Triton gRPC host:port")] = "127.0.0.1:8001",
    model: Annotated[str, typer.Option(help="Pipeline model")] = "pipeline_yolo_ocr",
    concurrency: Annotated[
        str, typer.Option(help="Levels: N, or N,M,..., or lo:hi (doubling), or lo:hi:step")
    ] = "1:32",
    batch: Annotated[int, typer.Option(min=1, help="Frames per request")] = 1,
    duration: Annotated[float, typer.Option(min=0.1, help="Seconds measured per level")] = 10.0,
    video: VideoOpt = None,
    synthetic: SyntheticOpt = False,
    frames: FramesOpt = 100,
    seed: SeedOpt = 1000,
    json_out: JsonOpt = None,
    level_timeout: Annotated[
        float, typer.Option(min=1, help="Seconds allowed per level beyond --duration (warm-up)")
    ] = 300.0,
) -> None:
    """Closed-loop load straight at Triton (no gateway), one row per concurrency level.

    At each level that many callers each send a batch of the same real JPEGs and wait for the
    answer (api.loadtest.triton_direct.measure_triton: warm-up, then a measured window).
    """
    from api.loadtest.cpu import CpuMonitor
    from api.loadtest.measure import local_grpc_port

    levels = parse_concurrency(concurrency)
    jpegs = _jpegs(video, synthetic, frames, seed)
    problem = asyncio.run(_triton_problem(url, model))
    if problem:
        err.print(f"[red]{escape(problem)}[/]")
        raise typer.Exit(EXIT_UNREACHABLE)
    monitor = CpuMonitor(local_grpc_port(url))
    title = f"{model} @ {url}: batch {batch}, {duration:g} s measured per level"
    rows: list[Measurement] = []
    for level in levels:
        err.print(f"concurrency {level}: warming up, then measuring {duration:g} s …")
        try:
            m = _measure_level(url, model, jpegs, batch, level, duration, level_timeout, monitor)
        except _LevelFailed as exc:
            err.print(f"[red]{escape(str(exc))}[/]")
            if rows:
                out.print(triton_table(rows, title))
            raise typer.Exit(EXIT_ERRORS) from None
        rows.append(m)
        err.print(
            f"  {m.frames_per_s:.1f} frames/s, p50 {m.latency_ms['p50']:.1f} ms, "
            f"p99 {m.latency_ms['p99']:.1f} ms, {m.frame_errors} frame errors"
        )
    out.print(triton_table(rows, title))
    _write_json(json_out, _triton_report(url, model, batch, duration, rows))
    if any(m.frame_errors for m in rows):
        raise typer.Exit(EXIT_ERRORS)


class _LevelFailed(Exception):
    """A concurrency level that could not be measured; the message says why."""


def _measure_level(
    url: str,
    model: str,
    jpegs: list[bytes],
    batch: int,
    level: int,
    duration: float,
    level_timeout: float,
    monitor: CpuMonitor,
) -> Measurement:
    from tritonclient.utils import InferenceServerException

    from api.inference.errors import InferenceUnavailable, PipelineFailure
    from api.loadtest.triton_direct import measure_triton

    measuring = measure_triton(url, model, jpegs, batch, level, duration, monitor=monitor)
    try:
        return event_loop.run(asyncio.wait_for(measuring, duration + level_timeout))
    except (InferenceUnavailable, PipelineFailure, InferenceServerException) as exc:
        raise _LevelFailed(f"concurrency {level} failed: {exc}") from None
    except TimeoutError:
        # measure_triton waits for its warm-up forever when a caller fails before the window
        # opens; the deadline turns that into an error.
        limit = duration + level_timeout
        raise _LevelFailed(f"concurrency {level} did not finish within {limit:g} s") from None


def _triton_report(
    url: str, model: str, batch: int, duration: float, rows: list[Measurement]
) -> dict:
    from api.loadtest.measure import machine_facts

    return {
        "schema": "framegate.loadtest.triton/1",
        "machine": machine_facts(),
        "config": {"url": url, "model": model, "batch": batch, "duration_s": duration},
        "levels": [m.as_dict() for m in rows],
    }


async def _triton_problem(url: str, model: str) -> str | None:
    """Why the Triton run cannot start (server or model not ready), None when it can."""
    from api.inference.triton_client import TritonClient

    client = TritonClient(url, timeout_s=5.0)
    try:
        if not await client.is_ready():
            return f"Triton at {url} is not reachable or not ready"
        if not (await client.models_ready([model]))[model]:
            return f"model {model} is not ready on Triton at {url}"
        return None
    finally:
        await client.close()
