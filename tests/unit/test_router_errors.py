"""Server-side failures reach the client as stable codes, never tracebacks. The inference
boundary is faked here; the real-stack protocol suite is tests/streaming/test_protocol.py."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from api.core.config import Settings
from api.inference.triton_client import InferenceUnavailable, PipelineFailure
from api.main import create_app

JPEG = b"\xff\xd8" + b"\x00" * 64 + b"\xff\xd9"


class FailingInference:
    def __init__(self, error: Exception) -> None:
        self.error = error

    async def infer(self, pipeline_id: str, frame: bytes, received: float | None = None) -> dict:
        raise self.error

    async def readiness(self) -> dict[str, bool]:
        return {"triton": True}

    async def close(self) -> None:
        return None


@pytest.mark.parametrize(
    ("error", "code", "close_code"),
    [
        (PipelineFailure("model crashed"), "pipeline_failure", 1011),
        (InferenceUnavailable("connection refused"), "inference_unavailable", 1013),
        (ValueError("unexpected bug"), "internal_error", 1011),
    ],
)
def test_inference_errors_map_to_codes(error: Exception, code: str, close_code: int) -> None:
    settings = Settings(flag_provider="env", streaming_enabled=True, triton_url="127.0.0.1:1")
    app = create_app(settings)
    with TestClient(app) as client:
        real = app.state.inference
        app.state.inference = FailingInference(error)
        try:
            with client.websocket_connect("/ws/video/stream?pipeline_id=yolo") as ws:
                ws.send_bytes(JPEG)
                message = json.loads(ws.receive_text())
                with pytest.raises(WebSocketDisconnect) as closed:
                    ws.receive_text()
        finally:
            app.state.inference = real
    assert message["error"] == code
    assert "Traceback" not in message["detail"] and "unexpected bug" not in message["detail"]
    assert closed.value.code == close_code
