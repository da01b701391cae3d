"""create_app(settings, inference=..., flags=...): a tiny app with fake boundaries, nothing
patched. The fakes are used, never started or closed by the app (the caller owns them), and the
routes reach them through api/deps.py."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketDenialResponse

from api.core.config import Settings
from api.main import create_app
from tests.support.fakes import JPEG, RESULT, FakeFlags, ScriptedInference


def _app(flags: FakeFlags, **settings: object) -> TestClient:
    values: dict[str, Any] = {"role": "stream", "triton_url": "127.0.0.1:1", **settings}
    inference = ScriptedInference(lambda _: RESULT)
    return TestClient(create_app(Settings(**values), inference=inference, flags=flags))


def test_the_injected_flag_decides_and_is_asked_for_the_client() -> None:
    flags = FakeFlags(enabled=True)
    with _app(flags) as client:
        url = "/ws/video/stream?pipeline_id=yolo&client_id=cam-7"
        with client.websocket_connect(url) as ws:
            ws.send_bytes(JPEG)
            assert ws.receive_json()["result"] == RESULT
        assert [c.targeting_key for c in flags.asked] == ["cam-7"]
        assert len(flags.subscribers) == 1  # the kill switch listens to it
    assert flags.subscribers == []  # and lets go on shutdown
    assert not flags.started and not flags.stopped  # the caller's, not the app's


def test_an_injected_flag_that_is_off_hides_the_endpoint() -> None:
    with _app(FakeFlags(enabled=False)) as client:
        stream = client.websocket_connect("/ws/video/stream?pipeline_id=yolo")
        with pytest.raises(WebSocketDenialResponse) as refused, stream:
            pass
        assert refused.value.status_code == 404
        assert client.get("/ready?scope=pod").json()["flags"]["provider"] == "fake"


def test_job_routes_are_absent_on_a_stream_role() -> None:
    with _app(FakeFlags(enabled=True)) as client:
        assert client.get("/v1/video/jobs").status_code == 404
