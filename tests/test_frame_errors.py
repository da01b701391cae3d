"""api/frame_errors.py: one framing rule and one set of per-frame codes for the gateway, the jobs
and the models inside Triton."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.frame_errors import EOI, SOI, FrameErrorCode, framing_problem
from api.inference import errors
from api.jobs.frames import SampledFrame
from api.streaming.protocol import ErrorCode, StreamError, validate_frame
from api.vision.jpeg import FrameError, check_jpeg
from tests.fuzz import fuzz_settings
from tests.fuzz.strategies import frames

LIMIT = 1 << 20


@fuzz_settings(300)
@given(data=frames)
def test_gateway_and_models_refuse_exactly_the_same_framing(data: bytes) -> None:
    problem = framing_problem(data)
    try:
        validate_frame(data, LIMIT)
    except StreamError as error:
        assert problem is not None and error.code is ErrorCode.INVALID_FRAME
        assert error.detail == problem[1]
    else:
        assert problem is None
    if problem is not None:  # inside Triton the same frame is a per-frame error, same words
        with pytest.raises(FrameError) as caught:
            check_jpeg(data)
        assert (caught.value.code, caught.value.detail) == problem


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", FrameErrorCode.EMPTY_FRAME),
        (b"GIF89a" + EOI, FrameErrorCode.NOT_JPEG),
        (SOI + b"\x00" * 8, FrameErrorCode.TRUNCATED_JPEG),
        (SOI + b"\x00" * 8 + EOI + b"\x00\x00", FrameErrorCode.TRUNCATED_JPEG),  # no padding rule
    ],
)
def test_framing_rules_in_order(data: bytes, code: FrameErrorCode) -> None:
    problem = framing_problem(data)
    assert problem is not None and problem[0] is code


def test_a_framed_jpeg_passes() -> None:
    assert framing_problem(SOI + b"anything" + EOI) is None


@given(code=st.sampled_from(FrameErrorCode))
def test_codes_go_on_the_wire_as_their_value(code: FrameErrorCode) -> None:
    # The enum is (str, Enum) for Triton's Python 3.10: str() and JSON must still give the value.
    assert str(code) == code.value
    assert json.loads(json.dumps({"error": code})) == {"error": code.value}
    assert FrameError(code, "x").as_result() == {"error": code.value, "detail": "x"}
    assert SampledFrame.failed(3, code, "x").error == {"error": code.value, "detail": "frame 3: x"}


def test_the_gateway_boundary_exports_the_same_codes() -> None:
    assert errors.FrameErrorCode is FrameErrorCode
