"""Client-side probes of `/ws/video/stream`: the raw upgrade request (the runbook's curl check),
one synthetic frame end to end, and a live session that streams until the server closes it."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import ssl
import time
from dataclasses import dataclass
from functools import cache
from urllib.parse import urlencode, urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from api.streaming.router import STREAM_PATH
from api.synthetic.scene import encode_jpeg, make_frames

HTTP_SWITCHING_PROTOCOLS = 101
HTTP_NOT_FOUND = 404
CLIENT_ID_HEADER = "X-Client-Id"  # the gateway's targeting key (api/streaming/router.py)
SYNTHETIC_SEED = 4242
SYNTHETIC_FRAMES = 4
_CLOSE_WAIT_S = 2.0


class ProbeError(Exception):
    """A probe that got no usable answer; the message says what happened."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a deployment is: its base URL (http or https, optionally with a path prefix)."""

    base_url: str
    pipeline: str = "yolo_ocr"
    token: str | None = None
    # Sent as X-Client-Id: the flag's targeting key, so a rollout rule can name this client.
    client_id: str | None = None

    @property
    def http(self) -> str:
        return self.base_url.rstrip("/")

    @property
    def stream_url(self) -> str:
        base = self.http.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        return f"{base}{STREAM_PATH}?{urlencode({'pipeline_id': self.pipeline})}"

    @property
    def headers(self) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        if self.client_id:
            headers[CLIENT_ID_HEADER] = self.client_id
        return headers


@dataclass(frozen=True, slots=True)
class FrameReply:
    """Frame 0's `result` message and how long it took from the upgrade on."""

    message: dict
    seconds: float


@cache
def synthetic_jpegs() -> tuple[bytes, ...]:
    """A few deterministic synthetic frames (plates on varied backgrounds) as JPEG bytes."""
    return tuple(encode_jpeg(f.image) for f in make_frames(SYNTHETIC_SEED, SYNTHETIC_FRAMES))


async def upgrade_status(endpoint: Endpoint, timeout_s: float) -> int:
    """Send a bare WebSocket upgrade request (what `curl -H 'Upgrade: websocket'` sends) and
    return the HTTP status of the answer: 101 when streaming is on, 404 when it is off."""
    parts = urlsplit(endpoint.http)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ProbeError(f"not an http(s) URL: {endpoint.base_url}")
    tls = ssl.create_default_context() if parts.scheme == "https" else None
    port = parts.port or (443 if tls else 80)
    path = f"{parts.path.rstrip('/')}{STREAM_PATH}?{urlencode({'pipeline_id': endpoint.pipeline})}"
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {parts.netloc}",
        "Connection: Upgrade",
        "Upgrade: websocket",
        "Sec-WebSocket-Version: 13",
        f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}",
        *(f"{name}: {value}" for name, value in endpoint.headers.items()),
    ]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    async with asyncio.timeout(timeout_s):
        reader, writer = await asyncio.open_connection(parts.hostname, port, ssl=tls)
        try:
            writer.write(request)
            await writer.drain()
            status_line = await reader.readline()
        finally:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()
    fields = status_line.decode("latin-1").split()
    if len(fields) < 2 or not fields[0].startswith("HTTP/") or not fields[1].isdigit():
        raise ProbeError(f"not an HTTP answer to the upgrade request: {status_line[:80]!r}")
    return int(fields[1])


async def process_one_frame(endpoint: Endpoint, jpeg: bytes, timeout_s: float) -> FrameReply:
    """Open a session, send one frame, wait for frame 0's result.

    Raises `InvalidStatus` when the upgrade is refused (404: streaming off) and `ProbeError` when
    the session answers with anything but a result (dropped, an error) or closes early."""
    started = time.monotonic()
    async with asyncio.timeout(timeout_s):
        async with connect(
            endpoint.stream_url,
            additional_headers=endpoint.headers,
            max_size=None,
            open_timeout=None,
        ) as ws:
            await ws.send(jpeg)
            message = await _next_message(ws)
    if "result" not in message or message.get("frame_index") != 0:
        raise ProbeError(f"expected the result of frame 0, got {_brief(message)}")
    return FrameReply(message, time.monotonic() - started)


async def _next_message(ws: ClientConnection) -> dict:
    try:
        raw = await ws.recv()
    except ConnectionClosed as exc:
        raise ProbeError(f"session closed before any reply ({_close_text(exc)})") from exc
    message = _parse(raw)
    if "error" in message:
        raise ProbeError(f"server error {message['error']}: {message.get('detail', '')}")
    return message


def _parse(raw: str | bytes) -> dict:
    try:
        message = json.loads(raw)
    except ValueError as exc:
        raise ProbeError(f"reply is not JSON: {str(raw)[:80]!r}") from exc
    if not isinstance(message, dict):
        raise ProbeError(f"reply is not a JSON object: {str(raw)[:80]!r}")
    return message


def _brief(message: dict) -> str:
    return json.dumps(message)[:160]


def _close_text(exc: ConnectionClosed) -> str:
    frame = exc.rcvd or exc.sent
    return f"close code {frame.code} {frame.reason!r}" if frame else "no close frame"


def describe_result(result: FrameReply) -> str:
    body = result.message.get("result", {})
    parts = [f"frame 0 processed in {result.seconds * 1000:.0f} ms"]
    if isinstance(body, dict):
        parts += [f"{len(body[key])} {key}" for key in ("detections", "texts") if key in body]
    return ", ".join(parts)


def refused_text(exc: InvalidStatus) -> str:
    code = exc.response.status_code
    hint = " (streaming is off or not mounted)" if code == HTTP_NOT_FOUND else ""
    return f"upgrade refused with HTTP {code}{hint}"


@dataclass(frozen=True, slots=True)
class SessionEnd:
    """How a live session ended: when, the error message sent before closing, the close code."""

    at: float  # time.monotonic()
    error: dict | None
    close_code: int | None
    close_reason: str


async def _drain_error(ws: ClientConnection) -> dict | None:
    with contextlib.suppress(ConnectionClosed, TimeoutError):
        async with asyncio.timeout(_CLOSE_WAIT_S):
            while True:
                message = _parse(await ws.recv())
                if "error" in message:
                    return message
    return None


class LiveSession:
    """A session streaming frames closed-loop (next frame once the previous one is answered,
    at most `max_fps`) until the server closes it or `close()` is called."""

    def __init__(self, endpoint: Endpoint, jpegs: tuple[bytes, ...], max_fps: float = 10.0):
        self._endpoint = endpoint
        self._jpegs = jpegs
        self._interval_s = 1 / max_fps
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[SessionEnd] | None = None
        self._results = 0
        self._progress = asyncio.Event()

    @property
    def results(self) -> int:
        return self._results

    async def open(self, timeout_s: float) -> None:
        self._ws = await connect(
            self._endpoint.stream_url,
            additional_headers=self._endpoint.headers,
            max_size=None,
            open_timeout=timeout_s,
        )
        self._task = asyncio.create_task(self._pump(self._ws), name="drill-live-session")

    async def wait_results(self, count: int, timeout_s: float) -> None:
        """Return once `count` results came back; raise ProbeError if the session ended first."""
        async with asyncio.timeout(timeout_s):
            while self._results < count:
                if self.ended():
                    end = await self.wait_end(0)
                    raise ProbeError(
                        f"session ended after {self._results} results: {end_text(end)}"
                    )
                self._progress.clear()
                await self._progress.wait()

    def ended(self) -> bool:
        return self._task is not None and self._task.done()

    async def wait_end(self, timeout_s: float) -> SessionEnd:
        """The session's end, once the server closed it; TimeoutError if still open."""
        if self._task is None:
            raise RuntimeError("LiveSession.wait_end: expected an open session, none was opened")
        return await asyncio.wait_for(asyncio.shield(self._task), timeout_s)

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._ws is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(_CLOSE_WAIT_S):
                    await self._ws.close()

    async def _pump(self, ws: ClientConnection) -> SessionEnd:
        error: dict | None = None
        try:
            for jpeg in itertools.cycle(self._jpegs):
                next_at = time.monotonic() + self._interval_s
                await ws.send(jpeg)
                message = _parse(await ws.recv())
                if "error" in message:
                    error = message
                    break
                if "result" in message:
                    self._results += 1
                self._progress.set()
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))  # frame pacing
        except ConnectionClosed:
            # The server may close while a frame is being sent: its error message is still in
            # the receive buffer, read it before reporting how the session ended.
            error = error or await _drain_error(ws)
        finally:
            self._progress.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_CLOSE_WAIT_S):
                await ws.wait_closed()
        return SessionEnd(time.monotonic(), error, ws.close_code, ws.close_reason or "")


def end_text(end: SessionEnd) -> str:
    error = f"error {end.error.get('error')}, " if end.error else ""
    return f"{error}close code {end.close_code}"
