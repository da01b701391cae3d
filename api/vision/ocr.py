"""PP-OCRv4 pre- and post-processing (det + rec, no angle classifier) in numpy/OpenCV.

This reproduces `rapidocr_onnxruntime` 1.4.4 with its default config.yaml, split into pure
functions so a Triton Python model can run one det call for many frames and one rec call for
all of their crops. The ONNX sessions live elsewhere; `OcrEngine` is the in-process reference.

Deviations from rapidocr (none of them matter for ordinary video frames):
- When rapidocr's global resize or letterbox applies (longest side > 2000 px, shortest < 30 px,
  height <= 30 px or width/height > 8), crops are cut from the source image with source-pixel
  quads instead of from the resized/letterboxed image.
- The det input is capped at DET_MAX_PIXELS and no side collapses to 0 (rapidocr raises there).
- Recognition pads every crop of a batch to the batch's widest crop, instead of rapidocr's
  groups of 6 sorted by aspect ratio, so a crop's padding may differ slightly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pyclipper

from api.vision.jpeg import image_size

_REPO_ROOT = Path(__file__).resolve().parents[2]
DET_MODEL_PATH = _REPO_ROOT / "triton_models" / "ocr_det" / "1" / "model.onnx"
REC_MODEL_PATH = _REPO_ROOT / "triton_models" / "ocr_rec" / "1" / "model.onnx"

# rapidocr config.yaml defaults.
MAX_SIDE_LEN = 2000
MIN_SIDE_LEN = 30
DET_LIMIT_SIDE_LEN = 736
DET_THRESH = 0.3
DET_BOX_THRESH = 0.5
DET_MAX_CANDIDATES = 1000
DET_UNCLIP_RATIO = 1.6
DET_MIN_SIZE = 3
LETTERBOX_MIN_HEIGHT = 30
LETTERBOX_MAX_WH_RATIO = 8
# Our own cap on det input pixels (rapidocr has none); legitimate inputs stay far below it,
# since rapidocr's own steps keep them under about 2016 x 2016 or 736 x 5900.
DET_MAX_PIXELS = 6_000_000
REC_HEIGHT = 48
REC_MIN_WIDTH = 320
TEXT_SCORE = 0.5

# Padding value for det_batch, in normalised space. 0.0 is mid-grey (pixel 127.5): a flat
# region without edges, and the same value the network's own zero padding feeds its first
# convolution, so the border of a padded frame looks to the model like the border of an
# unpadded one. The padded part of the output is cropped off before box extraction anyway.
DET_PAD_VALUE = 0.0

# Lookup tables reproduce rapidocr's normalisation bit for bit: det computes
# (x * (1/255) in float32 - float64 mean) / float64 std and casts back to float32; rec computes
# x / 255 - 0.5 then / 0.5, all in float32. Indexing a table is also faster than the arithmetic.
_DET_LUT = (
    ((np.arange(256, dtype=np.float32) * (1 / 255.0)).astype(np.float64) - 0.5) / 0.5
).astype(np.float32)
_REC_LUT = (np.arange(256, dtype=np.float32) / np.float32(255) - np.float32(0.5)) / np.float32(0.5)

_DILATE_KERNEL = np.ones((2, 2), np.uint8)


# --------------------------------------------------------------------------- detection: pre


def _round32(v: int) -> int:
    return int(round(v / 32) * 32)


def _scaled(h: int, w: int, ratio: float) -> tuple[int, int]:
    # rapidocr truncates, then rounds to a multiple of 32; never let a side collapse to 0
    # (rapidocr raises there) so extreme aspect ratios still produce a tensor.
    return max(32, _round32(int(h * ratio))), max(32, _round32(int(w * ratio)))


def _global_shape(h: int, w: int) -> tuple[int, int]:
    """The size RapidOCR.preprocess resizes a whole image to before detection."""
    if max(h, w) > MAX_SIDE_LEN:
        h, w = _scaled(h, w, MAX_SIDE_LEN / max(h, w))
    if min(h, w) < MIN_SIDE_LEN:
        h, w = _scaled(h, w, MIN_SIDE_LEN / min(h, w))
    return h, w


def _letterbox_pad(h: int, w: int) -> int:
    """Black rows RapidOCR.maybe_add_letterbox adds above and below short or very wide images,
    so the det resize does not blow a thin strip up to an enormous width."""
    if h > LETTERBOX_MIN_HEIGHT and w / h <= LETTERBOX_MAX_WH_RATIO:
        return 0
    new_h = max(int(w / LETTERBOX_MAX_WH_RATIO), LETTERBOX_MIN_HEIGHT) * 2
    return int(abs(new_h - h) / 2)


def _det_shape(h: int, w: int) -> tuple[int, int]:
    """DetPreProcess.resize with limit_type "min": shortest side to >= 736, multiples of 32."""
    ratio = DET_LIMIT_SIDE_LEN / min(h, w) if min(h, w) < DET_LIMIT_SIDE_LEN else 1.0
    dh, dw = _scaled(h, w, ratio)
    if dh * dw > DET_MAX_PIXELS:
        # Not in rapidocr: a very tall strip would otherwise ask for a multi-GB tensor.
        dh, dw = _scaled(dh, dw, math.sqrt(DET_MAX_PIXELS / (dh * dw)))
    return dh, dw


def _layout(h: int, w: int) -> tuple[tuple[int, int], int, tuple[int, int]]:
    """(size after the global resize, letterbox rows per side, det input size)."""
    mid_h, mid_w = _global_shape(h, w)
    pad = _letterbox_pad(mid_h, mid_w)
    return (mid_h, mid_w), pad, _det_shape(mid_h + 2 * pad, mid_w)


def _resize(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if image.shape[:2] == shape:
        return image
    return cv2.resize(image, (shape[1], shape[0]))


def det_preprocess(image_bgr: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    """CHW float32 det input and (ratio_h, ratio_w) = det input size / source size."""
    h, w = image_bgr.shape[:2]
    mid_shape, pad, det_shape = _layout(h, w)
    # Resize, letterbox, resize again, as rapidocr does, for identical pixels.
    img = _resize(image_bgr, mid_shape)
    if pad:
        img = cv2.copyMakeBorder(img, pad, pad, 0, 0, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    img = _resize(img, det_shape)
    tensor = np.ascontiguousarray(_DET_LUT[img].transpose(2, 0, 1))
    return tensor, (img.shape[0] / h, img.shape[1] / w)


def det_batch(tensors: Sequence[np.ndarray]) -> np.ndarray:
    """[N,3,H,W] batch padded (bottom/right, with DET_PAD_VALUE) to the largest H and W."""
    if not tensors:
        raise ValueError("det_batch needs at least one tensor")
    height = max(t.shape[1] for t in tensors)
    width = max(t.shape[2] for t in tensors)
    batch = np.full((len(tensors), 3, height, width), DET_PAD_VALUE, np.float32)
    for i, t in enumerate(tensors):
        batch[i, :, : t.shape[1], : t.shape[2]] = t
    return batch


# -------------------------------------------------------------------------- detection: post


def _mini_box(contour: np.ndarray) -> tuple[np.ndarray, float]:
    """DBPostProcess.get_mini_boxes: min-area rectangle ordered tl, tr, br, bl."""
    rect = cv2.minAreaRect(contour)
    points = sorted(cv2.boxPoints(rect), key=lambda p: p[0])
    i1, i4 = (0, 1) if points[1][1] > points[0][1] else (1, 0)
    i2, i3 = (2, 3) if points[3][1] > points[2][1] else (3, 2)
    return np.array([points[i1], points[i2], points[i3], points[i4]]), min(rect[1])


def _box_score_fast(prob: np.ndarray, box: np.ndarray) -> float:
    h, w = prob.shape
    box = box.copy()
    xmin = np.clip(np.floor(box[:, 0].min()).astype(np.int32), 0, w - 1)
    xmax = np.clip(np.ceil(box[:, 0].max()).astype(np.int32), 0, w - 1)
    ymin = np.clip(np.floor(box[:, 1].min()).astype(np.int32), 0, h - 1)
    ymax = np.clip(np.ceil(box[:, 1].max()).astype(np.int32), 0, h - 1)
    mask = np.zeros((ymax - ymin + 1, xmax - xmin + 1), dtype=np.uint8)
    box[:, 0] -= xmin
    box[:, 1] -= ymin
    cv2.fillPoly(mask, [box.reshape(-1, 2).astype(np.int32)], (1,))
    return cv2.mean(prob[ymin : ymax + 1, xmin : xmax + 1], mask)[0]


def _unclip(box: np.ndarray) -> np.ndarray | None:
    # Shoelace area and closed-ring perimeter, as shapely's Polygon.area / .length give.
    pts = box.astype(np.float64)
    nxt = np.roll(pts, -1, axis=0)
    area = abs(float(np.sum(pts[:, 0] * nxt[:, 1] - nxt[:, 0] * pts[:, 1]))) / 2
    length = float(np.sum(np.hypot(*(nxt - pts).T)))
    if length == 0:
        return None
    offset = pyclipper.PyclipperOffset()
    offset.AddPath(box, pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
    paths = offset.Execute(area * DET_UNCLIP_RATIO / length)
    # Offsetting a convex quad yields one path; anything else is degenerate (rapidocr crashes).
    if len(paths) != 1:
        return None
    return np.array(paths[0]).reshape((-1, 1, 2))


def _boxes_from_bitmap(prob: np.ndarray, dest_h: int, dest_w: int) -> list[np.ndarray]:
    """DBPostProcess.boxes_from_bitmap: int32 quads in dest (pre-det-resize) pixels."""
    mask = cv2.dilate((prob > DET_THRESH).astype(np.uint8), _DILATE_KERNEL)
    contours, _ = cv2.findContours(mask * 255, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    height, width = mask.shape
    boxes = []
    for contour in contours[:DET_MAX_CANDIDATES]:
        points, sside = _mini_box(contour)
        if sside < DET_MIN_SIZE:
            continue
        if _box_score_fast(prob, points.reshape(-1, 2)) < DET_BOX_THRESH:
            continue
        expanded = _unclip(points)
        if expanded is None:
            continue
        box, sside = _mini_box(expanded)
        if sside < DET_MIN_SIZE + 2:
            continue
        box[:, 0] = np.clip(np.round(box[:, 0] / width * dest_w), 0, dest_w)
        box[:, 1] = np.clip(np.round(box[:, 1] / height * dest_h), 0, dest_h)
        boxes.append(box.astype(np.int32))
    return boxes


def _order_clockwise(pts: np.ndarray) -> np.ndarray:
    x_sorted = pts[np.argsort(pts[:, 0]), :]
    left, right = x_sorted[:2, :], x_sorted[2:, :]
    tl, bl = left[np.argsort(left[:, 1]), :]
    tr, br = right[np.argsort(right[:, 1]), :]
    return np.array([tl, tr, br, bl], dtype=np.float32)


def _filter_boxes(boxes: list[np.ndarray], h: int, w: int) -> list[np.ndarray]:
    """TextDetector.filter_tag_det_res: order, clip to the image, drop boxes <= 3 px."""
    kept = []
    for raw in boxes:
        box = _order_clockwise(raw)
        box[:, 0] = np.clip(box[:, 0], 0, w - 1).astype(np.int32)
        box[:, 1] = np.clip(box[:, 1], 0, h - 1).astype(np.int32)
        if int(np.linalg.norm(box[0] - box[1])) <= 3 or int(np.linalg.norm(box[0] - box[3])) <= 3:
            continue
        kept.append(box)
    return kept


def _sort_boxes(boxes: list[np.ndarray]) -> list[np.ndarray]:
    """RapidOCR.sorted_boxes: by top-left (y, x), then boxes whose top-left y differ by < 10 px
    are reordered left to right (one insertion pass, as rapidocr does)."""
    out = sorted(boxes, key=lambda b: (b[0][1], b[0][0]))
    for i in range(len(out) - 1):
        for j in range(i, -1, -1):
            if abs(out[j + 1][0][1] - out[j][0][1]) < 10 and out[j + 1][0][0] < out[j][0][0]:
                out[j], out[j + 1] = out[j + 1], out[j]
            else:
                break
    return out


def det_postprocess(
    prob_map: np.ndarray, ratio: tuple[float, float], src_shape: tuple[int, int]
) -> list[np.ndarray]:
    """Text quads (4x2 float32, tl/tr/br/bl, source pixels) in rapidocr's reading order.

    prob_map is one image's [1,H,W] or [H,W] det output, possibly padded by det_batch; ratio is
    what det_preprocess returned for that image.
    """
    prob = prob_map[0] if prob_map.ndim == 3 else prob_map
    src_h, src_w = int(src_shape[0]), int(src_shape[1])
    prob = prob[: round(src_h * ratio[0]), : round(src_w * ratio[1])]
    (mid_h, mid_w), pad, _ = _layout(src_h, src_w)
    boxed_h = mid_h + 2 * pad
    boxes = _sort_boxes(_filter_boxes(_boxes_from_bitmap(prob, boxed_h, mid_w), boxed_h, mid_w))
    scale = np.array([src_w / mid_w, src_h / mid_h], np.float32)
    quads = []
    for box in boxes:
        box[:, 1] -= pad
        if (mid_h, mid_w) != (src_h, src_w):
            box *= scale
        quads.append(np.clip(box, 0, [src_w, src_h]).astype(np.float32))
    return quads


# --------------------------------------------------------------------------- recognition


def crop_quad(image_bgr: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """get_rotate_crop_image: perspective-rectify the quad; turn crops >= 1.5x taller than wide
    by 90 degrees (counter-clockwise) so vertical text lines read horizontally."""
    points = np.asarray(quad, np.float32)
    p0, p1, p2, p3 = points
    norm = np.linalg.norm
    width = max(1, int(max(norm(p0 - p1), norm(p2 - p3))))
    height = max(1, int(max(norm(p0 - p3), norm(p1 - p2))))
    target = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float32)
    crop = cv2.warpPerspective(
        image_bgr,
        cv2.getPerspectiveTransform(points, target),
        (width, height),
        borderMode=cv2.BORDER_REPLICATE,
        flags=cv2.INTER_CUBIC,
    )
    if crop.shape[0] / crop.shape[1] >= 1.5:
        crop = np.ascontiguousarray(np.rot90(crop))
    return crop


def rec_batch(crops: Sequence[np.ndarray]) -> np.ndarray:
    """[N,3,48,W] rec input; W = 48 x the widest crop's w/h (at least 320), each crop resized
    to height 48 keeping its aspect ratio, left-aligned, right side zero (mid-grey)."""
    ratios = [c.shape[1] / c.shape[0] if c.size else 0.0 for c in crops]
    width = int(REC_HEIGHT * max([REC_MIN_WIDTH / REC_HEIGHT, *ratios]))
    batch = np.zeros((len(crops), 3, REC_HEIGHT, width), np.float32)
    for i, (crop, ratio) in enumerate(zip(crops, ratios, strict=True)):
        if not crop.size:
            continue  # nothing to read; CTC decodes an all-padding row to ""
        resized_w = min(width, math.ceil(REC_HEIGHT * ratio))
        resized = cv2.resize(crop, (resized_w, REC_HEIGHT))
        batch[i, :, :, :resized_w] = _REC_LUT[resized].transpose(2, 0, 1)
    return batch


class CtcDecoder:
    """Greedy CTC decoding with rapidocr's CTCLabelDecode label layout: index 0 is the blank,
    then the model's characters, then a space."""

    def __init__(self, characters: Sequence[str]) -> None:
        self.characters = ["blank", *characters, " "]

    @classmethod
    def from_metadata(cls, meta: dict[str, str]) -> CtcDecoder:
        """From the rec ONNX custom_metadata_map, whose "character" holds one char per line."""
        return cls(meta["character"].splitlines())

    def decode(self, probs: np.ndarray) -> list[tuple[str, float]]:
        """(text, confidence) per row of an [N,T,C] batch; confidence is the mean probability of
        the kept time steps, 0.0 when nothing is kept."""
        if probs.shape[1] == 0:  # no time steps: argmax would raise
            return [("", 0.0)] * len(probs)
        index = probs.argmax(axis=2)
        prob = probs.max(axis=2)
        keep = np.ones(index.shape, dtype=bool)
        keep[:, 1:] = index[:, 1:] != index[:, :-1]  # collapse repeats
        keep &= index != 0  # drop blanks
        out = []
        for idx, p, k in zip(index, prob, keep, strict=True):
            text = "".join(self.characters[i] for i in idx[k])
            out.append((text, float(np.mean(p[k], dtype=np.float64)) if k.any() else 0.0))
        return out


# ------------------------------------------------------------------------ in-process engine


def to_texts(quads: Sequence[np.ndarray], reads: Sequence[tuple[str, float]]) -> list[dict]:
    """Result dicts for reads scoring >= TEXT_SCORE (rapidocr's text_score filter)."""
    return [
        {
            "text": text,
            "confidence": round(float(conf), 4),
            "polygon": [[round(float(x), 1), round(float(y), 1)] for x, y in quad],
        }
        for quad, (text, conf) in zip(quads, reads, strict=True)
        if text and conf >= TEXT_SCORE
    ]


def _as_bgr(image: np.ndarray) -> np.ndarray:
    # rapidocr's LoadImage accepts grey and BGRA arrays too.
    if image.ndim == 2 or image.shape[2] == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


class OcrEngine:
    """PP-OCRv4 det + rec on ONNX Runtime in this process, batched like the Triton model."""

    def __init__(
        self,
        det_path: str | Path = DET_MODEL_PATH,
        rec_path: str | Path = REC_MODEL_PATH,
        intra_threads: int = 0,
        *,
        providers: Sequence[str] = ("CPUExecutionProvider",),
    ) -> None:
        import onnxruntime as ort  # only the in-process engine needs it, not Triton's models

        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = intra_threads  # 0 = ONNX Runtime's default (all cores)
        self._det = ort.InferenceSession(str(det_path), options, providers=list(providers))
        self._rec = ort.InferenceSession(str(rec_path), options, providers=list(providers))
        self._det_input = self._det.get_inputs()[0].name
        self._rec_input = self._rec.get_inputs()[0].name
        self.decoder = CtcDecoder.from_metadata(self._rec.get_modelmeta().custom_metadata_map)

    def read(self, image_bgr: np.ndarray) -> list[dict]:
        return self.read_batch([image_bgr])[0]

    def read_batch(self, images: Sequence[np.ndarray]) -> list[list[dict]]:
        """One det call for all images, one rec call for all of their crops."""
        images = [_as_bgr(img) for img in images]
        live = [i for i, img in enumerate(images) if img.size]
        quads: list[list[np.ndarray]] = [[] for _ in images]
        if live:
            prepared = [det_preprocess(images[i]) for i in live]
            maps = self._det.run(None, {self._det_input: det_batch([t for t, _ in prepared])})[0]
            for i, prob, (_, ratio) in zip(live, maps, prepared, strict=True):
                quads[i] = det_postprocess(prob, ratio, image_size(images[i]))
        owners = [(i, q) for i, qs in enumerate(quads) for q in qs]
        reads: list[tuple[str, float]] = []
        if owners:
            batch = rec_batch([crop_quad(images[i], q) for i, q in owners])
            reads = self.decoder.decode(self._rec.run(None, {self._rec_input: batch})[0])
        per_image: list[list[tuple[str, float]]] = [[] for _ in images]
        for (i, _), read in zip(owners, reads, strict=True):
            per_image[i].append(read)
        return [to_texts(qs, rs) for qs, rs in zip(quads, per_image, strict=True)]
