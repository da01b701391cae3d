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
    next_index = 0
    completed = 0
    window_start: float | None = None
    window_end: float | None = None
    latencies: list[float] = []
    errors = objects = 0
    before: dict = {}
    window_opened = asyncio.Event()
    monitor = monitor or CpuMonitor()
    cpu: dict[str, float] = {}

    def open_window() -> None:
        nonlocal window_start
        monitor.start()
        window_start = time.perf_counter()
        window_opened.set()

    async def caller() -> None:
        nonlocal next_index, completed, window_end, errors, objects, cpu
        while window_end is None:
            frames = cycle_batch(jpegs, next_index, batch)
            next_index += 1
            t0 = time.perf_counter()
            results = await client.infer_frames(model, frames)
            t1 = time.perf_counter()
            if window_end is not None:
                break  # finished after the window closed: not counted
            completed += 1
            if window_start is None:
                if completed >= warmup:
                    open_window()
                continue
            latencies.append(t1 - t0)
            e, o = count_results(results)
            errors, objects = errors + e, objects + o
            if t1 - window_start >= duration_s and len(latencies) >= min_requests:
                window_end = t1
                cpu = monitor.stop()

    try:
        if warmup == 0:
            open_window()
        callers = asyncio.gather(*(caller() for _ in range(concurrency)))
        opened = asyncio.ensure_future(window_opened.wait())
        # A caller that fails during warm-up (Triton unreachable) must end the wait, not hang it.
        either: set[asyncio.Future[Any]] = {opened, callers}
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        opened.cancel()
        if callers.done():
            callers.result()  # re-raises the callers' failure
        before = await client.statistics(model)
        await callers
        after = await client.statistics(model)
    finally:
        await client.close()
    if window_start is None or window_end is None:
        raise RuntimeError("measurement window never opened or closed")
    seconds = window_end - window_start
    frames_done = len(latencies) * batch
    return Measurement(
        target="triton",
        subject=f"pipeline {model.removeprefix('pipeline_')}",
        batch=batch,
        concurrency=concurrency,
        requests=len(latencies),
        frames=frames_done,
        seconds=round(seconds, 3),
        frames_per_s=round(frames_done / seconds, 2) if seconds > 0 else 0.0,
        latency_ms=latency_summary(latencies),
        frame_errors=errors,
        objects=objects,
        server=server_delta(before, after),
        cpu=cpu,
    )


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


async def server_version(url: str) -> str:
    import tritonclient.grpc.aio as grpcclient

    client = grpcclient.InferenceServerClient(url=url)
    try:
        meta = await client.get_server_metadata(as_json=True)
    finally:
        await client.close()
    return str(meta.get("version", "unknown"))
