"""Accuracy of pipeline results against synthetic ground truth."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from api.synthetic.scene import Sign


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass
class Score:
    signs: int = 0
    detected: int = 0
    read_exactly: int = 0
    false_positives: int = 0

    @property
    def recall(self) -> float:
        return self.detected / self.signs if self.signs else 1.0

    @property
    def read_rate(self) -> float:
        return self.read_exactly / self.signs if self.signs else 1.0

    def add(
        self, truth: Sequence[Sign], detections: Sequence[dict], iou_threshold: float = 0.5
    ) -> None:
        unmatched = list(detections)
        self.signs += len(truth)
        for sign in truth:
            best = max(unmatched, key=lambda d: iou(sign.box, d["box"]), default=None)
            if best is None or iou(sign.box, best["box"]) < iou_threshold:
                continue
            unmatched.remove(best)
            self.detected += 1
            if best.get("text", "").replace(" ", "") == sign.text:
                self.read_exactly += 1
        self.false_positives += len(unmatched)
