"""The seed's rollback method 1 for real: flip the flag file while sessions stream."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

pytestmark = pytest.mark.triton  # a real API process against the shared Triton


async def _status_of_upgrade(server) -> int:
    try:
        async with connect(server.ws()):
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


async def _wait_for_upgrade_status(server, status: int, timeout_s: float) -> float:
    started = time.monotonic()
    while (code := await _status_of_upgrade(server)) != status:
        assert time.monotonic() - started < timeout_s, f"upgrade still {code} after {timeout_s}s"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


def _duckdb_snapshot(data_dir) -> dict[str, bytes]:
    """Every DuckDB file (database and WAL) byte for byte."""
    return {p.name: p.read_bytes() for p in sorted(data_dir.glob("framegate.duckdb*"))}


async def test_flag_flip_closes_sessions_and_reopens(api_factory, stream_jpegs) -> None:
    server = api_factory()  # ROLE=all: the job system and its DuckDB file are live
    duckdb_before = _duckdb_snapshot(server.data_dir)
    assert "framegate.duckdb" in duckdb_before
    closes: list[tuple[float, dict, int]] = []

    async def stream() -> None:
        async with connect(server.ws()) as ws:
            i = 0
            while True:
                # The server may close mid-send; its error is then still buffered for recv().
                with contextlib.suppress(ConnectionClosed):
                    await ws.send(stream_jpegs[i % len(stream_jpegs)])
                message = json.loads(await ws.recv())
                if "error" in message:
                    await ws.wait_closed()
                    closes.append((time.monotonic(), message, ws.close_code))
                    return
                i += 1

    sessions = [asyncio.create_task(stream()) for _ in range(3)]
    await asyncio.sleep(0.5)  # sessions are streaming
    assert server.metrics()["framegate_stream_sessions_active"] == 3
    flipped = time.monotonic()
    server.set_flag(False)
    await asyncio.wait_for(asyncio.gather(*sessions), 10)
    assert len(closes) == 3
    for closed_at, message, code in closes:
        assert message["error"] == "streaming_disabled"
        assert code == 1001
        assert closed_at - flipped < 2.0
    assert await _status_of_upgrade(server) == 404
    async with httpx.AsyncClient(base_url=server.http) as client:
        assert (await client.get("/health")).status_code == 200
        assert (await client.get("/v1/pipelines")).status_code == 200
    flipped = time.monotonic()
    server.set_flag(True)
    waited = await _wait_for_upgrade_status(server, 101, 1.0)
    print(f"flag on seen after {waited:.2f}s")
    async with connect(server.ws()) as ws:
        await ws.send(stream_jpegs[0])
        assert json.loads(await asyncio.wait_for(ws.recv(), 30))["frame_index"] == 0
    assert _duckdb_snapshot(server.data_dir) == duckdb_before  # streaming never writes DuckDB


@pytest.mark.parametrize("env", [{"STREAMING_ROUTER": "false"}, {"ROLE": "jobs"}], ids=str)
async def test_router_not_mounted_is_404_and_rest_works(api_factory, env: dict[str, str]) -> None:
    server = api_factory(**env)
    assert await _status_of_upgrade(server) == 404
    async with httpx.AsyncClient(base_url=server.http) as client:
        assert (await client.get("/v1/pipelines")).status_code == 200
