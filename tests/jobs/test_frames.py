"""Probing, sampling and reading video files with OpenCV (no Triton)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from api.jobs.frames import FrameReader, UnreadableVideo, probe, sampled_indices


@pytest.mark.parametrize(
    ("total", "stride", "max_frames", "expected"),
    [
        (10, 1, None, list(range(10))),
        (10, 3, None, [0, 3, 6, 9]),
        (10, 3, 2, [0, 3]),
        (10, 1, 50, list(range(10))),
        (1, 5, None, [0]),
    ],
)
def test_sampled_indices(total: int, stride: int, max_frames: int | None, expected: list) -> None:
    assert list(sampled_indices(total, stride, max_frames)) == expected


def test_probe_counts_frames_by_decoding(short_video: Path) -> None:
    found = probe(short_video)
    assert (found.frames, found.decodable) == (20, 20)


def test_probe_text_file_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "fake.mp4"
    path.write_text("not a video")
    with pytest.raises(UnreadableVideo, match=r"^file is not a readable video$"):
        probe(path)


def test_probe_zero_frame_video(zero_frame_avi: Path) -> None:
    with pytest.raises(UnreadableVideo, match=r"^video has no decodable frames$"):
        probe(zero_frame_avi)


def test_reader_yields_wanted_frames_in_chunks(short_video: Path) -> None:
    reader = FrameReader(short_video, [0, 4, 8, 12, 16])
    try:
        chunks = [reader.read(2) for _ in range(4)]
    finally:
        reader.close()
    assert [[f.index for f in c] for c in chunks] == [[0, 4], [8, 12], [16], []]
    frames = [f for c in chunks for f in c]
    images = [
        cv2.imdecode(np.frombuffer(f.jpeg or b"", np.uint8), cv2.IMREAD_COLOR) for f in frames
    ]
    assert all(i is not None and i.shape == (360, 640, 3) for i in images)


def test_reader_frame_is_the_source_frame_of_its_index(short_video: Path) -> None:
    capture = cv2.VideoCapture(str(short_video))
    source = [capture.read()[1].astype(int) for _ in range(9)]
    capture.release()
    reader = FrameReader(short_video, [7])
    try:
        (frame,) = reader.read(5)
    finally:
        reader.close()
    image = cv2.imdecode(np.frombuffer(frame.jpeg or b"", np.uint8), cv2.IMREAD_COLOR).astype(int)
    distance = [np.abs(image - s).mean() for s in source]
    assert frame.index == 7 and int(np.argmin(distance)) == 7


def test_reader_reports_corrupt_frame_and_continues(corrupt_frame_video: Path) -> None:
    assert probe(corrupt_frame_video).frames == 12
    reader = FrameReader(corrupt_frame_video, range(12))
    try:
        frames = reader.read(100)
    finally:
        reader.close()
    assert [f.index for f in frames] == list(range(12))
    assert [f.index for f in frames if f.jpeg is None] == [5]
    assert frames[5].error == {"error": "corrupt_frame", "detail": "frame 5: undecodable"}


def test_reader_reports_frames_past_the_end(short_video: Path) -> None:
    reader = FrameReader(short_video, [18, 19, 20, 21])
    try:
        frames = reader.read(10)
    finally:
        reader.close()
    assert [f.index for f in frames] == [18, 19, 20, 21]
    assert [f.error for f in frames[2:]] == [
        {"error": "missing_frame", "detail": "frame 20: not in the video"},
        {"error": "missing_frame", "detail": "frame 21: not in the video"},
    ]
