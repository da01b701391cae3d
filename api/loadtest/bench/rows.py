"""A row of the benchmark table, built from a closed-loop measurement (a, b) or a WebSocket run
(c, c<budget>, d, e)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from api.loadtest.measure import Measurement


@dataclass
class Row:
    key: str  # a .. e
    name: str
    frames: int  # processed inside the window
    seconds: float  # the window
    frames_per_s: float
    latency_ms: dict[str, float]
    cpu_s: float  # all involved processes, in the window
    cpu_ms_per_frame: float
    offered_fps: float | None = None
    dropped: int = 0
    result_errors: int = 0
    other_cores: float | None = None
    detail: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def ws_row(key: str, name: str, m: dict) -> Row:
    """A WebSocket row from ws_saturation's measurement with stack.cpu_fields merged in."""
    seconds = m["seconds"] or 1e-9
    frames = m["frames"]
    server = m.get("server", {})
    detail = {
        "ws_report": m["report"],
        "generator_cores": m.get("generator_cores"),
        "cpu": m.get("cpu_breakdown", {}),
    }
    batch_mean = _mean(server, "batch_size")
    if batch_mean is not None:
        detail["batch_size_mean"] = batch_mean
    triton_ms = _mean(server, "triton_request_ms")
    if triton_ms is not None:
        detail["triton_request_ms_mean"] = triton_ms
    return Row(
        key=key,
        name=name,
        frames=frames,
        seconds=m["seconds"],
        frames_per_s=round(frames / seconds, 2),
        latency_ms=m["latency_ms"],
        cpu_s=m["cpu_s"],
        cpu_ms_per_frame=round(m["cpu_s"] / frames * 1000, 2) if frames else 0.0,
        offered_fps=m["offered_fps"],
        dropped=m["dropped"],
        result_errors=m["result_errors"],
        other_cores=m.get("other_cores"),
        detail=detail,
    )


def best_row(key: str, name: str, runs: dict[int, Measurement]) -> Row:
    """A closed-loop row (a, b) from runs at several batch sizes: the fastest, with the others
    kept in its detail."""
    best = max(runs.values(), key=lambda m: m.frames_per_s)
    cpu_s = best.cpu.get("ours_cores", 0.0) * best.seconds
    detail = {
        "latency": "per request (batch)",
        "frames_per_s_by_batch": {b: m.frames_per_s for b, m in runs.items()},
    }
    if best.target == "triton":
        detail["server"] = best.server  # Triton's statistics over the window
    per_frame_ms = round(cpu_s / best.frames * 1000, 2) if best.frames else 0.0
    return Row(
        key, f"{name}, batch {best.batch}", best.frames, best.seconds, best.frames_per_s,
        best.latency_ms, round(cpu_s, 3), per_frame_ms, result_errors=best.frame_errors,
        other_cores=best.cpu.get("other_cores"), detail=detail,
    )  # fmt: skip


def _mean(server: dict, metric: str) -> float | None:
    value = (server.get(metric) or {}).get("mean")
    return round(float(value), 2) if isinstance(value, int | float) else None


def progress_line(r: Row) -> str:
    return (
        f"  {r.key}: {r.frames_per_s:7.1f} frames/s  p99 {r.latency_ms['p99']:8.1f} ms  "
        f"cpu {r.cpu_ms_per_frame:6.1f} ms/frame  frames {r.frames}  dropped {r.dropped}  "
        f"errors {r.result_errors}"
    )
