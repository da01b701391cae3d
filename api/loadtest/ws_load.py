"""Open-loop WebSocket load, like real cameras: every session sends frames on its own clock and
never waits for a reply; a reader task per session collects the replies.

All sessions connect first, then the clock starts (t0) and session i sends frame k at
t0 + Schedule.send_at(i, k). A send that is late (the event loop was busy) is still sent, and its
lateness is recorded as schedule lag: a large lag means this process, not the server, limited the
offered load. After its last frame each session waits up to `drain_timeout_s` for the replies
still owed, then closes. The JPEGs are encoded once, before the run; a run only sends bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import (
    ConnectionClosed,
    ConnectionClosedOK,
    InvalidHandshake,
    InvalidStatus,
)

from api.loadtest import event_loop, server_metrics
from api.loadtest.ws_stats import (
    CONNECT_FAILED,
    CONNECTION_LOST,
    Schedule,
    SessionRecord,
    closed_without_error,
    generator_section,
    http_refused,
    summarize,
)

SCHEMA = "framegate.loadtest.ws/1"
STREAM_PATH = "/ws/video/stream"
SCHEMES = ("ws", "wss", "http", "https")
CLOCK_LEAD_S = 0.2  # between the last connect and t0, so no session starts late
PROGRESS_EVERY_S = 0.5
PROGRESS_FPS_WINDOW_S = 5.0
CLOSE_WAIT_S = 2.0  # for the server's close frame after ours
# Offer permessage-deflate, as browsers always do, so the handshake is a real client's: whether it
# is used is the server's choice (Framegate refuses it: JPEGs do not compress). websockets offers
# it by default; named here so nobody turns the offer off to save client CPU.
COMPRESSION = "deflate"


@dataclass(frozen=True)
class LoadConfig:
    url: str  # server base URL: ws://, wss://, http:// or https://
    pipeline: str
    sessions: int
    fps: float
    duration_s: float
    token: str | None = None
    drain_timeout_s: float = 30.0  # the server's default idle timeout ends a session then anyway
    connect_timeout_s: float = 10.0
    metrics_url: str | None = None  # default: <base>/metrics over http(s)

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in SCHEMES or not parts.hostname:
            raise ValueError(
                f"url must be ws://, wss://, http:// or https://HOST[:PORT], got {self.url!r}"
            )

    @property
    def schedule(self) -> Schedule:
        return Schedule(self.sessions, self.fps, self.duration_s)

    def stream_url(self) -> str:
        scheme, netloc, path, _, _ = urlsplit(self.url)
        scheme = {"http": "ws", "https": "wss"}.get(scheme, scheme)
        path = path.rstrip("/") + STREAM_PATH
        return urlunsplit((scheme, netloc, path, urlencode({"pipeline_id": self.pipeline}), ""))

    def scrape_url(self) -> str:
        if self.metrics_url:
            return self.metrics_url
        scheme, netloc, path, _, _ = urlsplit(self.url)
        scheme = {"ws": "http", "wss": "https"}.get(scheme, scheme)
        return urlunsplit((scheme, netloc, path.rstrip("/") + "/metrics", "", ""))

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


@dataclass(frozen=True)
class Progress:
    """A live snapshot for the progress display."""

    elapsed_s: float
    span_s: float
    sent: int
    processed: int
    dropped: int
    errors: int
    owed: int  # replies still expected on sessions without an error
    current_fps: float  # results per second over the last PROGRESS_FPS_WINDOW_S
    sending: int  # sessions still on their send schedule
    live: int  # sessions sending or waiting for their last replies


@dataclass(frozen=True)
class Usage:
    """This process's CPU time against wall time over one phase of the run."""

    cpu_s: float
    wall_s: float

    @classmethod
    def since(cls, mark: tuple[float, float]) -> Usage:
        return cls(time.process_time() - mark[1], time.perf_counter() - mark[0])


def _mark() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def load_jpegs(video: Path | None, frames: int, seed: int) -> list[bytes]:
    """The frames to send, encoded once: a video file's first `frames` frames, or a synthetic
    plate video (deterministic from `seed`)."""
    from api.synthetic.scene import encode_jpeg

    if video is None:
        from api.synthetic.video import video_frames

        return [encode_jpeg(f.image) for f in video_frames(seed, frames)]
    import cv2

    capture = cv2.VideoCapture(str(video))
    if not capture.isOpened():
        raise ValueError(f"cannot open video {video}")
    jpegs: list[bytes] = []
    try:
        while len(jpegs) < frames:
            ok, image = capture.read()
            if not ok:
                break
            jpegs.append(encode_jpeg(image))
    finally:
        capture.release()
    if not jpegs:
        raise ValueError(f"video {video} has no readable frames")
    return jpegs


class WsLoad:
    def __init__(self, config: LoadConfig, jpegs: Sequence[bytes]) -> None:
        if not jpegs:
            raise ValueError("a load test needs at least one frame")
        self.config = config
        self.schedule = config.schedule
        self.jpegs = list(jpegs)
        self.records = [SessionRecord(i) for i in range(config.sessions)]
        self.t0 = 0.0
        self._sending = self._live = 0
        self._start_mark = _mark()
        self._sending_usage: Usage | None = None
        self._history: deque[tuple[float, int]] = deque()
        self._closing: set[int] = set()  # sessions this side is closing (after their drain)

    async def _connect(self, record: SessionRecord) -> ClientConnection | None:
        try:
            ws = await connect(
                self.config.stream_url(),
                additional_headers=self.config.headers(),
                compression=COMPRESSION,
                max_size=None,
                ping_interval=None,
                open_timeout=self.config.connect_timeout_s,
            )
        except InvalidStatus as exc:
            record.fail(http_refused(exc.response.status_code), "upgrade refused")
            return None
        except (OSError, TimeoutError, InvalidHandshake, ConnectionClosed) as exc:
            record.fail(CONNECT_FAILED, str(exc) or type(exc).__name__)
            return None
        record.connected = True
        return ws

    async def _read(self, ws: ClientConnection, record: SessionRecord, idle: asyncio.Event) -> None:
        """Until the connection closes; a close the server starts without an error message first
        is recorded by its close code."""
        try:
            async for raw in ws:
                at = time.perf_counter() - self.t0
                try:
                    message = json.loads(raw)
                except ValueError:
                    message = None
                if isinstance(message, dict):
                    record.on_message(message, at)
                else:
                    record.violations += 1
                if record.outstanding == 0:
                    idle.set()
        except ConnectionClosedOK:
            pass
        except ConnectionClosed as exc:
            if exc.rcvd is None:
                record.fail(CONNECTION_LOST, str(exc))
                return
        if record.index not in self._closing and ws.close_code is not None:
            record.fail(closed_without_error(ws.close_code), ws.close_reason or "")

    async def _send_all(
        self, ws: ClientConnection, record: SessionRecord, reader: asyncio.Task[None]
    ) -> None:
        first = record.index * len(self.jpegs) // len(self.records)  # sessions differ in content
        for k in range(self.schedule.frames_per_session):
            target = self.t0 + self.schedule.send_at(record.index, k)
            delay = target - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if reader.done() or record.error is not None:
                return
            now = time.perf_counter()
            record.on_send(now - self.t0, now - target)
            try:
                await ws.send(self.jpegs[(first + k) % len(self.jpegs)])
            except ConnectionClosed:
                record.undo_send()
                return

    async def _drain(
        self, record: SessionRecord, reader: asyncio.Task[None], idle: asyncio.Event
    ) -> None:
        """Wait for the replies still owed, at most drain_timeout_s after the last send."""
        if not record.outstanding or reader.done():
            return
        idle.clear()
        waiter = asyncio.create_task(idle.wait())
        try:
            await asyncio.wait(
                {reader, waiter},
                timeout=self.config.drain_timeout_s,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            waiter.cancel()

    async def _session(self, ws: ClientConnection, record: SessionRecord) -> None:
        idle = asyncio.Event()
        reader = asyncio.create_task(self._read(ws, record, idle))
        self._live += 1
        self._sending += 1
        try:
            try:
                await self._send_all(ws, record, reader)
            finally:
                self._sending -= 1
                if self._sending == 0:
                    self._sending_usage = Usage.since(self._start_mark)
            await self._drain(record, reader, idle)
        finally:
            self._live -= 1
            self._closing.add(record.index)
            await ws.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(reader), CLOSE_WAIT_S)
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            record.finish()

    def snapshot(self) -> Progress:
        now = max(time.perf_counter() - self.t0, 0.0)
        processed = sum(r.processed for r in self.records)
        self._history.append((now, processed))
        while now - self._history[0][0] > PROGRESS_FPS_WINDOW_S:
            self._history.popleft()
        then, before = self._history[0]
        return Progress(
            elapsed_s=now,
            span_s=self.schedule.span_s,
            sent=sum(r.sent for r in self.records),
            processed=processed,
            dropped=sum(r.dropped for r in self.records),
            errors=sum(r.outstanding for r in self.records if r.error is not None),
            owed=sum(r.outstanding for r in self.records if r.error is None),
            current_fps=(processed - before) / (now - then) if now > then else 0.0,
            sending=self._sending,
            live=self._live,
        )

    async def _report_progress(self, callback: Callable[[Progress], None]) -> None:
        while True:
            await asyncio.sleep(PROGRESS_EVERY_S)
            callback(self.snapshot())

    async def run(self, progress: Callable[[Progress], None] | None = None) -> dict:
        started = dt.datetime.now(dt.timezone.utc)  # noqa: UP017 (datetime.UTC is 3.11+)
        metrics_url = self.config.scrape_url()
        before = await _try_scrape(metrics_url)
        connections = await asyncio.gather(*(self._connect(r) for r in self.records))
        self._start_mark = _mark()
        self.t0 = self._start_mark[0] + CLOCK_LEAD_S
        reporter = asyncio.create_task(self._report_progress(progress)) if progress else None
        try:
            await asyncio.gather(
                *(
                    self._session(ws, r)
                    for ws, r in zip(connections, self.records, strict=True)
                    if ws
                )
            )
        finally:
            if reporter is not None:
                reporter.cancel()
        whole = Usage.since(self._start_mark)
        if progress:
            progress(self.snapshot())
        after = await _try_scrape(metrics_url)
        return self._report(started, self._sending_usage or whole, whole, before, after)

    def _report(
        self,
        started: dt.datetime,
        sending: Usage,
        whole: Usage,
        before: server_metrics.Samples | str,
        after: server_metrics.Samples | str,
    ) -> dict:
        client = summarize(self.schedule, self.records)
        metrics_url = self.config.scrape_url()
        if isinstance(before, dict) and isinstance(after, dict):
            server = server_metrics.server_section(before, after, self.config.pipeline)
        else:
            reason = before if isinstance(before, str) else after
            server = server_metrics.unavailable(metrics_url, str(reason))
        server["url"] = metrics_url
        generator = generator_section(
            sending=(sending.cpu_s, sending.wall_s),
            whole=(whole.cpu_s, whole.wall_s),
            cpu_count=os.cpu_count(),
            lag_p99_ms=client["schedule_lag_ms"]["p99"],
            schedule=self.schedule,
        )
        warnings = list(generator["warnings"])
        if client["protocol_violations"]:
            warnings.append(f"{client['protocol_violations']} reply(ies) broke the protocol")
        return {
            "schema": SCHEMA,
            "started_utc": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "config": {
                **asdict(self.config),
                "token": "***" if self.config.token else None,
                "stream_url": self.config.stream_url(),
                "frames_per_session": self.schedule.frames_per_session,
                "distinct_frames": len(self.jpegs),
                "jpeg_bytes_mean": sum(map(len, self.jpegs)) // len(self.jpegs),
            },
            "wall_s": round(whole.wall_s, 3),
            **client,
            "server": server,
            "generator": generator,
            "warnings": warnings,
        }


async def _try_scrape(url: str) -> server_metrics.Samples | str:
    """The samples, or why they could not be read (the run goes on without them)."""
    try:
        return await server_metrics.scrape(url)
    except (httpx.HTTPError, ValueError) as exc:
        first_line = (str(exc).splitlines() or [""])[0]
        return f"{type(exc).__name__}: {first_line}"


def run_ws_load(
    config: LoadConfig, jpegs: Sequence[bytes], progress: Callable[[Progress], None] | None = None
) -> dict:
    return event_loop.run(WsLoad(config, jpegs).run(progress))
