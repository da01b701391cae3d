"""`framegate serve` runs the app on the one server configuration, heap settled."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from api.cli import serve_cmd


class _Recorder:
    built: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, config: Any, **kwargs: Any) -> None:
        self.config = config
        _Recorder.built.append({"config": config, **kwargs})

    def run(self) -> None:
        return None


def test_serve_settles_the_heap_and_refuses_compression(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_Recorder, "built", [])
    monkeypatch.setattr(serve_cmd, "GracefulServer", _Recorder)
    serve_cmd.serve(host="127.0.0.1", port=8000, log_level="warning")
    (built,) = _Recorder.built
    assert built["settle_heap"] is True
    assert built["config"].ws_per_message_deflate is False
