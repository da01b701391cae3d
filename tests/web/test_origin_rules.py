"""STREAM_ALLOWED_ORIGINS parsing and the origin rule itself, in process."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from starlette.websockets import WebSocket

from api.core.config import Settings
from api.streaming.router import _origin_allowed


def upgrade(origin: str | None, host: str = "gate.example:8000") -> WebSocket:
    headers = [(b"host", host.encode())]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    scope = {"type": "websocket", "path": "/ws/video/stream", "headers": headers}
    return WebSocket(scope, receive=None, send=None)  # type: ignore[arg-type]


def allowed(origin: str | None, origins: str = "", host: str = "gate.example:8000") -> bool:
    return _origin_allowed(upgrade(origin, host), Settings(stream_allowed_origins=origins))


def test_origins_default_to_none_listed() -> None:
    assert Settings().stream_allowed_origins == []


def test_origins_are_split_and_normalised() -> None:
    settings = Settings(stream_allowed_origins=" HTTP://A.example:8080/ ,https://b.example,, ")
    assert settings.stream_allowed_origins == ["http://a.example:8080", "https://b.example"]


def test_origins_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAM_ALLOWED_ORIGINS", "https://ops.example,*")
    assert Settings().stream_allowed_origins == ["https://ops.example", "*"]


@pytest.mark.parametrize("bad", ["ops.example", "ftp://ops.example", "https://ops.example/app"])
def test_origin_that_is_not_scheme_host_port_is_rejected(bad: str) -> None:
    with pytest.raises(ValidationError, match="not an origin"):
        Settings(stream_allowed_origins=bad)


def test_no_origin_header_is_allowed() -> None:
    assert allowed(None)


def test_own_origin_is_allowed_in_any_case_and_scheme() -> None:
    assert allowed("http://gate.example:8000")
    assert allowed("HTTPS://Gate.Example:8000/")


def test_other_host_is_refused() -> None:
    assert not allowed("http://evil.example")


def test_other_port_is_refused() -> None:
    assert not allowed("http://gate.example:9000")


def test_opaque_origin_is_refused() -> None:
    assert not allowed("null")
    assert not allowed("null", host="")


def test_listed_origin_is_allowed_and_others_still_refused() -> None:
    assert allowed("https://ops.example", origins="https://ops.example")
    assert not allowed("https://evil.example", origins="https://ops.example")


def test_wildcard_allows_any_origin() -> None:
    assert allowed("https://evil.example", origins="*")
