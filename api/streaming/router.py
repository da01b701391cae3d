"""`/ws/video/stream`: handshake (flag, auth, pipeline, session limit), then the receive loop.

A frame travels one way: receive → validate → session admission → batcher → Triton → reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
import uuid
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket
from fastapi.responses import PlainTextResponse
from starlette.websockets import WebSocketState

from api.core import metrics
from api.core.config import Settings
from api.core.shutdown import Drain
from api.deps import DrainDep, InferenceDep, SettingsDep, StreamingDep
from api.flags.context import FlagContext
from api.inference.pipelines import PIPELINES
from api.inference.service import Inference
from api.streaming import protocol
from api.streaming.protocol import ErrorCode, StreamError, validate_frame
from api.streaming.registry import SHUTTING_DOWN
from api.streaming.service import StreamingService
from api.streaming.session import SessionLimits, StreamSession, Termination

log = logging.getLogger("framegate.stream")

router = APIRouter()

STREAM_PATH = "/ws/video/stream"


def _token_from(websocket: WebSocket) -> str | None:
    header = websocket.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return websocket.query_params.get("token")


def _origin_allowed(websocket: WebSocket, settings: Settings) -> bool:
    """Cross-site WebSocket hijacking guard. Browsers always send `Origin` on an upgrade; other
    clients need not. Allowed: no Origin, the server's own origin (the host the request was
    addressed to) and STREAM_ALLOWED_ORIGINS."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return True
    origin = origin.strip().lower().rstrip("/")
    if "*" in settings.stream_allowed_origins or origin in settings.stream_allowed_origins:
        return True
    parts = urlsplit(origin)
    host = websocket.headers.get("host", "").lower()
    return parts.scheme in ("http", "https") and bool(host) and parts.netloc == host


async def _refused_origin(websocket: WebSocket, settings: Settings) -> bool:
    """Answer a foreign origin's upgrade with HTTP 403 (before the flag is evaluated)."""
    if _origin_allowed(websocket, settings):
        return False
    log.warning(
        "upgrade refused: origin not allowed", extra={"origin": websocket.headers["origin"]}
    )
    await websocket.send_denial_response(PlainTextResponse("Forbidden", status_code=403))
    return True


async def _refused_draining(websocket: WebSocket, drain: Drain) -> bool:
    """While the server drains, an upgrade is accepted and closed at once with 1012, as live
    sessions are: every client retries that, on another replica (see protocol.SHUTDOWN_REASON)."""
    if not drain.draining:
        return False
    log.info("upgrade refused: server draining")
    if websocket.client_state is WebSocketState.CONNECTING:
        await websocket.accept()
    await _close(websocket, SHUTTING_DOWN)
    return True


def _check_handshake(websocket: WebSocket, settings: Settings) -> str:
    """Auth, then pipeline; returns the pipeline id or raises the StreamError to close with."""
    if settings.stream_auth_token is not None:
        token = _token_from(websocket) or ""
        if not hmac.compare_digest(token.encode(), settings.stream_auth_token.encode()):
            raise StreamError(ErrorCode.UNAUTHORIZED, "missing or invalid bearer token")
    pipeline_id = websocket.query_params.get("pipeline_id")
    if not pipeline_id:
        raise StreamError(ErrorCode.INVALID_PIPELINE, "query parameter pipeline_id is required")
    if pipeline_id not in PIPELINES:
        known = ", ".join(sorted(PIPELINES))
        raise StreamError(
            ErrorCode.INVALID_PIPELINE, f"unknown pipeline {pipeline_id!r}; available: {known}"
        )
    return pipeline_id


@router.websocket(STREAM_PATH)
async def video_stream(
    websocket: WebSocket,
    settings: SettingsDep,
    streaming: StreamingDep,
    drain: DrainDep,
    inference: InferenceDep,
) -> None:
    session_id = uuid.uuid4().hex
    context = _flag_context(websocket, session_id)
    if not await _upgrade_allowed(websocket, settings, streaming, drain, context):
        return
    await websocket.accept()
    try:
        pipeline_id = _check_handshake(websocket, settings)
    except StreamError as error:
        await _close(websocket, Termination.from_error(error))
        return
    session = _new_session(websocket, settings, inference, pipeline_id, context, session_id)
    if await _refused_draining(websocket, drain):
        return  # the drain began during this handshake
    if not streaming.sessions.try_add(session):
        full = StreamError(
            ErrorCode.TOO_MANY_SESSIONS,
            f"server is at its limit of {streaming.sessions.max_sessions} sessions; retry later",
        )
        await _close(websocket, Termination.from_error(full))
        return
    try:
        await _serve(websocket, session, settings)
    finally:
        streaming.sessions.remove(session)


def _flag_context(websocket: WebSocket, session_id: str) -> FlagContext:
    """Who the flag is evaluated for: the client's id (header or query), else this session."""
    return FlagContext(
        targeting_key=websocket.headers.get("x-client-id")
        or websocket.query_params.get("client_id")
        or session_id,
        pipeline_id=websocket.query_params.get("pipeline_id", ""),
        tenant=websocket.headers.get("x-tenant-id"),
    )


async def _upgrade_allowed(
    websocket: WebSocket,
    settings: Settings,
    streaming: StreamingService,
    drain: Drain,
    context: FlagContext,
) -> bool:
    """Origin (403), drain (1012) and the flag (404), in that order: a foreign origin learns
    nothing about the flag, and a draining server asks no provider."""
    if await _refused_origin(websocket, settings) or await _refused_draining(websocket, drain):
        return False
    if not await streaming.flags.streaming_enabled(context):
        # Flag off: the endpoint "does not exist" (rollback method: flip the flag).
        metrics.STREAM_HANDSHAKES_REFUSED.inc()
        await websocket.send_denial_response(PlainTextResponse("Not Found", status_code=404))
        return False
    return True


def _new_session(
    websocket: WebSocket,
    settings: Settings,
    inference: Inference,
    pipeline_id: str,
    context: FlagContext,
    session_id: str,
) -> StreamSession:
    async def send(message: str) -> None:
        await websocket.send_text(message)

    async def infer(frame: bytes, received: float) -> dict:
        return await inference.infer(pipeline_id, frame, received)

    return StreamSession(
        pipeline_id=pipeline_id,
        infer=infer,
        send=send,
        limits=SessionLimits(
            max_inflight=settings.stream_max_inflight,
            drop_threshold=settings.stream_drop_threshold,
            slowdown_threshold=settings.stream_slowdown_threshold,
            unavailable_grace_s=settings.stream_unavailable_grace_s,
            max_consecutive_failures=settings.stream_max_consecutive_failures,
        ),
        session_id=session_id,
        targeting_key=context.targeting_key,
        tenant=context.tenant,
    )


async def _serve(websocket: WebSocket, session: StreamSession, settings: Settings) -> None:
    """The session's life after admission: the receive loop, the close, the log line."""
    fields = {"session_id": session.session_id, "pipeline_id": session.pipeline_id}
    log.info("session connected", extra={**fields, "client": session.targeting_key})
    outcome = "client_disconnected"
    try:
        termination = await _receive_loop(websocket, session, settings)
        if termination is not None:
            async with session.send_lock:
                outcome = await _close(websocket, termination)
    except Exception:
        log.exception("session failed", extra=fields)
        error = StreamError(ErrorCode.INTERNAL_ERROR, "internal error")
        async with session.send_lock:
            outcome = await _close(websocket, Termination.from_error(error))
    finally:
        await session.aclose()
        metrics.STREAM_SESSIONS_TOTAL.labels(outcome).inc()
        log.info(
            "session disconnected",
            extra={
                **fields,
                "outcome": outcome,
                "frames_received": session.received,
                "frames_processed": session.processed,
                "frames_dropped": session.dropped,
                "duration_s": round(time.monotonic() - session.started, 3),
            },
        )


async def _receive_loop(
    websocket: WebSocket, session: StreamSession, settings: Settings
) -> Termination | None:
    """Returns why the server ends the session, or None when the client disconnected.

    One await per message, no task: a termination (kill switch, failure, drain) cancels this
    task, but only while it waits for the socket, never in the middle of answering a frame."""
    expires = session.started + settings.stream_max_session_s
    max_bytes = settings.max_frame_bytes
    task = asyncio.current_task()
    assert task is not None
    waiting = False

    def interrupt(_: object) -> None:
        if waiting:
            task.cancel()

    session.terminated.add_done_callback(interrupt)
    try:
        while not session.terminated.done():
            idle_deadline = time.monotonic() + settings.stream_idle_timeout_s
            waiting = True
            try:
                async with asyncio.timeout_at(min(idle_deadline, expires)):
                    message = await websocket.receive()
            except TimeoutError:
                return Termination.from_error(_timeout_error(expires <= idle_deadline, settings))
            except asyncio.CancelledError:
                if session.terminated.done() and task.uncancel() == 0:
                    break  # our own interrupt, not a cancellation from outside
                raise
            finally:
                waiting = False
            if message["type"] == "websocket.disconnect":
                return None
            data = message.get("bytes")
            if data is None:
                error = StreamError(
                    ErrorCode.INVALID_MESSAGE,
                    "text messages are not accepted; send binary JPEG frames",
                )
                return Termination.from_error(error)
            try:
                validate_frame(data, max_bytes)
            except StreamError as error:
                return Termination.from_error(error)
            await session.offer(data)
        return session.terminated.result()
    finally:
        session.terminated.remove_done_callback(interrupt)


def _timeout_error(expired: bool, settings: Settings) -> StreamError:
    if expired:
        return StreamError(
            ErrorCode.SESSION_EXPIRED,
            f"session reached its maximum length of {settings.stream_max_session_s:g}s",
        )
    return StreamError(
        ErrorCode.IDLE_TIMEOUT, f"no frame received for {settings.stream_idle_timeout_s:g}s"
    )


async def _close(websocket: WebSocket, termination: Termination) -> str:
    """Send the error (if any) then close; a peer that is already gone is not an error."""
    if termination.error is not None:
        metrics.STREAM_ERRORS.labels(str(termination.error.code)).inc()
    if websocket.client_state is WebSocketState.CONNECTED:
        with contextlib.suppress(Exception):
            if termination.error is not None:
                await websocket.send_text(protocol.error_message(termination.error))
            await websocket.close(termination.close_code, termination.reason)
    return termination.outcome
