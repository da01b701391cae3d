"""Properties of the stream protocol (api/streaming/protocol.py) and of the frame checks on both
sides of it: the gateway's framing check (validate_frame) and Triton's JPEG check and decode
(api/vision/jpeg.py). The real-stack fuzz run is tests/streaming/test_fuzz_stream.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.streaming import protocol
from api.streaming.protocol import CLOSE_CODES, ErrorCode, StreamError, validate_frame
from api.streaming.session import Termination
from api.vision.jpeg import MAX_SIDE, MIN_SIDE, FrameError, check_jpeg, decode_jpeg, jpeg_dimensions
from tests.fuzz import fuzz_settings
from tests.fuzz.mutations import REPLY, Message
from tests.fuzz.strategies import details, frames, json_values, mutated_jpegs

FRAME_ERROR_CODES = {
    "empty_frame", "not_jpeg", "truncated_jpeg", "corrupt_jpeg", "image_too_small",
    "image_too_large",
}  # fmt: skip
# Close codes an endpoint may send (RFC 6455 §7.4.1: 1004-1006 and 1015 never go on the wire).
SENDABLE_CLOSE_CODES = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014}


# validate_frame: the gateway's cheap framing check


@fuzz_settings(500)
@given(data=frames, max_bytes=st.integers(1, 1024))
def test_validate_frame_accepts_exactly_what_the_spec_frames(data: bytes, max_bytes: int) -> None:
    expected = Message("property", data).expected(max_bytes, 2**62)
    try:
        validate_frame(data, max_bytes)
    except StreamError as error:
        assert str(error.code) == expected
        assert error.close_code == protocol.WS_1008_POLICY_VIOLATION
        assert error.detail and "Traceback" not in error.detail
        return
    assert expected == REPLY


@fuzz_settings(200)
@given(data=frames, max_bytes=st.integers(0, 1024))
def test_frame_over_the_limit_is_too_large_whatever_it_holds(data: bytes, max_bytes: int) -> None:
    data = data + bytes(max(0, max_bytes + 1 - len(data)))
    with pytest.raises(StreamError) as caught:
        validate_frame(data, max_bytes)
    assert caught.value.code is ErrorCode.FRAME_TOO_LARGE
    assert f"{len(data)} bytes" in caught.value.detail


# Triton's side: the JPEG check and decode of a frame that passed framing


@fuzz_settings(300)
@given(frames)
def test_jpeg_dimensions_never_raises(data: bytes) -> None:
    size = jpeg_dimensions(data)
    assert size is None or all(0 <= side <= 65535 for side in size)


@fuzz_settings(300)
@given(frames)
def test_check_jpeg_returns_a_size_in_range_or_a_frame_error(data: bytes) -> None:
    try:
        width, height = check_jpeg(data)
    except FrameError as error:
        assert error.code in FRAME_ERROR_CODES
        assert error.as_result() == {"error": error.code, "detail": error.detail}
        return
    assert min(width, height) >= MIN_SIDE and max(width, height) <= MAX_SIDE


@fuzz_settings(300)
@given(mutated_jpegs())
def test_decode_jpeg_gives_the_checked_size_in_bgr_or_a_frame_error(data: bytes) -> None:
    """A frame that decodes is what the pipeline expects (uint8 BGR of the size the header
    declared, which is what the size limits were checked on); anything else is a FrameError."""
    try:
        image = decode_jpeg(data)
    except FrameError as error:
        assert error.code in FRAME_ERROR_CODES
        return
    width, height = check_jpeg(data)
    assert image.dtype == np.uint8 and image.shape == (height, width, 3)


# Messages the server sends: each serialises to JSON that parses back to its defined shape


@fuzz_settings(200)
@given(
    index=st.integers(0, 2**53),
    result=st.dictionaries(st.text(), json_values, max_size=5),
    timing=st.floats(0, 1e9),
)
def test_result_message_round_trips(index: int, result: dict, timing: float) -> None:
    message = json.loads(protocol.result_message(index, result, timing))
    assert message == {"frame_index": index, "result": result, "timing_ms": round(timing, 2)}


@fuzz_settings(200)
@given(st.integers(0, 2**63))
def test_dropped_message_is_exactly_the_spec(index: int) -> None:
    text = protocol.dropped_message(index)
    assert json.loads(text) == {"frame_index": index, "dropped": True}
    assert text == json.dumps({"frame_index": index, "dropped": True}, separators=(",", ":"))


@fuzz_settings(100)
@given(st.floats(0, 1e6))
def test_slow_down_message_round_trips(fps: float) -> None:
    message = json.loads(protocol.slow_down_message(fps))
    assert message == {"warning": "slow_down", "suggested_fps": round(fps, 2)}


@fuzz_settings(300)
@given(code=st.sampled_from(list(ErrorCode)), detail=details)
def test_error_message_round_trips(code: ErrorCode, detail: str) -> None:
    error = StreamError(code, detail)
    assert json.loads(protocol.error_message(error)) == {"error": str(code), "detail": detail}
    assert error.close_code in SENDABLE_CLOSE_CODES


def test_every_error_code_has_a_close_code() -> None:
    assert set(CLOSE_CODES) == set(ErrorCode)


@fuzz_settings(300)
@given(code=st.sampled_from(list(ErrorCode)), detail=details)
def test_close_reason_fits_a_close_frame(code: ErrorCode, detail: str) -> None:
    """Regression (found here): the reason was cut to 120 characters, not bytes, so an
    invalid_pipeline detail quoting a non-ASCII pipeline_id made the close frame too long, the
    close failed, and the client saw 1006 instead of 1008."""
    termination = Termination.from_error(StreamError(code, detail))
    reason = termination.reason.encode()
    assert len(reason) <= protocol.MAX_CLOSE_REASON_BYTES
    assert detail.encode().startswith(reason)
    assert termination.close_code == CLOSE_CODES[code]


def test_close_reason_keeps_whole_characters() -> None:
    assert protocol.close_reason("ü" * 100) == "ü" * 61  # 122 bytes; the 123rd is half an ü


@fuzz_settings(100)
@given(st.integers(1, 2**40))
def test_transport_limit_leaves_room_for_frame_too_large(max_frame_bytes: int) -> None:
    limit = protocol.max_message_bytes(max_frame_bytes)
    assert limit > max_frame_bytes and limit >= protocol.TRANSPORT_MIN_MESSAGE_BYTES
