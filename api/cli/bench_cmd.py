"""`framegate bench run`: the full-stack benchmark (api/loadtest/bench/), each pipeline's tables."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from api.loadtest.bench.config import DEFAULT_PIPELINES, ROWS

DOCS = Path(__file__).resolve().parents[2] / "docs" / "BENCHMARKS.md"


def bench_run(
    pipelines: Annotated[
        str, typer.Option(help="Pipeline ids, comma-separated; each gets its own rows a-e")
    ] = ",".join(DEFAULT_PIPELINES),
    duration: Annotated[float, typer.Option(min=0.5, help="Seconds measured per row")] = 15.0,
    warmup: Annotated[
        float, typer.Option(min=0, help="Warm-up seconds before each WS window")
    ] = 3.0,
    sessions: Annotated[int, typer.Option(min=1, help="WebSocket sessions (rows c-e)")] = 16,
    batch: Annotated[int, typer.Option(min=1, help="Frames per request for rows a and b")] = 8,
    concurrency: Annotated[int, typer.Option(min=1, help="Triton-direct callers (row b)")] = 2,
    overload: Annotated[float, typer.Option(min=1.0, help="Offered load / best of a,b")] = 2.0,
    rows: Annotated[str, typer.Option(help="Which rows to run, a subset of 'abcde'")] = "abcde",
    bars: Annotated[bool, typer.Option(help="Also measure the latency bars of row c")] = True,
    health: Annotated[
        bool, typer.Option(help="Also measure /health p99 with 8 sessions streaming (row c)")
    ] = True,
    budgets: Annotated[
        str,
        typer.Option(help="Repeat row c at these latency budgets (ms, comma-separated, 0 = off)"),
    ] = "0,150",
    triton_url: Annotated[
        str | None, typer.Option(help="Use this Triton (gRPC host:port) instead of starting one")
    ] = None,
    seed: Annotated[int, typer.Option(help="Synthetic scene seed")] = 1000,
    frames: Annotated[int, typer.Option(min=1, help="Distinct JPEGs")] = 64,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the result here")] = None,
    write_docs: Annotated[
        bool, typer.Option(help="Replace the last section of docs/BENCHMARKS.md with the table")
    ] = False,
    docs: Annotated[Path, typer.Option(help="The document --write-docs edits")] = DOCS,
) -> None:
    """Full stack side by side, per pipeline: in-process ORT, Triton direct, WebSocket gateway with
    and without micro-batching, and a naive gateway; throughput, p99, CPU per frame (and per
    process of the stack), latency bars, /health under load."""
    from api.loadtest.bench.config import BenchConfig
    from api.loadtest.bench.report import markdown
    from api.loadtest.bench.report import write_docs as write_docs_to
    from api.loadtest.bench.run import run_bench
    from api.vision.pipeline import PIPELINE_KINDS

    kinds = tuple(dict.fromkeys(p.strip() for p in pipelines.split(",") if p.strip()))
    unknown = [k for k in kinds if k not in PIPELINE_KINDS]
    if not kinds or unknown:
        raise typer.BadParameter(
            f"unknown pipeline(s) {unknown or pipelines!r}; choose from {PIPELINE_KINDS}"
        )
    if not rows or set(rows) - set(ROWS):
        raise typer.BadParameter(f"--rows must be a subset of {ROWS!r}, got {rows!r}")
    try:
        extra = tuple(float(b) for b in budgets.split(",") if b.strip())
    except ValueError:
        raise typer.BadParameter(f"--budgets must be numbers in ms, got {budgets!r}") from None
    if any(b < 0 for b in extra):
        raise typer.BadParameter("--budgets must be >= 0 (0 = no budget)")
    config = BenchConfig(
        pipelines=kinds, duration_s=duration, warmup_s=warmup, sessions=sessions, batch=batch,
        concurrency=concurrency, overload_factor=overload, triton_url=triton_url, seed=seed,
        frames=frames, rows=rows, bars=bars and "c" in rows, health=health and "c" in rows,
        budgets=extra,
    )  # fmt: skip
    result = run_bench(config, progress=lambda line: typer.echo(line, err=True))
    command = "framegate bench run " + " ".join(shlex.quote(a) for a in sys.argv[3:])
    table = markdown(result, command.strip())
    typer.echo(table)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result, indent=2))
        typer.echo(f"wrote {json_out}", err=True)
    if write_docs:
        write_docs_to(result, docs, command.strip())
        typer.echo(f"updated {docs}", err=True)
