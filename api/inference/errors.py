"""Every way inference can fail, in one place: the exceptions the inference boundary raises and
the per-frame error codes a frame's result may carry."""

from __future__ import annotations

from enum import StrEnum


class InferenceUnavailable(RuntimeError):
    """No Triton could take the request (unreachable, not ready): retryable, not the frame's
    fault."""


class PipelineFailure(RuntimeError):
    """Triton answered the request with an error."""


class BatcherClosed(RuntimeError):
    """The batcher is shutting down; the frame was never sent."""


class FrameExpired(Exception):
    """The frame could no longer be answered within the latency budget; it was never sent."""


class FrameErrorCode(StrEnum):
    """Codes of a per-frame error result `{"error": CODE, "detail": ...}`: the frame failed, the
    session goes on."""

    CORRUPT_JPEG = "corrupt_jpeg"  # passed the framing check, could not be decoded
    CORRUPT_FRAME = "corrupt_frame"  # a video frame that could not be read
    MISSING_FRAME = "missing_frame"
    PIPELINE_FAILURE = "pipeline_failure"  # Triton failed this frame (alone, after splitting)
