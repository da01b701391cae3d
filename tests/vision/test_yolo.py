"""api/vision/yolo.py: letterbox, output decoding and class-aware NMS (OpenCV's batched NMS, held
to a plain numpy reference on the real detector's outputs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from api.synthetic.scene import encode_jpeg, make_frames
from api.vision.jpeg import decode_jpeg
from api.vision.yolo import (
    LETTERBOX_FILL,
    DetectorInfo,
    Letterbox,
    class_aware_nms,
    decode,
    letterbox,
)

DETECTOR = Path(__file__).resolve().parents[2] / "triton_models" / "yolo" / "1" / "model.onnx"


def reference_nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou: float) -> list:
    """Greedy NMS per class, written out: best box first, drop same-class boxes over `iou`."""
    keep: list[int] = []
    for i in np.argsort(-scores, kind="stable"):
        for k in keep:
            if classes[k] != classes[i]:
                continue
            x1, y1 = np.maximum(boxes[i, :2], boxes[k, :2])
            x2, y2 = np.minimum(boxes[i, 2:], boxes[k, 2:])
            inter = max(x2 - x1, 0) * max(y2 - y1, 0)
            area = np.prod(boxes[i, 2:] - boxes[i, :2]) + np.prod(boxes[k, 2:] - boxes[k, :2])
            if inter / (area - inter) > iou:
                break
        else:
            keep.append(int(i))
    return keep


def _output(rows: list[tuple[float, float, float, float, int, float]], classes: int) -> np.ndarray:
    """A [4 + classes, A] detector output with one anchor per (cx, cy, w, h, class, score)."""
    out = np.zeros((4 + classes, len(rows)), np.float32)
    for a, (cx, cy, w, h, c, s) in enumerate(rows):
        out[:4, a] = cx, cy, w, h
        out[4 + c, a] = s
    return out


def test_overlapping_boxes_suppress_within_a_class_never_across() -> None:
    out = _output(
        [(50, 50, 20, 20, 0, 0.9), (51, 51, 20, 20, 0, 0.8), (51, 51, 20, 20, 1, 0.7)], classes=2
    )
    dets = decode(out, Letterbox(1.0, 0, 0), (100, 100), {0: "car", 1: "plate"})
    assert [(d["label"], d["confidence"]) for d in dets] == [("car", 0.9), ("plate", 0.7)]
    assert dets[0]["box"] == [40.0, 40.0, 60.0, 60.0]


def test_confidence_threshold_is_inclusive_and_max_detections_keeps_the_best() -> None:
    rows = [(10 + 30 * i, 10, 10, 10, 0, 0.25 + 0.1 * i) for i in range(5)]  # no overlaps
    out = _output([*rows, (200, 10, 10, 10, 0, 0.2499)], classes=1)
    dets = decode(out, Letterbox(1.0, 0, 0), (400, 400), {0: "car"}, max_detections=3)
    assert [d["confidence"] for d in dets] == [0.65, 0.55, 0.45]
    everything = decode(out, Letterbox(1.0, 0, 0), (400, 400), {0: "car"})
    assert min(d["confidence"] for d in everything) == 0.25  # 0.25 kept, 0.2499 not


def test_boxes_map_back_through_the_letterbox_and_clip_to_the_image() -> None:
    image = np.zeros((360, 640, 3), np.uint8)
    tensor, box = letterbox(image, (320, 320))
    assert tensor.shape == (3, 320, 320) and tensor.dtype == np.float32
    assert box.scale == 0.5 and (box.pad_x, box.pad_y) == (0, 70)
    assert tensor[:, 0, 0] == pytest.approx([LETTERBOX_FILL / 255] * 3)  # the padding row
    out = _output([(160, 160, 40, 40, 0, 0.9), (5, 75, 40, 20, 0, 0.8)], classes=1)
    dets = decode(out, box, (360, 640), {0: "car"})
    assert dets[0]["box"] == [280.0, 140.0, 360.0, 220.0]
    assert dets[1]["box"][0] == 0.0  # clipped at the left edge


def test_no_candidates_no_detections() -> None:
    assert decode(_output([], classes=3), Letterbox(1.0, 0, 0), (10, 10), {}) == []
    empty = class_aware_nms(np.zeros((0, 4)), np.zeros(0), np.zeros(0, int), 0.45, 300)
    assert empty.size == 0


def test_opencv_nms_keeps_what_the_reference_keeps_on_real_detector_outputs() -> None:
    import onnxruntime as ort

    session = ort.InferenceSession(str(DETECTOR), providers=["CPUExecutionProvider"])
    info = DetectorInfo.from_metadata(dict(session.get_modelmeta().custom_metadata_map))
    calls = candidates = 0
    for frame in make_frames(1000, 12):
        tensor, _ = letterbox(decode_jpeg(encode_jpeg(frame.image)), info.imgsz)
        output = session.run(None, {session.get_inputs()[0].name: tensor[None]})[0][0]
        class_ids = output[4:].argmax(axis=0)
        scores = output[4:][class_ids, np.arange(output.shape[1])]
        for conf in (0.25, 0.01):  # a low threshold: hundreds of overlapping candidates
            mask = scores >= conf
            cx, cy, w, h = output[:4, mask]
            boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
            kept = class_aware_nms(boxes, scores[mask], class_ids[mask], 0.45, 10_000)
            expected = reference_nms(boxes, scores[mask], class_ids[mask], 0.45)
            assert sorted(kept.tolist()) == sorted(expected)
            assert list(kept) == sorted(kept, key=lambda i: -scores[mask][i])  # best first
            calls, candidates = calls + 1, candidates + int(mask.sum())
    assert calls == 24 and candidates > 200
