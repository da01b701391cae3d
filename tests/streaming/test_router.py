"""Inference failures as a client sees them, on a tiny app with a fake inference boundary
(create_app(..., inference=...)); the real-stack protocol suite is tests/streaming/.

Per frame: a frame Triton fails gets a per-frame `pipeline_failure` result and the session goes
on; only STREAM_MAX_CONSECUTIVE_FAILURES in a row close it (1011). Triton unreachable: frames are
answered dropped for STREAM_UNAVAILABLE_GRACE_S, then the session closes (1013). Bugs: 1011
internal_error, never a traceback."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from api.core.config import Settings
from api.inference.errors import InferenceUnavailable, PipelineFailure
from api.main import create_app
from tests.support.fakes import JPEG, RESULT, ScriptedInference


@pytest.fixture
def stream() -> Iterator[Callable[..., WebSocketTestSession]]:
    clients: list[TestClient] = []

    def connect(inference: ScriptedInference, **settings: object) -> WebSocketTestSession:
        app = create_app(
            Settings(
                role="stream",
                flag_provider="env",
                streaming_enabled=True,
                triton_url="127.0.0.1:1",
                stream_latency_budget_ms=0,
                **settings,
            ),
            inference=inference,
        )
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return client.websocket_connect("/ws/video/stream?pipeline_id=yolo")

    yield connect
    for client in clients:
        client.__exit__(None, None, None)


def exchange(ws: WebSocketTestSession) -> dict:
    ws.send_bytes(JPEG)
    return json.loads(ws.receive_text())


def expect_close(ws: WebSocketTestSession, code: str, close_code: int) -> None:
    with pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_text()
    assert closed.value.code == close_code, code


def test_a_failed_frame_gets_a_per_frame_error_and_the_session_goes_on(stream) -> None:
    inference = ScriptedInference(lambda n: PipelineFailure("poisoned") if n == 1 else RESULT)
    with stream(inference) as ws:
        replies = [exchange(ws) for _ in range(3)]
    assert replies[0] == {**replies[0], "frame_index": 0, "result": RESULT}
    assert replies[1]["frame_index"] == 1
    assert replies[1]["result"] == {
        "error": "pipeline_failure",
        "detail": "pipeline failed: poisoned",
    }
    assert replies[2]["frame_index"] == 2 and replies[2]["result"] == RESULT


def test_consecutive_failures_close_the_session_with_pipeline_failure(stream) -> None:
    inference = ScriptedInference(lambda n: PipelineFailure("model crashed"))
    with stream(inference, stream_max_consecutive_failures=3) as ws:
        errors = [exchange(ws) for _ in range(2)]
        ws.send_bytes(JPEG)
        message = json.loads(ws.receive_text())
        expect_close(ws, "pipeline_failure", 1011)
    assert [e["result"]["error"] for e in errors] == ["pipeline_failure"] * 2
    assert message["error"] == "pipeline_failure"
    assert "3 frames in a row" in message["detail"] and "Traceback" not in message["detail"]


def test_a_success_resets_the_failure_count(stream) -> None:
    outcomes = [PipelineFailure("x"), RESULT, PipelineFailure("x"), RESULT]
    inference = ScriptedInference(lambda n: outcomes[n % len(outcomes)])
    with stream(inference, stream_max_consecutive_failures=2) as ws:
        replies = [exchange(ws) for _ in range(8)]
    assert [r["frame_index"] for r in replies] == list(range(8))


def test_unavailable_triton_drops_frames_then_results_resume(stream) -> None:
    inference = ScriptedInference(lambda n: InferenceUnavailable("refused") if n < 3 else RESULT)
    with stream(inference, stream_unavailable_grace_s=600) as ws:
        replies = [exchange(ws) for _ in range(5)]
    assert replies[:3] == [{"frame_index": i, "dropped": True} for i in range(3)]
    assert [r["result"] for r in replies[3:]] == [RESULT, RESULT]


def test_unavailable_past_the_grace_period_closes_with_1013(stream) -> None:
    inference = ScriptedInference(lambda n: InferenceUnavailable("connection refused"))
    with stream(inference, stream_unavailable_grace_s=0) as ws:
        ws.send_bytes(JPEG)
        message = json.loads(ws.receive_text())
        expect_close(ws, "inference_unavailable", 1013)
    assert message["error"] == "inference_unavailable"
    assert "connection refused" in message["detail"]


def test_an_unexpected_bug_is_internal_error_without_its_text(stream) -> None:
    inference = ScriptedInference(lambda n: ValueError("unexpected bug"))
    with stream(inference) as ws:
        ws.send_bytes(JPEG)
        message = json.loads(ws.receive_text())
        expect_close(ws, "internal_error", 1011)
    assert message["error"] == "internal_error"
    assert "unexpected bug" not in message["detail"] and "Traceback" not in message["detail"]
