from __future__ import annotations

import cv2
import numpy as np
import pytest

from api.vision.jpeg import FrameError, check_jpeg, decode_jpeg, jpeg_dimensions


def jpeg(width: int, height: int, progressive: bool = False) -> bytes:
    params = [cv2.IMWRITE_JPEG_QUALITY, 80, cv2.IMWRITE_JPEG_PROGRESSIVE, int(progressive)]
    ok, buf = cv2.imencode(".jpg", np.full((height, width, 3), 127, np.uint8), params)
    assert ok
    return buf.tobytes()


@pytest.mark.parametrize("progressive", [False, True])
def test_dimensions_read_from_header(progressive: bool) -> None:
    assert jpeg_dimensions(jpeg(321, 123, progressive)) == (321, 123)


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"", "empty_frame"),
        (b"\x89PNG\r\n", "not_jpeg"),
        (b"\xff\xd8\xff\xe0 trailing garbage", "truncated_jpeg"),
        (b"\xff\xd8\xff\xd9", "corrupt_jpeg"),
    ],
)
def test_bad_framing_is_reported_with_a_code(payload: bytes, code: str) -> None:
    with pytest.raises(FrameError) as info:
        check_jpeg(payload)
    assert info.value.code == code
    assert info.value.as_result() == {"error": code, "detail": info.value.detail}


def test_size_limits_are_checked_before_decoding() -> None:
    with pytest.raises(FrameError, match="minimum side"):
        check_jpeg(jpeg(1, 1))
    with pytest.raises(FrameError, match="maximum side"):
        check_jpeg(jpeg(5000, 20))


def test_valid_frame_decodes_to_bgr() -> None:
    image = decode_jpeg(jpeg(64, 48))
    assert image.shape == (48, 64, 3)
