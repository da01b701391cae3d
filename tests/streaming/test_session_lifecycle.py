"""Sessions are released on every exit path (the seed's 'high memory usage' known issue)."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect

pytestmark = pytest.mark.triton  # a real API process against the shared Triton

CYCLES = 500
WARMUP = 50


async def _cycle(url: str, jpegs: list[bytes]) -> None:
    async with connect(url) as ws:
        for jpeg in jpegs[:5]:
            await ws.send(jpeg)
        replies = 0
        while replies < 5:
            if "frame_index" in json.loads(await asyncio.wait_for(ws.recv(), 30)):
                replies += 1


async def test_connect_stream_disconnect_cycles_leak_nothing(api_factory, stream_jpegs) -> None:
    server = api_factory()
    url = server.ws("yolo")
    for _ in range(WARMUP):  # allocator, caches and lazy imports settle first
        await _cycle(url, stream_jpegs)
    start_rss = server.rss_bytes()
    for _ in range(CYCLES):
        await _cycle(url, stream_jpegs)
    end_rss = server.rss_bytes()
    samples = server.metrics()
    print(f"RSS {start_rss / 2**20:.1f} MiB -> {end_rss / 2**20:.1f} MiB over {CYCLES} cycles")
    assert samples["framegate_stream_sessions_active"] == 0
    assert samples['framegate_stream_sessions_total{outcome="client_disconnected"}'] >= CYCLES
    assert end_rss - start_rss < 10 * 2**20
