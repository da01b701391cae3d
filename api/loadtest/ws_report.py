"""Rendering of load-test reports: rich tables for the terminal, a matplotlib figure for files."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from api.loadtest.measure import Measurement
from api.loadtest.ws_load import Progress

PLOT_HINT = "--plot needs matplotlib: pip install 'framegate[plot]' (or: pip install matplotlib)"


class PlotUnavailable(RuntimeError):
    pass


def _num(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def progress_line(p: Progress) -> str:
    phase = f"{p.sending} sending" if p.sending else f"draining, {p.owed} replies owed"
    return (
        f"[bold]{p.elapsed_s:5.1f}[/] s of {p.span_s:.0f}  sent {p.sent}  "
        f"[green]processed {p.processed}[/]  [yellow]dropped {p.dropped}[/]  "
        f"[red]errors {p.errors}[/]  {p.current_fps:.1f} fps  ({p.live} live, {phase})"
    )


def ws_table(report: dict) -> Table:
    c = report["config"]
    title = (
        f"loadtest {c['pipeline']}: {c['sessions']} sessions × {c['fps']:g} fps × "
        f"{c['duration_s']:g} s  ({c['stream_url']})"
    )
    table = Table(title=title, show_header=True, title_justify="left")
    table.add_column("metric", style="bold")
    table.add_column("value")
    for name, value in _ws_rows(report):
        table.add_row(name, value)
    return table


def _ws_rows(report: dict) -> list[tuple[str, str]]:
    f, fps, lat = report["frames"], report["fps"], report["latency_ms"]
    s, g = report["sessions"], report["generator"]
    rows = [
        (
            "frames",
            f"sent {f['sent']} = processed [green]{f['processed']}[/] + dropped "
            f"[yellow]{f['dropped']}[/] + errors [red]{f['errors']}[/]  (planned {f['planned']}"
            f", not sent {f['not_sent']})",
        ),
        ("sessions", f"{s['connected']}/{s['planned']} connected, {s['ended_with_error']} errored"),
        (
            "achieved fps",
            f"per session min {fps['per_session']['min']:.2f} / mean "
            f"{fps['per_session']['mean']:.2f} / max {fps['per_session']['max']:.2f}; "
            f"total {fps['total']:.1f} (offered {fps['offered']:g})",
        ),
        (
            "latency ms",
            f"p50 {lat['p50']:.0f} / p90 {lat['p90']:.0f} / p99 {lat['p99']:.0f} / max "
            f"{lat['max']:.0f}  (send → result, {lat['count']} results)",
        ),
        ("slow_down", str(report["slow_down"])),
        ("errors by code", _codes(report["errors_by_code"])),
    ]
    if f["error_results"]:
        rows.append(("error results", f"{f['error_results']} results were {{'error': ...}}"))
    rows += _server_rows(report["server"])
    sending, whole = g["sending"], g["whole_run"]
    rows.append(
        (
            "generator",
            f"CPU while sending {sending['cpu_s']:.2f} s / {sending['wall_s']:.1f} s = "
            f"{sending['percent_of_core']:.1f}% of one core (whole run {whole['cpu_s']:.2f} s / "
            f"{whole['wall_s']:.1f} s = {whole['percent_of_core']:.1f}%); os.cpu_count() "
            f"{g['cpu_count']}; schedule lag p99 {g['schedule_lag_p99_ms']:.1f} ms",
        )
    )
    return rows


def _codes(codes: dict[str, dict[str, int]]) -> str:
    if not codes:
        return "none"
    return ", ".join(
        f"[red]{code}[/] {n['sessions']} session(s), {n['frames']} frame(s)"
        for code, n in codes.items()
    )


def _server_rows(server: dict) -> list[tuple[str, str]]:
    if not server.get("available"):
        return [("server /metrics", f"unavailable: {escape(server.get('reason', ''))}")]
    b, t, sl = server["batch_size"], server["triton_request_ms"], server["stream_latency_ms"]
    frames = server["stream_frames"]
    return [
        (
            "server batch size",
            f"mean {_num(b['mean'], 2)} over {b['batches']} batches ({b['frames']} frames)",
        ),
        (
            "server Triton ms",
            f"p50 {_quantile(t, 'p50')} / p99 {_quantile(t, 'p99')} / mean {_num(t['mean'])}  "
            f"({t['count']} requests; quantiles from histogram buckets)",
        ),
        (
            "server frames",
            f"received {frames.get('received', 0)}, processed {frames.get('processed', 0)}, "
            f"dropped {frames.get('dropped', 0)}; stream latency p50 {_quantile(sl, 'p50')} / "
            f"p99 {_quantile(sl, 'p99')} ms; slow_down {server['slow_down']}; errors "
            f"{server['errors_by_code'] or 'none'}",
        ),
    ]


def _quantile(summary: dict, key: str) -> str:
    """A histogram quantile; "≥ bound" when it fell above the highest finite bucket."""
    value = summary[key]
    if value is not None and summary["above_last_bound"] and value >= summary["last_bound"]:
        return f"≥{value:.0f}"
    return _num(value)


def triton_table(rows: Sequence[Measurement], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in (
        "concurrency",
        "batch",
        "requests",
        "frames/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "frame errors",
        "queue ms/req",
        "infer ms/req",
        "other load (cores)",
    ):
        table.add_column(column, justify="right")
    for m in rows:
        lat = m.latency_ms
        table.add_row(
            str(m.concurrency),
            str(m.batch),
            str(m.requests),
            f"{m.frames_per_s:.1f}",
            *(f"{lat[k]:.1f}" for k in ("p50", "p90", "p99", "max")),
            str(m.frame_errors),
            _num(m.server.get("queue_ms_per_request")),
            _num(m.server.get("compute_infer_ms_per_request")),
            _num(m.cpu.get("other_cores"), 2),
        )
    return table


def check_plot_available() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise PlotUnavailable(PLOT_HINT) from exc


def write_plot(report: dict, path: Path) -> Path:
    """Latency p50/p99 and throughput (processed/dropped per second) over the run, 1 s buckets."""
    check_plot_available()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    buckets = report["timeline"]
    t = [b["t"] for b in buckets]
    fig, (latency, throughput) = plt.subplots(2, 1, sharex=True, figsize=(10, 6))
    try:
        for key, label in (("latency_p50_ms", "p50"), ("latency_p99_ms", "p99")):
            latency.plot(t, [b[key] if b[key] is not None else float("nan") for b in buckets],
                         marker=".", label=label)  # fmt: skip
        latency.set_ylabel("latency ms (send → result)")
        latency.legend()
        latency.grid(alpha=0.3)
        for key in ("sent", "processed", "dropped"):
            throughput.plot(t, [b[key] for b in buckets], drawstyle="steps-post", label=key)
        throughput.set_ylabel("frames per second")
        throughput.set_xlabel("seconds since start")
        throughput.legend()
        throughput.grid(alpha=0.3)
        c = report["config"]
        fig.suptitle(
            f"{c['pipeline']}: {c['sessions']} sessions × {c['fps']:g} fps × {c['duration_s']:g} s"
        )
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path
