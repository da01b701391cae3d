"""The kill switch as the browser shows it: refused before connecting, closed mid-stream within
the promised 3 s, and no reconnection either way (watched on the server for 10 s)."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from api.core.polling import poll_until
from tests.support.api_server import ApiServer
from tests.web.conftest import (
    REFUSED_UPGRADE,
    RESULTS_ABOVE,
    WebPage,
    set_streaming,
    stream_attempts,
)

pytestmark = pytest.mark.triton

CLOSED_WITHIN_S = 3.0  # the promise: flag off to `closed` 1001
CONTENTION_MARGIN_S = 3.0  # added to it: a busy 2-core CI machine
NO_RETRY_WINDOW_S = 10.0  # the observation window: no reconnection attempt in it
POLL_S = 0.25  # how often the server's counters are read during that window


def sessions_active(server: ApiServer) -> float:
    return server.metrics().get("framegate_stream_sessions_active", 0.0)


def assert_no_reconnection(web: WebPage, server: ApiServer, since: float, sockets: int) -> None:
    """For NO_RETRY_WINDOW_S after `since` (a monotonic time), the server sees no upgrade (its
    handshake and session counters stay still) and the page opens no WebSocket beyond
    `sockets`."""
    poll_until(lambda: sessions_active(server) == 0, NO_RETRY_WINDOW_S, what="the session to end")
    before = stream_attempts(server)
    while time.monotonic() < since + NO_RETRY_WINDOW_S:
        assert stream_attempts(server) == before, "the server saw a reconnection attempt"
        web.page.wait_for_timeout(POLL_S * 1000)  # the poll interval (lets page events through)
    assert len(web.websockets) == sockets, [socket.url for socket in web.websockets]


def test_flag_off_before_connecting_shows_streaming_disabled(web: WebPage, api: ApiServer) -> None:
    set_streaming(api, False)
    web.allow_console(REFUSED_UPGRADE)
    page = web.open(api, source="camera", autostart="1")
    status = page.get_by_test_id("status")
    expect(status).to_have_attribute("data-state", "error")
    refused_at = time.monotonic()
    expect(status).to_have_attribute("data-code", "404")
    expect(status).to_contain_text("streaming is disabled")
    assert_no_reconnection(web, api, refused_at, sockets=1)
    expect(status).to_have_attribute("data-state", "error")


def test_flag_off_mid_stream_closes_with_1001_and_start_streams_again(
    web: WebPage, api: ApiServer, screenshot
) -> None:
    page = web.open(api, source="camera", autostart="1")
    status = page.get_by_test_id("status")
    web.wait_for(RESULTS_ABOVE, 0)
    flipped_at = time.monotonic()
    api.set_flag(False)
    expect(status).to_have_attribute(
        "data-state", "closed", timeout=(CLOSED_WITHIN_S + CONTENTION_MARGIN_S) * 1000
    )
    closed_at = time.monotonic()
    expect(status).to_have_attribute("data-code", "1001")
    expect(status).to_contain_text("streaming has been disabled by the operator")
    screenshot(page, "web-disabled")
    assert_no_reconnection(web, api, closed_at, sockets=1)
    expect(status).to_have_attribute("data-state", "closed")  # still waiting for the user
    print(f"flag off to closed 1001: {closed_at - flipped_at:.2f} s")
    set_streaming(api, True)
    page.get_by_test_id("start").click()
    expect(status).to_have_attribute("data-state", "streaming")
    web.wait_for(RESULTS_ABOVE, 0)  # a new run: its counters start from zero
    assert len(web.websockets) == 2
