"""Synthetic videos: plates moving across a fixed background, with per-frame ground truth."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np

from api.synthetic.scene import (
    FRAME_HEIGHT,
    FRAME_WIDTH,
    Frame,
    Sign,
    compose,
    photometric,
    place_plates,
    render_background,
)


def video_frames(
    seed: int, count: int, width: int = FRAME_WIDTH, height: int = FRAME_HEIGHT
) -> list[Frame]:
    """Each plate drifts with its own velocity and bounces off the edges; a new scene (new
    background and plates) starts every 50 frames so a long video still varies."""
    rng = np.random.default_rng(seed)
    frames: list[Frame] = []
    while len(frames) < count:
        background = render_background(rng, width, height)
        plates = place_plates(rng, width, height, int(rng.integers(1, 4)))
        velocity = [rng.uniform(-4, 4, 2) for _ in plates]
        positions = [np.array(box[:2], dtype=np.float64) for _, _, box in plates]
        for _ in range(min(50, count - len(frames))):
            moved = []
            for i, (text, plate, _) in enumerate(plates):
                ph, pw = plate.shape[:2]
                pos = positions[i] + velocity[i]
                for axis, limit in ((0, width - pw), (1, height - ph)):
                    if not 0 <= pos[axis] <= limit:
                        velocity[i][axis] *= -1
                        pos[axis] = min(max(pos[axis], 0), limit)
                positions[i] = pos
                x, y = int(pos[0]), int(pos[1])
                moved.append((text, plate, (x, y, x + pw, y + ph)))
            frame = compose(background, _drop_overlaps(moved))
            frame.image = photometric(rng, frame.image)
            frames.append(frame)
    return frames


def _drop_overlaps(plates: list) -> list:
    """Moving plates can cross; keep the later one on top and drop occluded ground truth."""
    kept: list = []
    for item in plates:
        x1, y1, x2, y2 = item[2]
        kept = [k for k in kept if k[2][2] <= x1 or x2 <= k[2][0] or k[2][3] <= y1 or y2 <= k[2][1]]
        kept.append(item)
    return kept


def write_video(path: Path, frames: list[Frame], fps: float = 15.0) -> Path:
    """MP4 (mp4v) plus `<name>.json` ground truth: [{"frame_index", "signs": [{text, box}]}]."""
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames[0].image.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (w, h))
    if not writer.isOpened():
        raise RuntimeError(f"cannot open a video writer for {path}")
    try:
        for frame in frames:
            writer.write(frame.image)
    finally:
        writer.release()
    truth = [
        {"frame_index": i, "signs": [asdict(s) for s in f.signs]} for i, f in enumerate(frames)
    ]
    path.with_suffix(".json").write_text(json.dumps(truth))
    return path


def load_truth(path: Path) -> list[list[Sign]]:
    rows = json.loads(path.with_suffix(".json").read_text())
    return [[Sign(text=s["text"], box=tuple(s["box"])) for s in row["signs"]] for row in rows]
