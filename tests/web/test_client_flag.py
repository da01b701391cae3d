"""The kill switch as the browser shows it: refused before connecting, closed mid-stream, and
no reconnection either way."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.streaming.conftest import ApiServer
from tests.web.conftest import REFUSED_UPGRADE, RESULTS_ABOVE, WebPage, set_streaming

pytestmark = pytest.mark.triton

# Observing an absence takes time: a retry would come at most 1 s after the close (the first
# backoff step), so this window would see it twice over, plus its connect.
NO_RETRY_WINDOW_MS = 2500


def assert_no_new_connection(web: WebPage, expected: int) -> None:
    web.page.wait_for_timeout(NO_RETRY_WINDOW_MS)
    assert len(web.websockets) == expected


def test_flag_off_before_connecting_shows_streaming_disabled(
    web: WebPage, api: ApiServer, screenshot
) -> None:
    set_streaming(api, False)
    web.allow_console(REFUSED_UPGRADE)
    page = web.open(api, source="camera", autostart="1")
    status = page.get_by_test_id("status")
    expect(status).to_have_attribute("data-state", "error")
    expect(status).to_have_attribute("data-code", "404")
    expect(status).to_contain_text("streaming is disabled")
    screenshot(page, "web-disabled")
    assert_no_new_connection(web, 1)


def test_flag_off_mid_stream_closes_with_1001_and_start_streams_again(
    web: WebPage, api: ApiServer
) -> None:
    set_streaming(api, True)
    page = web.open(api, source="camera", autostart="1")
    status = page.get_by_test_id("status")
    web.wait_for(RESULTS_ABOVE, 0)
    api.set_flag(False)
    expect(status).to_have_attribute("data-state", "closed")
    expect(status).to_have_attribute("data-code", "1001")
    expect(status).to_contain_text("streaming has been disabled by the operator")
    assert_no_new_connection(web, 1)
    set_streaming(api, True)
    page.get_by_test_id("start").click()
    expect(status).to_have_attribute("data-state", "streaming")
    web.wait_for(RESULTS_ABOVE, 0)  # a new run: its counters start from zero
    assert len(web.websockets) == 2
