"""Readiness scopes and the graceful drain on a tiny app with a fake inference boundary
(create_app(..., inference=...)); the real process, SIGTERM and Triton are in
tests/streaming/test_drain.py.

`/ready` (scope service) gates on Triton; `/ready?scope=pod` (the chart's probe) on what the pod
itself can do, with Triton's last seen state in its body. Draining makes both unready at once,
refuses new streams with 1012, answers the frames already at inference, then closes with 1012."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.websockets import WebSocketDisconnect

from api.core.config import Settings
from api.core.polling import poll_until
from api.main import create_app, drain

JPEG = b"\xff\xd8" + b"\x00" * 64 + b"\xff\xd9"
RESULT = {"detections": []}
STREAM = "/ws/video/stream?pipeline_id=yolo"


class HeldInference:
    """Answers frames only once released; Triton's readiness is whatever `triton_ready` says."""

    def __init__(self, triton_ready: bool = True) -> None:
        self.triton_ready = triton_ready
        self.release = asyncio.Event()  # set it on the app's loop (client.portal.call)
        self.started = 0

    async def infer(self, pipeline_id: str, frame: bytes, received: float | None = None) -> dict:
        self.started += 1
        await self.release.wait()
        return RESULT

    async def readiness(self) -> dict[str, bool]:
        if not self.triton_ready:
            return {"triton": False}
        return {"triton": True, "pipeline_yolo": True, "yolo": True}

    async def close(self) -> None:
        return None


@pytest.fixture
def client() -> Iterator[Callable[..., TestClient]]:
    clients: list[TestClient] = []

    def make(inference: HeldInference, **settings: object) -> TestClient:
        values: dict[str, object] = {
            "role": "stream",
            "flag_provider": "env",
            "streaming_enabled": True,
            "triton_url": "127.0.0.1:1",
            "stream_latency_budget_ms": 0,
            **settings,
        }
        made = TestClient(create_app(Settings(**values), inference=inference))
        made.__enter__()
        clients.append(made)
        return made

    yield make
    for made in clients:
        made.__exit__(None, None, None)


def pod_ready(client: TestClient) -> int:
    return client.get("/ready", params={"scope": "pod"}).status_code


def expect_close(ws, code: int) -> None:
    with pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_text()
    assert closed.value.code == code


def test_pod_scope_ready_while_triton_is_down(client) -> None:
    app = client(HeldInference(triton_ready=False))

    service = app.get("/ready")
    pod = app.get("/ready", params={"scope": "pod"})

    assert service.status_code == 503
    assert service.json()["checks"]["triton"] is False
    assert service.json()["scope"] == "service"
    assert pod.status_code == 200
    body = pod.json()
    assert body["ready"] is True and body["scope"] == "pod" and body["draining"] is False
    assert body["checks"] == {"flags": True}
    assert body["triton"]["ready"] is False and body["triton"]["checks"] == {"triton": False}
    assert body["triton"]["checked_at"] is not None


def test_service_scope_ready_when_triton_and_pod_are(client) -> None:
    response = client(HeldInference()).get("/ready")

    assert response.status_code == 200
    assert response.json()["checks"] == {
        "triton": True,
        "pipeline_yolo": True,
        "yolo": True,
        "flags": True,
    }


def test_triton_state_is_a_metric(client) -> None:
    app = client(HeldInference(triton_ready=False))
    app.get("/ready")

    assert "framegate_triton_ready 0.0" in app.get("/metrics").text


def test_unknown_scope_is_rejected(client) -> None:
    response = client(HeldInference()).get("/ready", params={"scope": "cluster"})

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "scope"]


def test_job_store_is_a_pod_check(client, tmp_path: Path) -> None:
    app = client(HeldInference(triton_ready=False), role="jobs", data_dir=tmp_path)

    pod = app.get("/ready", params={"scope": "pod"})

    assert pod.status_code == 200
    assert pod.json()["checks"] == {"duckdb": True}


def test_draining_makes_both_scopes_unready(client) -> None:
    app = client(HeldInference())
    assert pod_ready(app) == 200

    app.portal.call(drain, app.app)

    for params in ({}, {"scope": "pod"}):
        response = app.get("/ready", params=params)
        assert response.status_code == 503
        assert response.json()["draining"] is True and response.json()["ready"] is False
    assert "framegate_draining 1.0" in app.get("/metrics").text


def test_drain_answers_frames_at_inference_then_closes_1012(client) -> None:
    held = HeldInference()
    app = client(held)
    with app.websocket_connect(STREAM) as ws:
        ws.send_bytes(JPEG)
        poll_until(lambda: held.started == 1, 10, what="the frame at inference")
        draining = app.portal.start_task_soon(drain, app.app)
        poll_until(lambda: pod_ready(app) == 503, 10, what="the pod to turn unready")

        with app.websocket_connect(STREAM) as refused:  # a new stream during the drain
            expect_close(refused, 1012)
        ws.send_bytes(JPEG)  # arrives during the drain: answered, never inferred
        assert json.loads(ws.receive_text()) == {"frame_index": 1, "dropped": True}
        assert not draining.done()

        app.portal.call(held.release.set)
        reply = json.loads(ws.receive_text())
        assert reply["frame_index"] == 0 and reply["result"] == RESULT
        expect_close(ws, 1012)
    draining.result(timeout=10)
    assert held.started == 1


def test_drain_answers_dropped_what_inference_never_answers(client) -> None:
    held = HeldInference()
    app = client(held, shutdown_timeout_s=0.5)
    with app.websocket_connect(STREAM) as ws:
        ws.send_bytes(JPEG)
        poll_until(lambda: held.started == 1, 10, what="the frame at inference")
        draining = app.portal.start_task_soon(drain, app.app)

        assert json.loads(ws.receive_text()) == {"frame_index": 0, "dropped": True}
        expect_close(ws, 1012)
    draining.result(timeout=10)


def test_metrics_are_prometheus_text_in_the_response_and_in_the_schema(client) -> None:
    app = client(HeldInference())
    response = app.get("/metrics")
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST
    assert "framegate_stream_sessions_active" in response.text
    documented = app.get("/openapi.json").json()["paths"]["/metrics"]["get"]["responses"]["200"]
    assert set(documented["content"]) == {CONTENT_TYPE_LATEST}  # not application/json
