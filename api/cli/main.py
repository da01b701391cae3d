"""`framegate` command line: one typer app, one module per command group."""

from __future__ import annotations

import typer

from api.cli import (
    bench_cmd,
    drill_cmd,
    flag_cmd,
    guard_cmd,
    loadtest_cmd,
    perf_cmd,
    serve_cmd,
    stream_cmd,
    synth_cmd,
    triton_cmd,
    up_cmd,
    verify_cmd,
)

app = typer.Typer(
    name="framegate",
    help="Real-time video inference gateway in front of NVIDIA Triton.",
    no_args_is_help=True,
    add_completion=False,
)
app.command("up")(up_cmd.up)
app.command("serve")(serve_cmd.serve)
app.command("triton")(triton_cmd.triton)
app.command("stream")(stream_cmd.stream)
app.add_typer(flag_cmd.app, name="flag")
app.command("verify")(verify_cmd.verify)
app.command("drill")(drill_cmd.drill)
app.command("guard")(guard_cmd.guard)
app.command("synth")(synth_cmd.synth)
app.add_typer(loadtest_cmd.app, name="loadtest")
app.command("perf-input")(perf_cmd.perf_input)

bench = typer.Typer(
    help="Side-by-side benchmarks. Without a subcommand: the full run (`bench run` defaults).",
    invoke_without_command=True,
)


@bench.callback()
def bench_default(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None:
        bench_cmd.bench_run()


bench.command("inprocess")(perf_cmd.bench_inprocess)
bench.command("triton")(perf_cmd.bench_triton)
bench.command("compare")(perf_cmd.bench_compare)
bench.command("wait-quiet")(perf_cmd.wait_quiet)
bench.command("cpu-watch")(perf_cmd.cpu_watch)
bench.command("run")(bench_cmd.bench_run)
app.add_typer(bench, name="bench")


if __name__ == "__main__":
    app()
