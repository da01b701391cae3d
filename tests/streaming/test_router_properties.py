"""The stream endpoint under any input, on a tiny app with a fake inference boundary: any
sequence of text and binary messages gets one reply per valid frame, then the protocol's error
and close code for the first invalid one; any pipeline_id is served or refused with
invalid_pipeline. Never another close, never a traceback. The real-stack run is
tests/streaming/test_fuzz_stream.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from api.core.config import Settings
from api.inference.pipelines import PIPELINES
from api.main import create_app
from api.streaming.protocol import WS_1008_POLICY_VIOLATION
from tests.fuzz import fuzz_settings
from tests.fuzz.mutations import REPLY, Message
from tests.fuzz.strategies import frames

RESULT = {"detections": []}
MAX_FRAME_BYTES = 2048


class EchoInference:
    async def infer(self, pipeline_id: str, frame: bytes, received: float | None = None) -> dict:
        return RESULT

    async def readiness(self) -> dict[str, bool]:
        return {"triton": True}

    async def close(self) -> None:
        return None


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    settings = Settings(
        role="stream",
        flag_provider="env",
        streaming_enabled=True,
        triton_url="127.0.0.1:1",
        stream_latency_budget_ms=0,
        stream_max_frame_size_mb=MAX_FRAME_BYTES / (1024 * 1024),
    )
    with TestClient(create_app(settings, inference=EchoInference())) as test_client:
        yield test_client


def expect_error(ws: WebSocketTestSession, code: str) -> None:
    message = json.loads(ws.receive_text())
    assert set(message) == {"error", "detail"} and message["error"] == code
    assert message["detail"] and "Traceback" not in message["detail"]
    with pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_text()
    assert closed.value.code == WS_1008_POLICY_VIOLATION


messages = st.lists(st.one_of(frames, st.text()), max_size=6)


@fuzz_settings(150)
@given(messages)
def test_any_messages_get_their_replies_then_the_protocol_error(
    client: TestClient, payloads: list[bytes | str]
) -> None:
    with client.websocket_connect("/ws/video/stream?pipeline_id=yolo") as ws:
        for index, payload in enumerate(payloads):
            expected = Message("property", payload).expected(MAX_FRAME_BYTES, 2**62)
            if isinstance(payload, str):
                ws.send_text(payload)
            else:
                ws.send_bytes(payload)
            if expected != REPLY:
                expect_error(ws, expected)
                return
            reply = json.loads(ws.receive_text())
            assert set(reply) == {"frame_index", "result", "timing_ms"}
            assert reply["frame_index"] == index and reply["result"] == RESULT


@fuzz_settings(150)
@given(st.one_of(st.text(), st.sampled_from(sorted(PIPELINES))))
def test_any_pipeline_id_is_served_or_invalid_pipeline(client: TestClient, pipeline: str) -> None:
    with client.websocket_connect(f"/ws/video/stream?pipeline_id={quote(pipeline)}") as ws:
        if pipeline not in PIPELINES:
            expect_error(ws, "invalid_pipeline")
            return
        ws.send_bytes(b"\xff\xd8\xff\xd9")
        assert json.loads(ws.receive_text())["result"] == RESULT
