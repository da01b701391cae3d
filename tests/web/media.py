"""Test media for the browser: a Y4M file for Chromium's fake camera, a WebM for the file source
(Chromium cannot decode the mp4v MP4s that `api.synthetic.video.write_video` writes)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import cv2

from api.synthetic.scene import Frame, Sign

Y4M_FPS = 15


def write_y4m(path: Path, frames: Sequence[Frame], hold: int = Y4M_FPS) -> Path:
    """Each frame shown `hold` times (a second at 15 FPS), as YUV4MPEG2 4:2:0 planes."""
    height, width = frames[0].image.shape[:2]
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{Y4M_FPS}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            planes = cv2.cvtColor(frame.image, cv2.COLOR_BGR2YUV_I420).tobytes()
            for _ in range(hold):
                out.write(b"FRAME\n")
                out.write(planes)
    return path


def write_webm(path: Path, frames: Sequence[Frame], fps: float = 15.0) -> Path:
    height, width = frames[0].image.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"VP80"), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"cannot open a VP8 writer for {path}")
    try:
        for frame in frames:
            writer.write(frame.image)
    finally:
        writer.release()
    return path


def letterboxed(frames: Sequence[Frame], height: int) -> list[Frame]:
    """The frames with black bars above and below up to `height` (640x360 to 640x480, the
    camera's 4:3), plate boxes moved with them."""
    top = (height - frames[0].image.shape[0]) // 2
    bottom = height - frames[0].image.shape[0] - top
    return [
        Frame(
            cv2.copyMakeBorder(frame.image, top, bottom, 0, 0, cv2.BORDER_CONSTANT, value=0),
            [_lowered(sign, top) for sign in frame.signs],
        )
        for frame in frames
    ]


def _lowered(sign: Sign, dy: int) -> Sign:
    x1, y1, x2, y2 = sign.box
    return replace(sign, box=(x1, y1 + dy, x2, y2 + dy))


def truth_texts(frames: Sequence[Frame]) -> set[str]:
    return {sign.text for frame in frames for sign in frame.signs}
