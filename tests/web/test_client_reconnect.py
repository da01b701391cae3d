"""A server restart as the browser sees it: 1012, a countdown, retries with backoff, and the
stream back once a server answers on the same address again. The restarted server is
`framegate serve` against the session stack's Triton: a whole `framegate up` would reload every
model before listening, longer than the page's five tries (at most 31 s) wait."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import expect

import tests.support.api_server
from tests.support.api_server import ApiServer
from tests.web.conftest import REFUSED_UPGRADE, RESULTS_ABOVE, SERVER_DOWN, WebPage

pytestmark = pytest.mark.triton

COUNTDOWN = re.compile(r"the server is restarting; reconnecting in \d+ s \(attempt [1-5] of 5\)")


def test_server_restart_reconnects_with_backoff(
    web: WebPage, api_factory: Callable[..., ApiServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = api_factory()
    web.allow_console(REFUSED_UPGRADE)  # retries while nothing listens
    web.allow_console(SERVER_DOWN)  # the /health probe after a failed retry
    page = web.open(first, source="camera", autostart="1")
    status = page.get_by_test_id("status")
    web.wait_for(RESULTS_ABOVE, 0)
    first.stop()  # SIGTERM: the server drains its sessions with 1012
    expect(status).to_have_attribute("data-state", "reconnecting")
    expect(status).to_have_attribute("data-code", "1012")
    expect(status).to_have_text(COUNTDOWN)
    monkeypatch.setattr(tests.support.api_server, "free_port", lambda: first.port)
    api_factory()  # a new server on the same address
    expect(status).to_have_attribute("data-state", "streaming", timeout=60_000)
    results = web.number("stat-results")
    web.wait_for(RESULTS_ABOVE, results)
    assert len(web.websockets) >= 2
