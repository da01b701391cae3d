"""api/loadtest/bench/health.py against a small fake server that answers /health and streams
replies (a slow_down warning first, which is not a frame's reply; every third frame dropped)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http import HTTPStatus

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import InvalidStatus

from api.loadtest.bench.health import health_under_load

JPEGS = [b"\xff\xd8fake-jpeg\xff\xd9"]


@asynccontextmanager
async def fake_gateway(health_status: HTTPStatus = HTTPStatus.OK) -> AsyncIterator[str]:
    def process_request(connection: ServerConnection, request):
        if request.path == "/health":
            return connection.respond(health_status, "ok\n")
        return None

    async def stream(ws: ServerConnection) -> None:
        await ws.send(json.dumps({"warning": "slow_down", "suggested_fps": 1.0}))
        index = 0
        async for _ in ws:
            reply = {"dropped": True} if index % 3 == 2 else {"result": {}}
            await ws.send(json.dumps({"frame_index": index, **reply}))
            index += 1

    async with serve(stream, "127.0.0.1", 0, process_request=process_request) as server:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def test_health_is_polled_while_every_session_streams() -> None:
    async with fake_gateway() as url:
        result = await health_under_load(url, "yolo", JPEGS, sessions=3, requests=20)
    assert result["sessions"] == 3 and result["requests"] == 20
    # What happened, not how fast: every poll was answered and summarised, the sessions streamed.
    assert set(result["latency_ms"]) == {"mean", "p50", "p90", "p99", "max"}
    assert result["stream_results"] > 0 and "stream_results_per_s" in result
    assert result["stream_dropped"] > 0  # every third reply: counted apart from the results
    assert result["stream_results"] > result["stream_dropped"]


async def test_a_failing_health_check_voids_the_run() -> None:
    async with fake_gateway(HTTPStatus.SERVICE_UNAVAILABLE) as url:
        with pytest.raises(RuntimeError, match="/health answered 503"):
            await health_under_load(url, "yolo", JPEGS, sessions=2, requests=5)


async def test_a_refused_stream_voids_the_run() -> None:
    def refuse(connection: ServerConnection, request):
        return connection.respond(HTTPStatus.NOT_FOUND, "off\n")

    async with serve(lambda ws: None, "127.0.0.1", 0, process_request=refuse) as server:
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        with pytest.raises(InvalidStatus, match="404"):
            await health_under_load(url, "yolo", JPEGS, sessions=2, requests=5)
