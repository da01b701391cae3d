"""Benchmark commands: perf_analyzer input data, the in-process ONNX Runtime baseline, Triton-direct
closed-loop load, and both side by side (docs/BENCHMARKS.md).

Until they are registered in api/cli/main.py they also run as
`python -m api.cli.perf_cmd <command> ...` (same options).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from api.loadtest import event_loop
from api.loadtest.measure import Measurement, machine_facts, markdown_table

PipelinesOpt = Annotated[str, typer.Option(help="Comma-separated pipeline ids")]
BatchesOpt = Annotated[str, typer.Option(help="Comma-separated batch sizes (frames per request)")]
SeedOpt = Annotated[int, typer.Option(help="Synthetic scene seed (>= 1000: never trained on)")]
FramesOpt = Annotated[int, typer.Option(min=1, help="Distinct JPEGs, cycled through")]
DurationOpt = Annotated[float, typer.Option(min=0, help="Seconds measured per configuration")]
JsonOpt = Annotated[Path | None, typer.Option(help="Also write all results as JSON here")]
UrlOpt = Annotated[str, typer.Option(help="Triton gRPC host:port")]
ConcurrencyOpt = Annotated[str, typer.Option(help="Comma-separated closed-loop concurrencies")]


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise typer.BadParameter(f"expected comma-separated integers, got {text!r}") from exc
    if not values or min(values) < 1:
        raise typer.BadParameter(f"expected positive integers, got {text!r}")
    return values


def _kinds(text: str) -> list[str]:
    from api.vision.pipeline import PIPELINE_KINDS

    kinds = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in PIPELINE_KINDS]
    if unknown or not kinds:
        raise typer.BadParameter(f"unknown pipeline(s) {unknown}; choose from {PIPELINE_KINDS}")
    return kinds


def _progress(m: Measurement) -> None:
    typer.echo(
        f"  {m.target:10} {m.subject:24} b={m.batch:<2} c={m.concurrency:<2} "
        f"{m.frames_per_s:8.1f} frames/s  p50 {m.latency_ms['p50']:8.1f} ms  "
        f"p99 {m.latency_ms['p99']:8.1f} ms  errors {m.frame_errors}",
        err=True,
    )


def _write_json(path: Path | None, payload: dict) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=2))
        typer.echo(f"wrote {path}", err=True)


def perf_input(
    out: Annotated[Path, typer.Argument(help="JSON file for perf_analyzer --input-data")],
    seed: SeedOpt = 1000,
    frames: FramesOpt = 64,
) -> None:
    """Write perf_analyzer --input-data JSON of real synthetic JPEGs for the pipeline models."""
    from api.loadtest.perf_input import write_perf_input

    jpegs = write_perf_input(out, seed, frames)
    typer.echo(
        f"wrote {out}: {len(jpegs)} JPEGs (seed {seed}, {sum(map(len, jpegs)) // len(jpegs)} "
        "bytes on average) for input 'frames'"
    )


def bench_inprocess(
    pipelines: PipelinesOpt = "yolo,yolo_ocr,ocr",
    batches: BatchesOpt = "1,8",
    seed: SeedOpt = 1000,
    frames: FramesOpt = 64,
    duration: DurationOpt = 10.0,
    warmup: Annotated[int, typer.Option(min=0, help="Unmeasured batches first")] = 3,
    json_out: JsonOpt = None,
) -> None:
    """In-process ONNX Runtime baseline: the same pipelines and models as Triton, no server."""
    from api.loadtest.inprocess import run_inprocess
    from api.loadtest.perf_input import sample_jpegs

    report = run_inprocess(
        sample_jpegs(seed, frames),
        _kinds(pipelines),
        _ints(batches),
        duration_s=duration,
        warmup=warmup,
        progress=_progress,
    )
    typer.echo(markdown_table(report.measurements))
    _write_json(json_out, {"machine": machine_facts(), "inprocess": report.as_dict()})


def bench_triton(
    url: UrlOpt = "127.0.0.1:8001",
    pipelines: PipelinesOpt = "yolo,yolo_ocr,ocr",
    batches: BatchesOpt = "1,8",
    concurrency: ConcurrencyOpt = "1,2,4",
    seed: SeedOpt = 1000,
    frames: FramesOpt = 64,
    duration: DurationOpt = 10.0,
    json_out: JsonOpt = None,
) -> None:
    """Triton-direct closed loop: N callers sending batches of real JPEGs to pipeline_<id>."""
    from api.loadtest.measure import CpuMonitor, local_grpc_port
    from api.loadtest.perf_input import sample_jpegs
    from api.loadtest.triton_direct import run_triton

    rows = event_loop.run(
        run_triton(
            url,
            sample_jpegs(seed, frames),
            _kinds(pipelines),
            _ints(batches),
            _ints(concurrency),
            duration_s=duration,
            progress=_progress,
            monitor=CpuMonitor(local_grpc_port(url)),
        )
    )
    typer.echo(markdown_table(rows))
    _write_json(json_out, {"machine": machine_facts(), "triton": [m.as_dict() for m in rows]})


def ratio_table(inprocess: Sequence[Measurement], triton: Sequence[Measurement]) -> str:
    """Per pipeline and batch size: in-process (one caller) against Triton at concurrency 1 and
    at its best concurrency."""
    lines = [
        "| pipeline | batch | in-process frames/s | Triton c=1 frames/s | ratio "
        "| Triton best frames/s (c) | ratio | p50 ms in-process | p50 ms Triton c=1 | ratio |",
        "|" + " --- |" * 10,
    ]
    for base in inprocess:
        if not base.subject.startswith("pipeline "):
            continue
        same = [
            t for t in triton if t.subject == base.subject and t.batch == base.batch and t.requests
        ]
        if not same:
            continue
        one = min(same, key=lambda t: t.concurrency)
        best = max(same, key=lambda t: t.frames_per_s)
        lines.append(
            f"| {base.subject.removeprefix('pipeline ')} | {base.batch} "
            f"| {base.frames_per_s:.1f} | {one.frames_per_s:.1f} "
            f"| {one.frames_per_s / base.frames_per_s:.2f} "
            f"| {best.frames_per_s:.1f} ({best.concurrency}) "
            f"| {best.frames_per_s / base.frames_per_s:.2f} "
            f"| {base.latency_ms['p50']:.1f} | {one.latency_ms['p50']:.1f} "
            f"| {one.latency_ms['p50'] / base.latency_ms['p50']:.2f} |"
        )
    return "\n".join(lines)


def bench_compare(
    url: UrlOpt = "127.0.0.1:8001",
    pipelines: PipelinesOpt = "yolo,yolo_ocr,ocr",
    batches: BatchesOpt = "1,8",
    concurrency: ConcurrencyOpt = "1,2,4",
    seed: SeedOpt = 1000,
    frames: FramesOpt = 64,
    duration: DurationOpt = 10.0,
    json_out: JsonOpt = None,
) -> None:
    """In-process baseline and Triton direct in one run on the same JPEGs, interleaved per
    pipeline and batch size, with ratios. Triton stays loaded but idle during in-process rows."""
    from api.loadtest.compare import run_compare
    from api.loadtest.perf_input import sample_jpegs

    result = run_compare(
        url,
        sample_jpegs(seed, frames),
        _kinds(pipelines),
        _ints(batches),
        _ints(concurrency),
        duration_s=duration,
        progress=_progress,
    )
    typer.echo("\n".join(f"- {k}: {v}" for k, v in result.facts.items()))
    typer.echo(f"- seed {seed}, {duration:g} s measured per row\n")
    typer.echo(markdown_table([*result.inprocess, *result.triton]))
    typer.echo("")
    typer.echo(ratio_table(result.inprocess, result.triton))
    _write_json(json_out, result.as_dict())


def wait_quiet(
    max_other_cores: Annotated[float, typer.Option(help="Other load allowed (cores)")] = 0.3,
    sample: Annotated[float, typer.Option(min=1, help="Seconds per sample")] = 10.0,
    timeout: Annotated[float, typer.Option(min=0, help="Give up after (exit 1)")] = 1800.0,
    triton_url: Annotated[
        str | None, typer.Option(help="Local Triton whose load counts as ours")
    ] = None,
) -> None:
    """Wait until the machine is quiet (benchmarks on a shared machine)."""
    from api.loadtest.measure import local_grpc_port, wait_for_quiet

    quiet, last = wait_for_quiet(
        max_other_cores,
        sample,
        timeout,
        local_grpc_port(triton_url) if triton_url else None,
        on_sample=lambda s: typer.echo(f"  load {s}", err=True),
    )
    typer.echo(f"{'quiet' if quiet else 'still busy'}: {last}")
    if not quiet:
        raise typer.Exit(1)


def cpu_watch(
    command: Annotated[list[str], typer.Argument(help="Command to run (after --)")],
    triton_url: Annotated[
        str | None, typer.Option(help="Local Triton whose load counts as ours")
    ] = None,
) -> None:
    """Run a command (e.g. scripts/perf_analyzer.sh ...) and report afterwards how much CPU other
    processes used meanwhile; exits with the command's status."""
    import subprocess

    from api.loadtest.measure import CpuMonitor, local_grpc_port

    monitor = CpuMonitor(local_grpc_port(triton_url) if triton_url else None)
    monitor.start()
    code = subprocess.call(command)
    typer.echo(f"cpu during the run: {monitor.stop()}")
    raise typer.Exit(code)


def _standalone() -> typer.Typer:
    app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
    app.command("perf-input")(perf_input)
    app.command("bench-inprocess")(bench_inprocess)
    app.command("bench-triton")(bench_triton)
    app.command("bench-compare")(bench_compare)
    app.command("wait-quiet")(wait_quiet)
    app.command("cpu-watch")(cpu_watch)
    return app


if __name__ == "__main__":
    _standalone()()
