"""The watch every browser test runs under (tests/web/conftest.py `watched_page`) fails a page
that makes a request to another origin, logs a console error, raises, or puts `status` in a
state the interface does not have; a quiet page passes."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from tests.support.ports import free_port
from tests.web.conftest import WebPage, static_server, watched_page

pytestmark = pytest.mark.triton  # drives a browser

SEEN_WITHIN_S = 30.0
STATUS = '<p data-testid="status" data-state="idle" data-code=""></p>'
MISDEEDS = {
    "foreign_request": ("fetch('http://127.0.0.1:{port}/x').catch(() => {{}});", "other origins"),
    "console_error": ("console.error('broken');", "console errors"),
    "page_error": ("setTimeout(() => {{ throw new Error('boom'); }});", "raised errors"),
    "unknown_state": ("status.dataset.state = 'busy';", "outside the interface"),
    "closed_without_code": ("status.dataset.state = 'closed';", "closed without"),
    "retried_after_1001": (
        "Object.assign(status.dataset, {{ state: 'reconnecting', code: '1001' }});",
        "retried after 1001",
    ),
}


def page_with(directory: Path, script: str) -> None:
    (directory / "index.html").write_text(
        f"""<!doctype html><link rel="icon" href="data:,">{STATUS}
        <script>const status = document.querySelector("p"); {script}</script>"""
    )


def recorded(watched: WebPage) -> bool:
    things = (watched.foreign_requests, watched.console_errors, watched.page_errors)
    return any(things) or any(state != "idle" for state, _ in watched.statuses)


def visit(browser: Browser, origin: str, seen: Callable[[WebPage], bool]) -> None:
    """The page at `origin` in a watched context, until `seen` holds."""
    with watched_page(browser) as watched:
        watched.allowed_origins.add(origin)
        watched.page.goto(f"{origin}/")
        deadline = time.monotonic() + SEEN_WITHIN_S
        while not seen(watched):
            assert time.monotonic() < deadline, "the watch recorded nothing"
            watched.page.wait_for_timeout(50)  # poll interval: lets page events reach the test


@pytest.mark.parametrize("misdeed", sorted(MISDEEDS))
def test_watch_fails_the_page(browser: Browser, tmp_path: Path, misdeed: str) -> None:
    script, complaint = MISDEEDS[misdeed]
    page_with(tmp_path, script.format(port=free_port()))
    with static_server(tmp_path) as origin, pytest.raises(AssertionError, match=complaint):
        visit(browser, origin, recorded)


def test_watch_passes_a_quiet_page(browser: Browser, tmp_path: Path) -> None:
    page_with(tmp_path, "status.dataset.state = 'connecting';")
    with static_server(tmp_path) as origin:
        visit(browser, origin, lambda watched: ("connecting", "") in watched.statuses)
