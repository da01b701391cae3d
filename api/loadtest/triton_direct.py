"""Triton-direct closed-loop load: N concurrent callers, each sending a batch of B real JPEGs to
`pipeline_<id>` over gRPC (tritonclient.grpc.aio, through api.inference.triton_client), waiting
for the answer, then sending the next. No gateway in between.

Like perf_analyzer, the callers keep running for a warm-up, then throughput and latency are taken
over a measurement window in which all N callers stay busy: a batch counts when it completes
inside the window (as perf_analyzer counts), and the callers stop sending once it is over.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from api.inference.triton_client import TritonClient
from api.loadtest.cpu import CpuMonitor
from api.loadtest.measure import (
    Measurement,
    count_results,
    cycle_batch,
    latency_summary,
)


def _stat(stats: dict, *path: str) -> int:
    value: object = stats
    for key in path:
        if not isinstance(value, dict):
            return 0
        value = value.get(key, {})
    return int(value) if isinstance(value, int | str) and str(value).isdigit() else 0


def server_delta(before: dict, after: dict) -> dict[str, float]:
    """Triton's own view of the window (model statistics difference): requests, executions
    (dynamic batcher runs), frames, and the average per request of queue and compute time."""
    requests = _stat(after, "inference_stats", "success", "count") - _stat(
        before, "inference_stats", "success", "count"
    )
    out: dict[str, float] = {
        "requests": requests,
        "executions": _stat(after, "execution_count") - _stat(before, "execution_count"),
        "frames": _stat(after, "inference_count") - _stat(before, "inference_count"),
    }
    for phase in ("queue", "compute_input", "compute_infer", "compute_output"):
        ns = _stat(after, "inference_stats", phase, "ns") - _stat(
            before, "inference_stats", phase, "ns"
        )
        out[f"{phase}_ms_per_request"] = round(ns / requests / 1e6, 2) if requests else 0.0
    return out


@dataclass
class _ClosedLoop:
    """What the concurrent callers of one measurement share: the frame counter, the window and
    what was measured inside it."""

    client: TritonClient
    model: str
    jpegs: Sequence[bytes]
    batch: int
    warmup: int
    duration_s: float
    min_requests: int
    monitor: CpuMonitor
    next_index: int = 0
    completed: int = 0
    window_start: float | None = None
    window_end: float | None = None
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    objects: int = 0
    cpu: dict[str, float] = field(default_factory=dict)
    opened: asyncio.Event = field(default_factory=asyncio.Event)

    def open_window(self) -> None:
        self.monitor.start()
        self.window_start = time.perf_counter()
        self.opened.set()

    async def caller(self) -> None:
        while self.window_end is None:
            frames = cycle_batch(self.jpegs, self.next_index, self.batch)
            self.next_index += 1
            t0 = time.perf_counter()
            results = await self.client.infer_frames(self.model, frames)
            t1 = time.perf_counter()
            if self.window_end is not None:
                break  # finished after the window closed: not counted
            self._completed(t1 - t0, t1, results)

    def _completed(self, latency: float, now: float, results: list[dict]) -> None:
        self.completed += 1
        if self.window_start is None:
            if self.completed >= self.warmup:
                self.open_window()
            return
        self.latencies.append(latency)
        e, o = count_results(results)
        self.errors, self.objects = self.errors + e, self.objects + o
        if now - self.window_start >= self.duration_s and len(self.latencies) >= self.min_requests:
            self.window_end = now
            self.cpu = self.monitor.stop()

    async def run(self, concurrency: int) -> tuple[dict, dict]:
        """Runs the callers until the window closes: Triton's statistics as it opened and after."""
        if self.warmup == 0:
            self.open_window()
        callers = asyncio.gather(*(self.caller() for _ in range(concurrency)))
        opened = asyncio.ensure_future(self.opened.wait())
        # A caller that fails during warm-up (Triton unreachable) must end the wait, not hang it.
        either: set[asyncio.Future[Any]] = {opened, callers}
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        opened.cancel()
        if callers.done():
            callers.result()  # re-raises the callers' failure
        before = await self.client.statistics(self.model)
        await callers
        return before, await self.client.statistics(self.model)


async def measure_triton(
    url: str,
    model: str,
    jpegs: Sequence[bytes],
    batch: int,
    concurrency: int,
    duration_s: float = 10.0,
    warmup_requests: int | None = None,
    min_requests: int = 5,
    timeout_s: float = 300.0,
    monitor: CpuMonitor | None = None,
) -> Measurement:
    """One closed-loop measurement. The window opens after `warmup_requests` completed batches
    (default: 2 per caller) and closes when `duration_s` has passed and at least `min_requests`
    batches completed inside it."""
    if batch < 1 or concurrency < 1:
        raise ValueError("batch and concurrency must be at least 1")
    warmup = 2 * concurrency if warmup_requests is None else warmup_requests
    client = TritonClient(url, timeout_s=timeout_s)
    loop = _ClosedLoop(
        client, model, jpegs, batch, warmup, duration_s, min_requests, monitor or CpuMonitor()
    )
    try:
        before, after = await loop.run(concurrency)
    finally:
        await client.close()
    return _measurement(loop, concurrency, server_delta(before, after))


def _measurement(loop: _ClosedLoop, concurrency: int, server: dict[str, float]) -> Measurement:
    if loop.window_start is None or loop.window_end is None:
        raise RuntimeError("measurement window never opened or closed")
    seconds = loop.window_end - loop.window_start
    frames_done = len(loop.latencies) * loop.batch
    return Measurement(
        target="triton",
        subject=f"pipeline {loop.model.removeprefix('pipeline_')}",
        batch=loop.batch,
        concurrency=concurrency,
        requests=len(loop.latencies),
        frames=frames_done,
        seconds=round(seconds, 3),
        frames_per_s=round(frames_done / seconds, 2) if seconds > 0 else 0.0,
        latency_ms=latency_summary(loop.latencies),
        frame_errors=loop.errors,
        objects=loop.objects,
        server=server,
        cpu=loop.cpu,
    )


async def measure_concurrencies(
    url: str,
    kind: str,
    jpegs: Sequence[bytes],
    batch: int,
    concurrencies: Sequence[int],
    duration_s: float = 10.0,
    min_requests: int = 5,
    progress: Callable[[Measurement], object] | None = None,
    monitor: CpuMonitor | None = None,
) -> list[Measurement]:
    """`pipeline_<kind>` at one batch size, one measurement per concurrency level."""
    out = []
    for concurrency in concurrencies:
        m = await measure_triton(
            url,
            f"pipeline_{kind}",
            jpegs,
            batch,
            concurrency,
            duration_s=duration_s,
            min_requests=min_requests,
            monitor=monitor,
        )
        out.append(m)
        if progress:
            progress(m)
    return out


async def run_triton(
    url: str,
    jpegs: Sequence[bytes],
    kinds: Sequence[str] = ("yolo", "yolo_ocr", "ocr"),
    batches: Sequence[int] = (1, 8),
    concurrencies: Sequence[int] = (1, 2, 4),
    duration_s: float = 10.0,
    min_requests: int = 5,
    progress: Callable[[Measurement], object] | None = None,
    monitor: CpuMonitor | None = None,
) -> list[Measurement]:
    out = []
    for kind in kinds:
        for batch in batches:
            out += await measure_concurrencies(
                url, kind, jpegs, batch, concurrencies, duration_s, min_requests, progress, monitor
            )
    return out


async def server_version(url: str) -> str:
    import tritonclient.grpc.aio as grpcclient

    client = grpcclient.InferenceServerClient(url=url)
    try:
        meta = await client.get_server_metadata(as_json=True)
    finally:
        await client.close()
    return str(meta.get("version", "unknown"))
