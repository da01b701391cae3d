"""Browser tests: Debian's Chromium driven by Playwright (never a downloaded browser), its fake
camera fed a Y4M made from the synthetic scenes, against the real API and the real Triton."""

from __future__ import annotations

import functools
import http.server
import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, WebSocket, sync_playwright
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Origin

from api.synthetic.scene import Frame, make_frames
from tests.streaming.conftest import (  # noqa: F401  (fixtures used by the browser tests)
    ApiServer,
    api,
    api_factory,
    wait_until,
)
from tests.web.media import write_y4m

CHROMIUM = Path("/usr/bin/chromium")
# Headless, sandbox-free (root in CI) and kept off the network: no component, sync or
# background fetches of its own, so every request a test sees is the page's.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]
CAMERA_SEED = 1300
CAMERA_SCENES = 6
EXPECT_TIMEOUT_MS = 30_000
# What Chromium itself logs when an upgrade is refused or a server is down; a test that causes
# one on purpose allows it, no other console error passes.
REFUSED_UPGRADE = re.compile(r"^WebSocket connection to 'ws://127\.0\.0\.1:\d+/ws/video/stream")
SERVER_DOWN = re.compile(r"^Failed to load resource: net::ERR_CONNECTION_REFUSED$")
RESULTS_ABOVE = (
    """(n) => Number(document.querySelector('[data-testid="stat-results"]').textContent) > n"""
)


def upgrade_status(url: str, origin: str | None = None) -> int:
    """101 when the server accepted the WebSocket upgrade, else the HTTP status it answered."""
    try:
        with connect(url, origin=Origin(origin) if origin else None, proxy=None, open_timeout=10):
            return 101
    except InvalidStatus as refused:
        return refused.response.status_code


def set_streaming(server: ApiServer, on: bool) -> None:
    """Flip the flag file and wait until the server answers upgrades accordingly."""
    server.set_flag(on)
    expected = 101 if on else 404
    wait_until(lambda: upgrade_status(server.ws()) == expected, 15, f"upgrades answered {expected}")


@pytest.fixture(scope="session")
def camera_frames() -> list[Frame]:
    return make_frames(CAMERA_SEED, CAMERA_SCENES)


@pytest.fixture(scope="session")
def browser(
    camera_frames: list[Frame], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/setup.sh installs Debian's chromium")
    camera = write_y4m(tmp_path_factory.mktemp("camera") / "scenes.y4m", camera_frames)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[*CHROMIUM_ARGS, f"--use-file-for-fake-video-capture={camera}"],
        )
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class WebPage:
    """One browser context and page, with everything the page did recorded for the checks."""

    context: BrowserContext
    page: Page
    allowed_origins: set[str] = field(default_factory=set)
    foreign_requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    websockets: list[WebSocket] = field(default_factory=list)
    allowed_console: list[re.Pattern[str]] = field(default_factory=list)

    def open(self, server: ApiServer, **query: str) -> Page:
        self.allowed_origins.add(server.http)
        url = f"{server.http}/" + (f"?{urlencode(query)}" if query else "")
        self.page.goto(url)
        return self.page

    def allow_console(self, pattern: re.Pattern[str]) -> None:
        self.allowed_console.append(pattern)

    def text(self, testid: str) -> str:
        return self.page.get_by_test_id(testid).inner_text()

    def number(self, testid: str) -> float:
        return float(self.text(testid))

    def reads(self) -> list[str]:
        return self.page.get_by_test_id("read").all_text_contents()

    def wait_for(
        self, script: str, arg: object = None, timeout_ms: int = EXPECT_TIMEOUT_MS
    ) -> None:
        self.page.wait_for_function(script, arg=arg, timeout=timeout_ms)

    def _route(self, route: Route) -> None:
        parts = urlsplit(route.request.url)
        if f"{parts.scheme}://{parts.netloc}" in self.allowed_origins:
            route.continue_()
        else:
            self.foreign_requests.append(route.request.url)
            route.abort()

    def check(self) -> None:
        unexpected = [
            text
            for text in self.console_errors
            if not any(p.search(text) for p in self.allowed_console)
        ]
        assert self.foreign_requests == [], "the page made requests to other origins"
        assert self.page_errors == [], "the page raised errors"
        assert unexpected == [], "the page logged console errors"
        for socket in self.websockets:
            origin = urlsplit(socket.url)
            assert f"http://{origin.netloc}" in self.allowed_origins, socket.url


@pytest.fixture
def web(browser: Browser) -> Iterator[WebPage]:
    context = browser.new_context(viewport={"width": 1280, "height": 860}, accept_downloads=True)
    context.set_default_timeout(EXPECT_TIMEOUT_MS)
    page = context.new_page()
    watched = WebPage(context, page)
    context.route("**/*", watched._route)
    page.on("console", lambda m: m.type == "error" and watched.console_errors.append(m.text))
    page.on("pageerror", lambda error: watched.page_errors.append(str(error)))
    page.on("websocket", lambda socket: watched.websockets.append(socket))
    try:
        yield watched
        watched.check()
    finally:
        context.close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def static_server(directory: Path) -> Iterator[str]:
    """A plain local HTTP server for `directory` (another origin than the API's)."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="session")
def screenshot(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Page, str], Path]:
    """Screenshots of the page: under the test's temp dir, or into docs/screenshots/ (linked
    from the README) with FRAMEGATE_SCREENSHOTS=docs, so a test run never dirties the tree."""
    folder = (
        Path(__file__).resolve().parents[2] / "docs" / "screenshots"
        if os.environ.get("FRAMEGATE_SCREENSHOTS") == "docs"
        else tmp_path_factory.mktemp("screenshots")
    )

    def take(page: Page, name: str) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.png"
        page.screenshot(path=path)
        return path

    return take
