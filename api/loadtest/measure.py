"""Shared measurement records and machine facts for the benchmarks."""

from __future__ import annotations

import datetime as dt
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np


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


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _machine_busy_s() -> float:
    """CPU seconds all cores spent busy since boot (/proc/stat: all but idle and iowait)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / _TICK


def _process_cpu_s(pid: int) -> tuple[int, float] | None:
    """(process group, CPU seconds) of a live process, None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # fields after "pid (comm)": state ppid pgrp session tty tpgid flags minflt cminflt majflt
    # cmajflt utime stime ...
    return int(rest[2]), (int(rest[11]) + int(rest[12])) / _TICK


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def find_triton_group(grpc_port: int) -> int | None:
    """Process group of the local tritonserver serving gRPC on `grpc_port` (the embedded server
    runs in its own group, its Python stubs included)."""
    for pid in _pids():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if (
            argv
            and argv[0].endswith(b"tritonserver")
            and f"--grpc-port={grpc_port}".encode() in argv
        ):
            try:
                return os.getpgid(pid)
            except ProcessLookupError:
                return None
    return None


class CpuMonitor:
    """Splits the machine's CPU use over a measurement window into ours (this process, the
    children it has reaped, e.g. perf_analyzer, and the local Triton's process group) and the
    rest: other people's work on a shared machine, reported as `other_cores` (0 when quiet)."""

    def __init__(self, triton_grpc_port: int | None = None) -> None:
        self.group = find_triton_group(triton_grpc_port) if triton_grpc_port else None
        self._members: list[int] = []
        self._start: tuple[float, float, float] | None = None

    def _group_pids(self) -> list[int]:
        if self.group is None:
            return []
        out = []
        for pid in _pids():
            info = _process_cpu_s(pid)
            if info is not None and info[0] == self.group:
                out.append(pid)
        return out

    def _ours_s(self) -> float:
        t = os.times()
        own = t.user + t.system + t.children_user + t.children_system
        for pid in self._members:
            info = _process_cpu_s(pid)
            if info is not None:
                own += info[1]
        return own

    def start(self) -> None:
        self._members = self._group_pids()
        self._start = (time.monotonic(), _machine_busy_s(), self._ours_s())

    def stop(self) -> dict[str, float]:
        if self._start is None:
            raise RuntimeError("CpuMonitor.stop() before start()")
        wall0, busy0, ours0 = self._start
        wall = max(time.monotonic() - wall0, 1e-9)
        busy = (_machine_busy_s() - busy0) / wall
        ours = (self._ours_s() - ours0) / wall
        return {
            "machine_cores": round(busy, 2),
            "ours_cores": round(ours, 2),
            "other_cores": round(max(busy - ours, 0.0), 2),
        }


def wait_for_quiet(
    max_other_cores: float = 0.3,
    sample_s: float = 10.0,
    timeout_s: float = 1800.0,
    triton_grpc_port: int | None = None,
    on_sample: Callable[[dict[str, float]], None] | None = None,
) -> tuple[bool, dict[str, float]]:
    """Sample the machine until a whole `sample_s` window has at most `max_other_cores` of other
    people's load, or `timeout_s` passes: (quiet, last sample)."""
    monitor = CpuMonitor(triton_grpc_port)
    deadline = time.monotonic() + timeout_s
    while True:
        monitor.start()
        time.sleep(sample_s)
        sample = monitor.stop()
        if on_sample:
            on_sample(sample)
        if sample["other_cores"] <= max_other_cores:
            return True, sample
        if time.monotonic() >= deadline:
            return False, sample


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


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_facts() -> dict[str, str]:
    import cv2
    import onnxruntime

    now = dt.datetime.now(dt.timezone.utc)  # noqa: UP017 (datetime.UTC is Python 3.11+)
    return {
        "date_utc": now.strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(len(os.sched_getaffinity(0))),
        "cpu": cpu_model(),
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
