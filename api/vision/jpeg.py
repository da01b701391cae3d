"""JPEG checks and decoding with per-frame errors instead of exceptions escaping a batch."""

from __future__ import annotations

import cv2
import numpy as np

from api.frame_errors import FrameErrorCode, framing_problem

MIN_SIDE = 16
MAX_SIDE = 4096

# Start-of-frame markers carry the image size (baseline, progressive, lossless... not DHT/JPG/DAC).
_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


class FrameError(ValueError):
    """A frame that cannot be processed; `code` is a stable machine-readable reason."""

    def __init__(self, code: FrameErrorCode, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail

    def as_result(self) -> dict[str, str]:
        return {"error": self.code.value, "detail": self.detail}


def jpeg_dimensions(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the SOF segment without decoding pixels; None if not found."""
    i = 2
    n = len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if marker in _SOF_MARKERS and i + 9 <= n:
            height = int.from_bytes(data[i + 5 : i + 7], "big")
            width = int.from_bytes(data[i + 7 : i + 9], "big")
            return width, height
        if marker == 0xDA:  # start of scan reached without a frame header
            return None
        i += 2 + length
    return None


def check_jpeg(data: bytes) -> tuple[int, int]:
    """Validate framing and size before any pixel work; returns (width, height)."""
    problem = framing_problem(data)  # the gateway's rule too: one framing check
    if problem is not None:
        raise FrameError(*problem)
    size = jpeg_dimensions(data)
    if size is None:
        raise FrameError(FrameErrorCode.CORRUPT_JPEG, "JPEG has no readable frame header")
    width, height = size
    if min(width, height) < MIN_SIDE:
        raise FrameError(
            FrameErrorCode.IMAGE_TOO_SMALL, f"image is {width}x{height}; minimum side is {MIN_SIDE}"
        )
    if max(width, height) > MAX_SIDE:
        raise FrameError(
            FrameErrorCode.IMAGE_TOO_LARGE, f"image is {width}x{height}; maximum side is {MAX_SIDE}"
        )
    return width, height


def decode_jpeg(data: bytes) -> np.ndarray:
    """BGR uint8 image, or FrameError. Dimensions are checked first so a hostile header can't
    make us allocate gigabytes."""
    check_jpeg(data)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise FrameError(FrameErrorCode.CORRUPT_JPEG, "JPEG could not be decoded")
    return image


def image_size(image: np.ndarray) -> tuple[int, int]:
    """(height, width) of an image array, as the decoders' `src_shape` takes it."""
    height, width = image.shape[:2]
    return height, width
