"""Why one frame fails: the per-frame error codes and the byte-level JPEG framing rule.

One contract for everything that answers a frame: the gateway (which closes a stream on bad
framing), the video jobs (frames that cannot be read) and the models inside Triton (frames that
cannot be decoded, each answered `{"error": CODE, "detail": ...}` while the rest of the batch
goes on). Triton's side imports this module too, so it stays plain Python 3.10 (no StrEnum) and
imports nothing of the gateway.
"""

from __future__ import annotations

from enum import Enum

SOI = b"\xff\xd8"  # JPEG start-of-image marker
EOI = b"\xff\xd9"  # JPEG end-of-image marker


class FrameErrorCode(str, Enum):  # noqa: UP042 (StrEnum is 3.11; Triton runs 3.10)
    """Codes of a per-frame error result: the frame failed, the session or job goes on."""

    EMPTY_FRAME = "empty_frame"
    NOT_JPEG = "not_jpeg"  # no FF D8 start marker
    TRUNCATED_JPEG = "truncated_jpeg"  # no FF D9 end marker
    CORRUPT_JPEG = "corrupt_jpeg"  # framed as a JPEG, but no readable header or not decodable
    IMAGE_TOO_SMALL = "image_too_small"
    IMAGE_TOO_LARGE = "image_too_large"
    CORRUPT_FRAME = "corrupt_frame"  # a video frame that could not be read or encoded
    MISSING_FRAME = "missing_frame"  # a sampled index the video does not have
    PIPELINE_FAILURE = "pipeline_failure"  # Triton failed this frame (alone, after splitting)

    def __str__(self) -> str:  # the wire value on every Python (3.10's str() names the member)
        return self.value


def framing_problem(data: bytes) -> tuple[FrameErrorCode, str] | None:
    """The first framing rule `data` breaks (empty → FF D8 start → FF D9 end), with a message
    for the client; None when it is framed as a JPEG. Byte comparisons only: the gateway runs
    this on its event loop for every frame."""
    if not data:
        return FrameErrorCode.EMPTY_FRAME, "frame is empty"
    if not data.startswith(SOI):
        return FrameErrorCode.NOT_JPEG, "frame is not a JPEG (missing FF D8 start marker)"
    if not data.endswith(EOI):
        return FrameErrorCode.TRUNCATED_JPEG, "JPEG is truncated (missing FF D9 end marker)"
    return None
