"""ROLE and the streaming switches: the job system and streaming never depend on each other."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from api.core.polling import poll_until
from api.synthetic.scene import encode_jpeg, make_frames
from tests.jobs.client import results, submit, wait_completed
from tests.support.api_server import ApiServer

pytestmark = pytest.mark.triton  # real API processes per role against the shared Triton


def websocket_refused(server: ApiServer) -> bool:
    async def attempt() -> bool:
        try:
            async with connect(server.ws("yolo"), open_timeout=5):
                return False
        except InvalidStatus as exc:
            assert exc.response.status_code == 404
            return True

    return asyncio.run(attempt())


async def stream_one_frame(server: ApiServer, jpeg: bytes) -> dict:
    async with connect(server.ws("yolo")) as ws:
        await ws.send(jpeg)
        return json.loads(await asyncio.wait_for(ws.recv(), 30))


async def test_role_stream_never_touches_duckdb(launch) -> None:
    server = launch(ROLE="stream")
    reply = await stream_one_frame(server, encode_jpeg(make_frames(8000, 1)[0].image))
    assert reply["frame_index"] == 0 and "detections" in reply["result"]
    async with httpx.AsyncClient(base_url=server.http, timeout=10) as client:
        for path in ("/v1/video/submit", "/v1/video/process"):
            response = await client.post(path, files={"file": ("a.mp4", b"x")})
            assert response.status_code == 404
        assert (await client.get("/v1/video/jobs")).status_code == 404
        assert (await client.get("/v1/pipelines")).status_code == 200
        ready = (await client.get("/ready")).json()
    assert "duckdb" not in ready["checks"]
    assert list(server.data_dir.rglob("*.duckdb*")) == []
    assert not (server.data_dir / "uploads").exists()


@pytest.mark.parametrize(
    "setup",
    ["role_jobs", "flag_off", "router_unmounted"],
)
def test_jobs_work_without_streaming(launch, short_video: Path, setup: str) -> None:
    env = {"role_jobs": {"ROLE": "jobs"}, "router_unmounted": {"STREAMING_ROUTER": "false"}}
    server = launch(**env.get(setup, {}))
    if setup == "flag_off":
        server.set_flag(False)
        poll_until(lambda: websocket_refused(server), 10, what="the flag to turn streaming off")
    else:
        assert websocket_refused(server)
    job_id = submit(server, short_video, pipeline_id="yolo", max_frames=4)
    wait_completed(server, [job_id])
    assert [r["frame_index"] for r in results(server, job_id)] == [0, 1, 2, 3]
    ready = httpx.get(f"{server.http}/ready", timeout=10).json()
    assert ready["checks"]["duckdb"] is True
