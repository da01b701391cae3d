"""Every way inference can fail, in one place: the exceptions the inference boundary raises and
the per-frame error codes a frame's result may carry (defined with the framing rule in
api/frame_errors.py, which the models inside Triton import too)."""

from __future__ import annotations

from api.frame_errors import FrameErrorCode


class InferenceUnavailable(RuntimeError):
    """No Triton could take the request (unreachable, not ready): retryable, not the frame's
    fault."""


class PipelineFailure(RuntimeError):
    """Triton answered the request with an error."""


class BatcherClosed(RuntimeError):
    """The batcher is shutting down; the frame was never sent."""


class FrameExpired(Exception):
    """The frame could no longer be answered within the latency budget; it was never sent."""


__all__ = [
    "BatcherClosed",
    "FrameErrorCode",
    "FrameExpired",
    "InferenceUnavailable",
    "PipelineFailure",
]
