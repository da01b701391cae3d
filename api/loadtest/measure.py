"""Shared measurement records and machine facts for the benchmarks. CPU accounting lives in
api/loadtest/cpu.py; `CpuMonitor` and `wait_for_quiet` are re-exported here for their callers."""

from __future__ import annotations

import datetime as dt
import os
import platform
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from api.loadtest.cpu import CpuMonitor as CpuMonitor
from api.loadtest.cpu import wait_for_quiet as wait_for_quiet


@dataclass
class Measurement:
    """One closed-loop run: `concurrency` callers, each sending batches of `batch` frames."""

    target: str  # "in-process" | "triton"
    subject: str  # "pipeline yolo_ocr", "model yolo", ...
    batch: int
    concurrency: int
    requests: int  # batches completed inside the measurement window
    frames: int
    seconds: float  # the measurement window
    frames_per_s: float
    latency_ms: dict[str, float]  # per batch (request): mean, p50, p90, p99, max
    frame_errors: int = 0  # frames whose result was {"error": ...}: must be 0 for real work
    objects: int = 0  # detections + texts found: a cheap sign that the models really ran
    server: dict[str, float] = field(default_factory=dict)  # Triton statistics, when measured
    cpu: dict[str, float] = field(default_factory=dict)  # CpuMonitor: ours vs other load

    def as_dict(self) -> dict:
        return asdict(self)


def local_grpc_port(url: str) -> int | None:
    """The port of a local Triton gRPC URL (host:port), None for a remote one."""
    host, _, port = url.rpartition(":")
    if host in ("127.0.0.1", "localhost", "[::1]", "0.0.0.0") and port.isdigit():
        return int(port)
    return None


def latency_summary(latencies_s: Sequence[float]) -> dict[str, float]:
    if not latencies_s:
        return {"mean": 0.0, "p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0}
    ms = np.asarray(latencies_s, dtype=np.float64) * 1000.0
    return {
        "mean": round(float(ms.mean()), 2),
        "p50": round(float(np.percentile(ms, 50)), 2),
        "p90": round(float(np.percentile(ms, 90)), 2),
        "p99": round(float(np.percentile(ms, 99)), 2),
        "max": round(float(ms.max()), 2),
    }


def count_results(results: Sequence[dict]) -> tuple[int, int]:
    """(frames with an error result, detections + texts found)."""
    errors = sum(1 for r in results if "error" in r)
    objects = sum(len(r.get("detections", ())) + len(r.get("texts", ())) for r in results)
    return errors, objects


def cycle_batch(jpegs: Sequence[bytes], index: int, batch: int) -> list[bytes]:
    """The index-th batch of a run, taking frames round-robin so every batch is different."""
    n = len(jpegs)
    return [jpegs[(index * batch + k) % n] for k in range(batch)]


def _cpuinfo_field(name: str, cpuinfo: str | None = None) -> str | None:
    """The first `name : value` line of /proc/cpuinfo (or of `cpuinfo`), or None."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo") as f:
                cpuinfo = f.read()
        except OSError:
            return None
    for line in cpuinfo.splitlines():
        if line.startswith(name):
            return line.split(":", 1)[1].strip()
    return None


def cpu_model() -> str:
    return _cpuinfo_field("model name") or platform.processor() or "unknown"


# The vector extensions that move ONNX Runtime's and OpenCV's speed between machines (the same
# benchmark moved about 3x between a machine with AVX-512 and one without).
VECTOR_FLAGS = ("avx2", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "amx_tile")


def cpu_flags(cpuinfo: str | None = None) -> str:
    """The VECTOR_FLAGS the CPU has, space-separated ("none" without any, "unknown" when
    /proc/cpuinfo cannot be read)."""
    flags = _cpuinfo_field("flags", cpuinfo)
    if flags is None:
        return "unknown"
    have = set(flags.split())
    return " ".join(f for f in VECTOR_FLAGS if f in have) or "none"


def machine_facts() -> dict[str, str]:
    import cv2
    import onnxruntime

    now = dt.datetime.now(dt.timezone.utc)  # noqa: UP017 (datetime.UTC is Python 3.11+)
    return {
        "date_utc": now.strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(len(os.sched_getaffinity(0))),
        "cpu": cpu_model(),
        "cpu_flags": cpu_flags(),
        "python": sys.version.split()[0],
        "onnxruntime": onnxruntime.__version__,
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "platform": platform.platform(),
    }


def markdown_table(rows: Sequence[Measurement]) -> str:
    head = (
        "| target | subject | batch | conc. | requests | frames/s | p50 ms | p90 ms | p99 ms "
        "| frame errors | objects | other load (cores) |"
    )
    lines = [head, "|" + " --- |" * 12]
    for m in rows:
        lat = m.latency_ms
        lines.append(
            f"| {m.target} | {m.subject} | {m.batch} | {m.concurrency} | {m.requests} "
            f"| {m.frames_per_s:.1f} | {lat['p50']:.1f} | {lat['p90']:.1f} | {lat['p99']:.1f} "
            f"| {m.frame_errors} | {m.objects} | {m.cpu.get('other_cores', float('nan')):.2f} |"
        )
    return "\n".join(lines)
