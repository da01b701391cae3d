"""The /ws/video/stream protocol against the real API and the embedded Triton: every message type,
error code and close code."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from tests.support.api_server import ApiServer

pytestmark = pytest.mark.triton  # a real API process against the shared Triton


async def expect_error(ws: ClientConnection, code: str, close_code: int) -> dict:
    message = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert message["error"] == code
    assert isinstance(message["detail"], str) and message["detail"]
    assert "Traceback" not in message["detail"]
    await asyncio.wait_for(ws.wait_closed(), 10)
    assert ws.close_code == close_code
    return message


async def test_result_for_each_frame_indexed_from_zero(api: ApiServer, stream_jpegs) -> None:
    async with connect(api.ws("yolo_ocr")) as ws:
        replies = []
        for jpeg in stream_jpegs[:3]:
            await ws.send(jpeg)
            replies.append(json.loads(await asyncio.wait_for(ws.recv(), 30)))
    assert [r["frame_index"] for r in replies] == [0, 1, 2]
    for reply in replies:
        assert set(reply) >= {"frame_index", "result"}
        assert isinstance(reply["result"]["detections"], list)
        assert reply["result"]["detections"][0]["text"]
        assert reply["timing_ms"] > 0


@pytest.mark.parametrize(("pipeline", "key"), [("yolo", "detections"), ("ocr", "texts")])
async def test_every_pipeline_streams(
    api: ApiServer, stream_jpegs, pipeline: str, key: str
) -> None:
    async with connect(api.ws(pipeline)) as ws:
        await ws.send(stream_jpegs[0])
        reply = json.loads(await asyncio.wait_for(ws.recv(), 60))
    assert reply["frame_index"] == 0 and reply["result"][key]


async def test_dropped_reply_is_exact(api: ApiServer, stream_jpegs) -> None:
    async with connect(api.ws("yolo_ocr")) as ws:
        for jpeg in stream_jpegs[:6]:
            await ws.send(jpeg)  # back to back: one in flight, the mailbox keeps the newest
        replies = []
        while len([r for r in replies if "frame_index" in r]) < 6:
            replies.append(json.loads(await asyncio.wait_for(ws.recv(), 30)))
    frames = [r for r in replies if "frame_index" in r]
    dropped = [r for r in frames if r.get("dropped")]
    assert dropped and all(r == {"frame_index": r["frame_index"], "dropped": True} for r in dropped)
    assert sorted(r["frame_index"] for r in frames) == list(range(6))
    warnings = [r for r in replies if "warning" in r]  # 4 of 6 dropped: critical, told once
    assert len(warnings) == 1 and set(warnings[0]) == {"warning", "suggested_fps"}
    assert warnings[0]["warning"] == "slow_down" and warnings[0]["suggested_fps"] > 0


async def test_text_message_is_invalid_message(api: ApiServer) -> None:
    async with connect(api.ws()) as ws:
        await ws.send("hello")
        await expect_error(ws, "invalid_message", 1008)


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"GIF89a-not-a-jpeg", "invalid_frame"),
        (b"", "invalid_frame"),
        (b"\xff\xd8" + b"\x00" * 100, "invalid_frame"),  # truncated: no EOI
        (b"\xff\xd8" + b"\x00" * (6 * 1024 * 1024) + b"\xff\xd9", "frame_too_large"),
    ],
    ids=["not-jpeg", "empty", "truncated", "6MB"],
)
async def test_bad_frames_close_with_policy_violation(
    api: ApiServer, payload: bytes, code: str
) -> None:
    async with connect(api.ws(), max_size=None) as ws:
        await ws.send(payload)
        await expect_error(ws, code, 1008)


async def test_truncated_real_jpeg_is_invalid_frame(api: ApiServer, stream_jpegs) -> None:
    async with connect(api.ws()) as ws:
        await ws.send(stream_jpegs[0][: len(stream_jpegs[0]) // 2])
        await expect_error(ws, "invalid_frame", 1008)


@pytest.mark.parametrize("pipeline", ["nope", None], ids=["unknown", "missing"])
async def test_bad_pipeline_is_rejected_after_accept(api: ApiServer, pipeline: str | None) -> None:
    async with connect(api.ws(pipeline)) as ws:
        message = await expect_error(ws, "invalid_pipeline", 1008)
    if pipeline:
        assert "yolo_ocr" in message["detail"]  # tells the client what exists


async def test_corrupt_jpeg_body_gets_a_per_frame_error_result(api: ApiServer) -> None:
    """Passes the framing checks but cannot be decoded: the frame still gets its one reply."""
    async with connect(api.ws()) as ws:
        await ws.send(b"\xff\xd8\xff\xe0" + b"\x13" * 500 + b"\xff\xd9")
        reply = json.loads(await asyncio.wait_for(ws.recv(), 30))
    assert reply["frame_index"] == 0
    assert reply["result"]["error"] == "corrupt_jpeg"


async def test_too_many_sessions(api_factory) -> None:
    server = api_factory(STREAM_MAX_SESSIONS="2")
    async with connect(server.ws()), connect(server.ws()), connect(server.ws()) as third:
        await expect_error(third, "too_many_sessions", 1013)


async def test_idle_timeout(api_factory) -> None:
    server = api_factory(STREAM_IDLE_TIMEOUT_S="0.5")
    async with connect(server.ws()) as ws:
        await expect_error(ws, "idle_timeout", 1000)


async def test_session_expires(api_factory, stream_jpegs) -> None:
    server = api_factory(STREAM_MAX_SESSION_S="1.5")
    async with connect(server.ws()) as ws:
        await ws.send(stream_jpegs[0])
        assert json.loads(await asyncio.wait_for(ws.recv(), 30))["frame_index"] == 0
        await expect_error(ws, "session_expired", 1000)


async def test_bearer_token(api_factory, stream_jpegs) -> None:
    server = api_factory(STREAM_AUTH_TOKEN="s3cret")
    async with connect(server.ws()) as ws:
        await expect_error(ws, "unauthorized", 1008)
    async with connect(server.ws(), additional_headers={"Authorization": "Bearer wrong"}) as ws:
        await expect_error(ws, "unauthorized", 1008)
    async with connect(server.ws(), additional_headers={"Authorization": "Bearer s3cret"}) as ws:
        await ws.send(stream_jpegs[0])
        assert json.loads(await asyncio.wait_for(ws.recv(), 30))["frame_index"] == 0
    async with connect(server.ws(token="s3cret")) as ws:
        await ws.send(stream_jpegs[0])
        assert json.loads(await asyncio.wait_for(ws.recv(), 30))["frame_index"] == 0


async def test_inference_unavailable(api_factory, stream_jpegs) -> None:
    from tests.support.ports import free_port

    # Nothing listens: frames are answered dropped for the grace period, then the session closes.
    server = api_factory(
        triton_url=f"127.0.0.1:{free_port()}", TRITON_TIMEOUT_S="2", STREAM_UNAVAILABLE_GRACE_S="1"
    )
    async with connect(server.ws()) as ws:
        replies: list[dict] = []
        deadline = asyncio.get_running_loop().time() + 30
        while not replies or "error" not in replies[-1]:
            assert asyncio.get_running_loop().time() < deadline, replies
            await ws.send(stream_jpegs[0])
            replies.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
        await asyncio.wait_for(ws.wait_closed(), 10)
    assert replies[0] == {"frame_index": 0, "dropped": True}
    assert all(r.get("dropped") for r in replies[:-1])
    assert replies[-1]["error"] == "inference_unavailable" and ws.close_code == 1013


async def test_flag_off_refuses_upgrade_with_404(api_factory) -> None:
    server = api_factory()
    server.set_flag(False)
    deadline = asyncio.get_running_loop().time() + 5
    while True:
        try:
            async with connect(server.ws()):
                pass
        except InvalidStatus as exc:
            assert exc.response.status_code == 404
            break
        assert asyncio.get_running_loop().time() < deadline, "flag flip not seen within 5 s"
        await asyncio.sleep(0.1)


async def test_shutdown_closes_live_sessions_with_1012(api_factory, stream_jpegs) -> None:
    server = api_factory()
    async with connect(server.ws()) as ws:
        await ws.send(stream_jpegs[0])
        await asyncio.wait_for(ws.recv(), 30)
        await asyncio.to_thread(server.stop)
        await asyncio.wait_for(ws.wait_closed(), 20)
        assert ws.close_code == 1012


async def test_errors_are_counted_in_metrics(api_factory) -> None:
    server = api_factory()
    async with connect(server.ws()) as ws:
        await ws.send("text")
        await expect_error(ws, "invalid_message", 1008)
    samples = server.metrics()
    assert samples['framegate_stream_errors_total{code="invalid_message"}'] == 1
    assert samples["framegate_stream_sessions_active"] == 0


async def test_connect_and_disconnect_logged_once_as_json(api_factory, stream_jpegs) -> None:
    server = api_factory()
    async with connect(server.ws("yolo")) as ws:
        await ws.send(stream_jpegs[0])
        await asyncio.wait_for(ws.recv(), 30)
    async with connect(server.ws("yolo")) as ws:
        await ws.send("oops")
        await expect_error(ws, "invalid_message", 1008)

    def events() -> list[dict]:
        lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
        return [e for e in lines if e.get("logger") == "framegate.stream"]

    deadline = asyncio.get_running_loop().time() + 5
    while len([e for e in events() if e["event"] == "session disconnected"]) < 2:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)
    connected = [e for e in events() if e["event"] == "session connected"]
    disconnected = [e for e in events() if e["event"] == "session disconnected"]
    assert len(connected) == len(disconnected) == 2
    assert {e["session_id"] for e in connected} == {e["session_id"] for e in disconnected}
    assert all(e["pipeline_id"] == "yolo" for e in connected + disconnected)
    assert sorted(e["outcome"] for e in disconnected) == ["client_disconnected", "invalid_message"]


async def test_ready_reports_models_and_flag_provider(api: ApiServer) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=api.http) as client:
        body = (await client.get("/ready")).json()
    assert body["ready"] is True
    assert body["checks"]["pipeline_yolo_ocr"] and body["checks"]["ocr_rec"]
    assert body["flags"]["provider"] == "file" and body["flags"]["state"] == "ready"
