"""Reading video files with OpenCV: probing, sampling and JPEG-encoding frames.

Everything here blocks (decoding, encoding); callers run it in a thread, never on the event loop.

OpenCV's FFmpeg reader returns False from `grab()` for a frame it cannot decode and carries on
with the next one on the following call; at the end of the stream it keeps returning False. So a
failure followed by a good frame is a corrupt frame (it keeps its source index and gets a
per-frame error), and `END_OF_STREAM_FAILURES` failures in a row are the end of the video.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2

from api.frame_errors import FrameErrorCode

END_OF_STREAM_FAILURES = 8
JPEG_QUALITY = 90


class UnreadableVideo(ValueError):
    pass


@dataclass(frozen=True)
class VideoProbe:
    frames: int  # source frames, corrupt ones included
    decodable: int


@dataclass(frozen=True)
class SampledFrame:
    index: int  # source frame number
    jpeg: bytes | None  # None: the frame could not be decoded or encoded
    error: dict | None = None  # the per-frame result to store instead of inference

    @classmethod
    def failed(cls, index: int, code: FrameErrorCode, detail: str) -> SampledFrame:
        return cls(index, None, frame_error(code, index, detail))


def sampled_indices(total: int, stride: int, max_frames: int | None) -> range:
    """Source frame numbers to process: every `stride`-th frame from 0, at most `max_frames`."""
    return range(0, total, stride)[:max_frames]


def frame_error(code: FrameErrorCode, index: int, detail: str) -> dict:
    return {"error": code.value, "detail": f"frame {index}: {detail}"}


def _open(path: Path) -> cv2.VideoCapture:
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise UnreadableVideo("file is not a readable video")
    return capture


def _grabs(capture: cv2.VideoCapture) -> Iterator[tuple[int, bool]]:
    """(source index, decoded?) for every frame of the stream, corrupt ones included."""
    index = 0
    failures: list[int] = []
    while len(failures) < END_OF_STREAM_FAILURES:
        if capture.grab():
            for bad in failures:
                yield bad, False
            failures = []
            yield index, True
        else:
            failures.append(index)
        index += 1


def probe(path: Path) -> VideoProbe:
    """Count frames by decoding (container frame counts lie for truncated files)."""
    capture = _open(path)
    try:
        frames = decodable = 0
        for index, ok in _grabs(capture):
            frames = index + 1
            decodable += ok
    finally:
        capture.release()
    if decodable == 0:
        raise UnreadableVideo("video has no decodable frames")
    return VideoProbe(frames=frames, decodable=decodable)


class FrameReader:
    """Yields the wanted frames in source order, JPEG-encoded, a chunk per `read` call.

    Frames not wanted are grabbed but never converted or encoded. Wanted frames the stream does
    not deliver (corrupt, or missing at the end) come back with a per-frame error, so a reader
    always accounts for every wanted frame. Thread-safe: one call at a time.
    """

    def __init__(self, path: Path, wanted: Iterable[int], jpeg_quality: int = JPEG_QUALITY) -> None:
        self._capture = _open(path)
        self._wanted = sorted(set(wanted))
        self._next = 0  # position in self._wanted
        self._grabs = _grabs(self._capture)
        self._quality = jpeg_quality
        self._lock = threading.Lock()

    def read(self, count: int) -> list[SampledFrame]:
        with self._lock:
            chunk: list[SampledFrame] = []
            while len(chunk) < count and self._next < len(self._wanted):
                chunk.append(self._read_next())
            return chunk

    def _read_next(self) -> SampledFrame:
        target = self._wanted[self._next]
        self._next += 1
        for index, ok in self._grabs:
            if index < target:
                continue
            if not ok:
                return SampledFrame.failed(index, FrameErrorCode.CORRUPT_FRAME, "undecodable")
            return self._encode(index)
        return SampledFrame.failed(target, FrameErrorCode.MISSING_FRAME, "not in the video")

    def _encode(self, index: int) -> SampledFrame:
        ok, image = self._capture.retrieve()
        if not ok or image is None:
            return SampledFrame.failed(index, FrameErrorCode.CORRUPT_FRAME, "undecodable")
        ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self._quality])
        if not ok:
            return SampledFrame.failed(index, FrameErrorCode.CORRUPT_FRAME, "JPEG encoding")
        return SampledFrame(index, buffer.tobytes())

    def close(self) -> None:
        with self._lock:
            self._capture.release()
