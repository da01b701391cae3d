"""Browser tests: Debian's Chromium driven by Playwright (never a downloaded browser), its fake
camera fed a Y4M made from the synthetic scenes, against the real `framegate up` (embedded Triton
and API), one stack for the session. Every page a test opens is watched: a page error, a console
error, a request to another origin or a `status` state outside the documented set fails the test
at teardown."""

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

import cv2
import numpy as np
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, WebSocket, sync_playwright
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Origin

from api.core import processes
from api.core.polling import poll_until
from api.synthetic.scene import Frame, make_frames
from tests.support.api_server import (
    ApiServer,
    assert_loop_never_blocked,
    start_api,
    stop_all,
)
from tests.web.media import write_y4m
from tests.web.stack import UpStack, start_up

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
    poll_until(
        lambda: upgrade_status(server.ws()) == expected, 15, what=f"upgrades answered {expected}"
    )


def stream_attempts(server: ApiServer) -> float:
    """Every upgrade the server has let through to the flag: refused with 404 (flag off) or
    accepted as a session (live or ended). Constant while no client tries to connect."""
    samples = server.metrics()
    ended = sum(v for k, v in samples.items() if k.startswith("framegate_stream_sessions_total{"))
    return (
        samples.get("framegate_stream_handshakes_refused_total", 0.0)
        + samples.get("framegate_stream_sessions_active", 0.0)
        + ended
    )


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpStack]:
    """The real `framegate up` (embedded Triton + API), one for the browser tests' session; after
    it stops, no process naming its data dir may be left (they are killed, and the session
    fails)."""
    up = start_up(tmp_path_factory.mktemp("up"))
    try:
        yield up
    finally:
        up.stop()
        leftovers = up.leftovers()
        for process in leftovers:
            processes.kill(process)
        assert not leftovers, [processes.describe(p) for p in leftovers]


@pytest.fixture
def api(stack: UpStack) -> Iterator[UpStack]:
    """The session's stack with streaming on (an earlier test may have turned it off); a test
    that blocked the API's event loop fails."""
    set_streaming(stack, True)
    yield stack
    assert_loop_never_blocked(stack)


@pytest.fixture
def api_factory(stack: UpStack, tmp_path: Path) -> Iterator[Callable[..., ApiServer]]:
    """`framegate serve` processes of their own (settings of their own, or a server to restart),
    against the stack's Triton; loop audits checked, then all stopped."""
    servers: list[ApiServer] = []

    def make(triton_url: str | None = None, **env: str) -> ApiServer:
        workdir = tmp_path / f"api{len(servers)}"
        server = start_api(triton_url or stack.triton_grpc, workdir, **env)
        servers.append(server)
        return server

    yield make
    stop_all(servers)


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


# What the page's `status` may say (SPEC's interface list): its states, and the codes a close
# that ends streaming for good, or one that is retried, carries.
STATUS_STATES = {"idle", "connecting", "streaming", "reconnecting", "closed", "error"}
CLOSED_CODES = {"1000", "1001"}
RETRIED_CODES = {"1006", "1012", "1013"}
# Reports every (data-state, data-code) the page's status element takes to the test.
WATCH_STATUS = """
addEventListener("DOMContentLoaded", () => {
  const status = document.querySelector('[data-testid="status"]');
  if (!status) return;
  const report = () => window.framegateStatus(status.dataset.state, status.dataset.code);
  report();
  new MutationObserver(report).observe(status, { attributes: true });
});
"""
LAPTOP = {"width": 1280, "height": 860}


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
    statuses: list[tuple[str, str]] = field(default_factory=list)

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

    def _status(self, state: str, code: str | None) -> None:
        self.statuses.append((state, code or ""))

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
        states = {state for state, _ in self.statuses}
        assert states <= STATUS_STATES, f"status states outside the interface: {self.statuses}"
        for state, code in self.statuses:
            assert state != "closed" or code in CLOSED_CODES, f"closed without 1000/1001: {code}"
            assert state != "reconnecting" or code in RETRIED_CODES, f"retried after {code}"


@contextmanager
def watched_page(browser: Browser, **options: object) -> Iterator[WebPage]:
    """A fresh context and page (`options` as for `new_context`), every request, console error,
    page error, WebSocket and status change recorded, and checked when the block ends."""
    context = browser.new_context(**{"viewport": LAPTOP, "accept_downloads": True, **options})
    try:
        context.set_default_timeout(EXPECT_TIMEOUT_MS)
        page = context.new_page()
        watched = WebPage(context, page)
        context.route("**/*", watched._route)
        context.expose_function("framegateStatus", watched._status)
        context.add_init_script(WATCH_STATUS)
        page.on("console", lambda m: m.type == "error" and watched.console_errors.append(m.text))
        page.on("pageerror", lambda error: watched.page_errors.append(str(error)))
        page.on("websocket", lambda socket: watched.websockets.append(socket))
        yield watched
        watched.check()
    finally:
        context.close()


@pytest.fixture
def web(browser: Browser) -> Iterator[WebPage]:
    with watched_page(browser) as watched:
        yield watched


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


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SCREENSHOTS_ENV = "FRAMEGATE_SCREENSHOTS"


def assert_png(path: Path, width: int, height: int) -> None:
    """`path` is a PNG that decodes, `width` x `height`, and shows something (not one colour)."""
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE), f"{path} is not a PNG"
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, f"{path} does not decode"
    assert image.shape[:2] == (height, width), image.shape
    assert image.reshape(-1, 3).std(axis=0).max() > 0, f"{path} is a single colour"


@pytest.fixture(scope="session")
def screenshot(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Page, str], Path]:
    """Screenshots of the page, taken on every run: into the directory FRAMEGATE_SCREENSHOTS
    names (`FRAMEGATE_SCREENSHOTS=docs/screenshots` refreshes the README's), else under the
    session's temp dir, so an ordinary run never dirties the tree. Each is checked."""
    named = os.environ.get(SCREENSHOTS_ENV)
    folder = Path(named).resolve() if named else tmp_path_factory.mktemp("screenshots")

    def take(page: Page, name: str) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.png"
        page.screenshot(path=path)
        size = page.viewport_size
        assert size is not None
        assert_png(path, size["width"], size["height"])
        return path

    return take
