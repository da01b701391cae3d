"""Write synthetic frames as an ultralytics YOLO dataset (images + normalised labels)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from api.synthetic.scene import PLATE_CLASS, Frame, make_frame


def yolo_label(frame: Frame) -> str:
    h, w = frame.image.shape[:2]
    lines = []
    for sign in frame.signs:
        x1, y1, x2, y2 = sign.box
        cx, cy = (x1 + x2) / 2 / w, (y1 + y2) / 2 / h
        lines.append(f"0 {cx:.6f} {cy:.6f} {(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f}")
    return "\n".join(lines) + "\n"


def write_split(root: Path, split: str, seed: int, count: int) -> None:
    images, labels = root / "images" / split, root / "labels" / split
    images.mkdir(parents=True, exist_ok=True)
    labels.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        frame = make_frame(rng)
        cv2.imwrite(str(images / f"{i:06d}.jpg"), frame.image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        (labels / f"{i:06d}.txt").write_text(yolo_label(frame))


def write_dataset(root: Path, train: int, val: int, train_seed: int, val_seed: int) -> Path:
    write_split(root, "train", train_seed, train)
    write_split(root, "val", val_seed, val)
    data = root / "data.yaml"
    data.write_text(
        f"path: {root.resolve()}\ntrain: images/train\nval: images/val\n"
        f"names:\n  0: {PLATE_CLASS}\n"
    )
    return data
