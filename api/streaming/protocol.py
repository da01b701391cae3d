"""The `/ws/video/stream` wire protocol: error codes, close codes, messages, frame validation.

Codes are stable API: clients branch on them. Close codes follow RFC 6455 §7.4.1.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from api.frame_errors import framing_problem

WS_1000_NORMAL_CLOSURE = 1000
WS_1001_GOING_AWAY = 1001
WS_1008_POLICY_VIOLATION = 1008
WS_1009_MESSAGE_TOO_BIG = 1009
WS_1011_INTERNAL_ERROR = 1011
WS_1012_SERVICE_RESTART = 1012
WS_1013_TRY_AGAIN_LATER = 1013

# Close reason of a graceful drain: live sessions, and upgrades that arrive while the server
# drains, close with 1012 and no error message (a restart is not the client's fault); every
# client retries 1012 with backoff. Not an HTTP 503 denial: a browser sees any refused upgrade as
# 1006, which the web client cannot tell from a disabled endpoint.
SHUTDOWN_REASON = "server shutting down"

# RFC 6455 §5.5: a close frame carries at most 125 bytes, the 2-byte code included.
MAX_CLOSE_REASON_BYTES = 123
# The WebSocket transport refuses a message over max_message_bytes() before reading it (1009,
# message too big); a frame over STREAM_MAX_FRAME_SIZE_MB but within it gets frame_too_large.
TRANSPORT_MIN_MESSAGE_BYTES = 16 * 1024 * 1024


class ErrorCode(StrEnum):
    INVALID_PIPELINE = "invalid_pipeline"
    INVALID_MESSAGE = "invalid_message"
    INVALID_FRAME = "invalid_frame"
    FRAME_TOO_LARGE = "frame_too_large"
    UNAUTHORIZED = "unauthorized"
    PIPELINE_FAILURE = "pipeline_failure"
    INTERNAL_ERROR = "internal_error"
    TOO_MANY_SESSIONS = "too_many_sessions"
    INFERENCE_UNAVAILABLE = "inference_unavailable"
    STREAMING_DISABLED = "streaming_disabled"
    IDLE_TIMEOUT = "idle_timeout"
    SESSION_EXPIRED = "session_expired"


CLOSE_CODES: dict[ErrorCode, int] = {
    ErrorCode.INVALID_PIPELINE: WS_1008_POLICY_VIOLATION,
    ErrorCode.INVALID_MESSAGE: WS_1008_POLICY_VIOLATION,
    ErrorCode.INVALID_FRAME: WS_1008_POLICY_VIOLATION,
    ErrorCode.FRAME_TOO_LARGE: WS_1008_POLICY_VIOLATION,
    ErrorCode.UNAUTHORIZED: WS_1008_POLICY_VIOLATION,
    ErrorCode.PIPELINE_FAILURE: WS_1011_INTERNAL_ERROR,
    ErrorCode.INTERNAL_ERROR: WS_1011_INTERNAL_ERROR,
    ErrorCode.TOO_MANY_SESSIONS: WS_1013_TRY_AGAIN_LATER,
    ErrorCode.INFERENCE_UNAVAILABLE: WS_1013_TRY_AGAIN_LATER,
    ErrorCode.STREAMING_DISABLED: WS_1001_GOING_AWAY,
    ErrorCode.IDLE_TIMEOUT: WS_1000_NORMAL_CLOSURE,
    ErrorCode.SESSION_EXPIRED: WS_1000_NORMAL_CLOSURE,
}


class StreamError(Exception):
    """Ends a session: the client gets `{"error", "detail"}` and the code's close code."""

    def __init__(self, code: ErrorCode, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail

    @property
    def close_code(self) -> int:
        return CLOSE_CODES[self.code]


def max_message_bytes(max_frame_bytes: int) -> int:
    """The transport's limit for one message: twice the frame limit (16 MiB at least), so an
    oversized frame is read and answered frame_too_large, and only a huge one is refused."""
    return max(TRANSPORT_MIN_MESSAGE_BYTES, 2 * max_frame_bytes)


def close_reason(detail: str) -> str:
    """`detail` cut to what a close frame can carry, on a character boundary (a longer reason
    makes the close itself fail: the client saw 1006 instead of the error's close code)."""
    return detail.encode()[:MAX_CLOSE_REASON_BYTES].decode(errors="ignore")


def validate_frame(data: bytes, max_bytes: int) -> None:
    """Cheap structural checks in a fixed order (empty → size → SOI → EOI); no decoding here,
    the pipeline decodes inside Triton. The framing rule is the one the models apply
    (api/frame_errors.py); only the size limit is the gateway's own."""
    if data and len(data) > max_bytes:
        raise StreamError(
            ErrorCode.FRAME_TOO_LARGE, f"frame is {len(data)} bytes; the limit is {max_bytes} bytes"
        )
    problem = framing_problem(data)
    if problem is not None:
        raise StreamError(ErrorCode.INVALID_FRAME, problem[1])


def _dump(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))


def result_message(frame_index: int, result: dict[str, Any], timing_ms: float) -> str:
    return _dump({"frame_index": frame_index, "result": result, "timing_ms": round(timing_ms, 2)})


def dropped_message(frame_index: int) -> str:
    # The most frequent message under load: formatted directly (exactly what _dump would give).
    return f'{{"frame_index":{int(frame_index)},"dropped":true}}'


def slow_down_message(suggested_fps: float) -> str:
    return _dump({"warning": "slow_down", "suggested_fps": round(suggested_fps, 2)})


def error_message(error: StreamError) -> str:
    return _dump({"error": str(error.code), "detail": error.detail})
