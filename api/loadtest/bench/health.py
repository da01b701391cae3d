"""/health latency while the pipeline is saturated: N closed-loop WebSocket sessions send frames
flat out (the next frame as soon as the previous one is answered) while /health is polled.
A blocked event loop shows up here first."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Sequence

from api.core.polling import apoll_until
from api.loadtest.bench.ws_runs import WS_OPTIONS, stream_url
from api.loadtest.measure import latency_summary

SESSIONS = 8
REQUESTS = 200
INTERVAL_S = 0.01  # between one answer and the next request: ~100 probes/s at most
SATURATE_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
POLL_S = 0.01


async def health_under_load(
    base_url: str,
    pipeline: str,
    jpegs: Sequence[bytes],
    sessions: int = SESSIONS,
    requests: int = REQUESTS,
    interval_s: float = INTERVAL_S,
) -> dict:
    """Latency of `requests` GET /health while `sessions` stream; polling starts once every
    session has had a reply (all are busy), and the sessions stop after the last probe."""
    import httpx

    stop = asyncio.Event()
    replies = [0] * sessions  # per session: results + dropped
    results = [0] * sessions
    url = stream_url(base_url, pipeline)
    streams = [
        asyncio.create_task(_stream(url, jpegs, i, replies, results, stop)) for i in range(sessions)
    ]
    try:
        await _until_saturated(replies, streams)
        before, results_before = sum(replies), sum(results)
        started = time.perf_counter()
        latencies = []
        async with httpx.AsyncClient(base_url=base_url, timeout=10.0) as client:
            for _ in range(requests):
                t0 = time.perf_counter()
                response = await client.get("/health")
                latencies.append(time.perf_counter() - t0)
                if response.status_code != 200:
                    raise RuntimeError(f"/health answered {response.status_code} under load")
                await asyncio.sleep(interval_s)  # pacing, as a prober would
        seconds = time.perf_counter() - started
        streamed, delivered = sum(replies) - before, sum(results) - results_before
    finally:
        stop.set()
        failures = await _stop(streams)
    if failures:
        raise failures[0]  # a session that failed makes the measurement void
    return {
        "sessions": sessions,
        "requests": len(latencies),
        "interval_ms": interval_s * 1000,
        "latency_ms": latency_summary(latencies),
        "stream_results": delivered,
        "stream_dropped": streamed - delivered,
        "stream_results_per_s": _rate(delivered, seconds),
        "stream_dropped_per_s": _rate(streamed - delivered, seconds),
    }


def _rate(count: int, seconds: float) -> float:
    return round(count / seconds, 2) if seconds > 0 else 0.0


async def _stream(
    url: str,
    jpegs: Sequence[bytes],
    index: int,
    replies: list[int],
    results: list[int],
    stop: asyncio.Event,
) -> None:
    """Closed loop: each frame's reply (result or dropped) before the next frame."""
    from websockets.asyncio.client import connect

    async with connect(url, **WS_OPTIONS) as ws:
        k = index
        while not stop.is_set():
            await ws.send(jpegs[k % len(jpegs)])
            reply = json.loads(await ws.recv())
            while "frame_index" not in reply:  # a slow_down warning is not the frame's reply
                reply = json.loads(await ws.recv())
            replies[index] += 1
            if "result" in reply:
                results[index] += 1
            k += 1


async def _until_saturated(replies: list[int], streams: list[asyncio.Task[None]]) -> None:
    def saturated() -> bool:
        if all(replies):
            return True
        if failed := [t for t in streams if t.done()]:
            failed[0].result()  # raises the session's error
            raise RuntimeError("a streaming session ended before the pipeline was saturated")
        return False

    what = "a reply on every session"
    await apoll_until(saturated, SATURATE_TIMEOUT_S, interval_s=POLL_S, what=what)


async def _stop(streams: list[asyncio.Task[None]]) -> list[BaseException]:
    """Each session ends after its frame in flight is answered; one that hangs is cancelled.
    Returns what went wrong, every session's error retrieved."""
    _, pending = await asyncio.wait(streams, timeout=STOP_TIMEOUT_S)
    for task in pending:
        task.cancel()
    for task in pending:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    failures: list[BaseException] = []
    for task in streams:
        if task.cancelled():
            failures.append(RuntimeError(f"a session did not stop within {STOP_TIMEOUT_S:.0f}s"))
        elif (error := task.exception()) is not None:
            failures.append(error)
    return failures
