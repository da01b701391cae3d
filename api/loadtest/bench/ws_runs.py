"""The WebSocket measurements of the full-stack rows: open-loop saturation (api.loadtest.ws_load)
with a CPU window over its measured part, and single-frame latency (closed loop, one session)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Sequence
from typing import TypedDict

from api.loadtest.cpu import CpuWindow, WindowCpu
from api.loadtest.measure import latency_summary
from api.loadtest.ws_load import COMPRESSION, STREAM_PATH, LoadConfig, WsLoad


class WsOptions(TypedDict):
    """Keyword arguments of websockets' connect() that every bench connection passes."""

    compression: str | None
    max_size: int | None
    ping_interval: float | None


WS_OPTIONS: WsOptions = {"compression": COMPRESSION, "max_size": None, "ping_interval": None}
POLL_S = 0.01


def stream_url(base_url: str, pipeline: str) -> str:
    return base_url.replace("http://", "ws://") + f"{STREAM_PATH}?pipeline_id={pipeline}"


async def single_frame_latency(
    base_url: str, pipeline: str, jpegs: Sequence[bytes], duration_s: float, warmup: int = 3
) -> list[float]:
    """One session, one frame at a time: send, wait for its reply, send the next."""
    from websockets.asyncio.client import connect

    latencies: list[float] = []
    async with connect(stream_url(base_url, pipeline), **WS_OPTIONS) as ws:
        started = time.perf_counter()
        k = 0
        while k < warmup + 5 or time.perf_counter() - started < duration_s:
            t0 = time.perf_counter()
            await ws.send(jpegs[k % len(jpegs)])
            while True:
                message = json.loads(await ws.recv())
                if message.get("frame_index") == k:
                    break
            if "result" not in message:
                raise RuntimeError(f"single-frame run got {message}")
            if k >= warmup:
                latencies.append(time.perf_counter() - t0)
            k += 1
    return latencies


async def ws_saturation(
    base_url: str,
    pipeline: str,
    jpegs: Sequence[bytes],
    sessions: int,
    total_fps: float,
    duration_s: float,
    warmup_s: float,
    cpu: CpuWindow,
    metrics: bool = True,
) -> tuple[dict, WindowCpu]:
    """Open-loop load for warmup_s + duration_s; throughput, latency and the CPU window are taken
    over [warmup_s, warmup_s + duration_s] of the send schedule."""
    config = LoadConfig(
        url=base_url,
        pipeline=pipeline,
        sessions=sessions,
        fps=total_fps / sessions,
        duration_s=warmup_s + duration_s,
        drain_timeout_s=3.0,
        metrics_url=None if metrics else base_url + "/no-metrics",
    )
    load = WsLoad(config, jpegs)
    prober = asyncio.create_task(_measured_window(load, warmup_s, duration_s, cpu))
    report = await load.run()
    window: tuple[float, float, WindowCpu] | None = None
    with contextlib.suppress(asyncio.CancelledError):
        window = await asyncio.wait_for(prober, timeout=max(warmup_s + duration_s, 1) + 30)
    if window is None:
        raise RuntimeError("the measurement window was cancelled before it closed")
    start, end, measured = window
    return _window_stats(load, report, start, end, total_fps), measured


async def _measured_window(
    load: WsLoad, warmup_s: float, duration_s: float, cpu: CpuWindow
) -> tuple[float, float, WindowCpu]:
    """Runs the CPU window over [warmup_s, warmup_s + duration_s] of the send schedule; its start
    and end on the load's clock, and what it measured."""
    while load.t0 == 0.0:  # the clock starts once every session is connected
        await asyncio.sleep(POLL_S)
    await asyncio.sleep(max(load.t0 + warmup_s - time.perf_counter(), 0))
    cpu.start()
    start = time.perf_counter() - load.t0
    await asyncio.sleep(max(load.t0 + warmup_s + duration_s - time.perf_counter(), 0))
    measured = cpu.stop()
    return start, time.perf_counter() - load.t0, measured


def _window_stats(load: WsLoad, report: dict, start: float, end: float, total_fps: float) -> dict:
    """The frames processed and dropped inside [start, end), with the run's own report."""
    latencies = []
    dropped = 0
    for r in load.records:
        for at, lat in zip(r.processed_at, r.latencies, strict=True):
            if start <= at < end:
                latencies.append(lat)
        dropped += sum(1 for at in r.dropped_at if start <= at < end)
    return {
        "frames": len(latencies),
        "seconds": round(end - start, 3),
        "latency_ms": latency_summary(latencies),
        "dropped": dropped,
        "result_errors": sum(r.result_errors for r in load.records),
        "offered_fps": round(total_fps, 2),
        "report": {
            k: report.get(k)
            for k in ("frames", "errors_by_code", "sessions", "schedule_lag_ms", "warnings")
        },
        "server": report.get("server", {}),
    }
