"""The upgrade's Origin check (cross-site WebSocket hijacking) against the real API."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.support.api_server import ApiServer
from tests.web.conftest import set_streaming, upgrade_status

pytestmark = pytest.mark.triton

EVIL = "http://evil.example"


def test_foreign_origin_is_refused_with_403(api: ApiServer) -> None:
    assert upgrade_status(api.ws(), origin=EVIL) == 403


def test_foreign_origin_is_refused_before_the_flag(api: ApiServer) -> None:
    set_streaming(api, False)
    try:
        assert upgrade_status(api.ws(), origin=EVIL) == 403
    finally:
        set_streaming(api, True)


def test_upgrade_without_origin_is_allowed(api: ApiServer) -> None:
    assert upgrade_status(api.ws()) == 101


def test_own_origin_is_allowed(api: ApiServer) -> None:
    assert upgrade_status(api.ws(), origin=api.http) == 101


def test_same_host_on_another_port_is_foreign(api: ApiServer) -> None:
    assert upgrade_status(api.ws(), origin=f"http://127.0.0.1:{api.port + 1}") == 403


def test_null_origin_is_refused(api: ApiServer) -> None:
    assert upgrade_status(api.ws(), origin="null") == 403


def test_allowed_origins_setting_adds_origins(api_factory: Callable[..., ApiServer]) -> None:
    server = api_factory(STREAM_ALLOWED_ORIGINS="http://app.example, HTTPS://Ops.Example:8443/")
    assert upgrade_status(server.ws(), origin="http://app.example") == 101
    assert upgrade_status(server.ws(), origin="https://ops.example:8443") == 101
    assert upgrade_status(server.ws(), origin=server.http) == 101
    assert upgrade_status(server.ws(), origin=EVIL) == 403
