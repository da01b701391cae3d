"""Ratios between rows and the bars they are held to (pure logic, no servers)."""

from __future__ import annotations

from api.loadtest.bench.rows import Row

# Latency bars: ratios of p99 to the single-frame p50; a bar is met when the ratio is at most this.
HALF_LOAD_BAR = 2.0
OVERLOAD_BAR = 3.0
# Throughput bars (issue 10): the stack keeps >= 85% of the model's own throughput, and on 2 cores
# gateway batching must never cost throughput (>= 95% of one request per frame, i.e. noise).
THROUGHPUT_BARS = {"c/a": 0.85, "c/d": 0.95}
# /health must stay fast while the pipeline is saturated: the event loop is never blocked.
HEALTH_P99_BAR_MS = 50.0


def ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 2) if denominator else None


def ratios(rows: dict[str, Row]) -> dict[str, dict[str, float | None]]:
    """c/a, c/b, c/d, c/e for throughput (above 1: c is faster), p99 (above 1: c is slower) and
    CPU per frame (above 1: c costs more)."""
    out: dict[str, dict[str, float | None]] = {}
    c = rows.get("c")
    if c is None:
        return out
    for other in ("a", "b", "d", "e"):
        o = rows.get(other)
        if o is not None:
            out[f"c/{other}"] = _ratio_row(c, o)
    # Row c at other latency budgets, against the limit (no bar: the default is row c).
    if "a" in rows:
        for key in sorted(k for k in rows if k.startswith("c") and k != "c"):
            out[f"{key}/a"] = _ratio_row(rows[key], rows["a"])
    return out


def _ratio_row(x: Row, y: Row) -> dict[str, float | None]:
    return {
        "frames_per_s": ratio(x.frames_per_s, y.frames_per_s),
        "p99_ms": ratio(x.latency_ms["p99"], y.latency_ms["p99"]),
        "cpu_ms_per_frame": ratio(x.cpu_ms_per_frame, y.cpu_ms_per_frame),
    }


def throughput_verdict(name: str, frames_ratio: float | None) -> str:
    """'≥ 0.85: **met**' / '... **missed**' for a ratio with a bar, '' otherwise."""
    limit = THROUGHPUT_BARS.get(name)
    if limit is None or frames_ratio is None:
        return ""
    return f"≥ {limit:g}: **{'met' if frames_ratio >= limit else 'missed'}**"


def bar(name: str, p99_ms: float, single_ms: float, limit: float, why_missed: str = "") -> dict:
    """A latency bar: p99 against the single-frame latency, met when the ratio is <= limit."""
    value = ratio(p99_ms, single_ms)
    met = single_ms > 0 and p99_ms <= limit * single_ms
    return {
        "name": name,
        "p99_ms": p99_ms,
        "single_frame_ms": single_ms,
        "ratio": value,
        "limit": limit,
        "met": met,
        "why_missed": "" if met else why_missed,
    }


def health_bar(p99_ms: float, requests: int) -> dict:
    """/health p99 under load against HEALTH_P99_BAR_MS (strictly below); no answers: missed."""
    return {"limit_ms": HEALTH_P99_BAR_MS, "met": requests > 0 and p99_ms < HEALTH_P99_BAR_MS}


def explain_half_load(half: Row, single_ms: float, batch_ms: float | None) -> str:
    parts = [f"p99 {half.latency_ms['p99']:.0f} ms vs single frame {single_ms:.0f} ms"]
    if batch_ms:
        parts.append(
            f"frames share micro-batches (mean {half.detail.get('batch_size_mean', '?')} frames),"
            f" and a batch's Triton time is {batch_ms:.0f} ms on average"
        )
    if half.dropped:
        parts.append(f"{half.dropped} frames dropped even at half load")
    return "; ".join(parts)


def explain_overload(
    over: Row, single_ms: float, batch_ms: float | None, budget_ms: float | None = None
) -> str:
    parts = [f"p99 {over.latency_ms['p99']:.0f} ms vs single frame {single_ms:.0f} ms"]
    if not budget_ms:
        parts.append(
            "without a latency budget, drops only bound each session (1 in flight + 1 waiting), "
            "so every busy session keeps a frame in the system and the wait grows with sessions "
            "/ throughput (Little's law)"
        )
    elif budget_ms > OVERLOAD_BAR * single_ms:
        parts.append(
            f"delivered results are held to the latency budget (STREAM_LATENCY_BUDGET_MS="
            f"{budget_ms:g}), which is above {OVERLOAD_BAR:g}x this run's single-frame latency, "
            "and p99 lands near the budget (a frame may wait half of it for room, then its round "
            "trip varies)"
        )
    else:
        # A budget within the bar cannot be what broke it: frames expire only while they wait
        # for room, and one sent with room goes even if late (late beats never).
        parts.append(
            f"the latency budget (STREAM_LATENCY_BUDGET_MS={budget_ms:g}) is within "
            f"{OVERLOAD_BAR:g}x this run's single-frame latency, but frames expire only while "
            "they wait for room: once sent, a frame's round trip at Triton under overload decides "
            "its latency"
        )
    if batch_ms:
        parts.append(f"a batch's Triton round trip is {batch_ms:.0f} ms on average in this run")
    return "; ".join(parts)
