"""api.vision.ocr against rapidocr_onnxruntime (the reference it reimplements) and ground truth."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from api.synthetic.scene import Frame, encode_jpeg, make_frames, render_plate
from api.vision import ocr

SEED = 1234
FRAME_COUNT = 30
# Frames per read_batch call. Several frames share the det call and their crops one rec call;
# more would only slow the test, since bigger det batches are slower per frame on CPU.
DET_BATCH = 3


def _jpeg_round_trip(image: np.ndarray) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(encode_jpeg(image), np.uint8), cv2.IMREAD_COLOR)


def _bbox(polygon) -> np.ndarray:
    pts = np.asarray(polygon, np.float64)
    return np.concatenate([pts.min(axis=0), pts.max(axis=0)])


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _agreement(expected: list[list[dict]], actual: list[list[dict]]) -> tuple[int, int]:
    """(strings read identically, strings in either result): a pair matches when its polygons'
    bounding boxes overlap with IoU >= 0.5; unmatched strings on either side count as misses."""
    same = total = 0
    for exp, act in zip(expected, actual, strict=True):
        unused = list(act)
        for e in exp:
            box = _bbox(e["polygon"])
            best = max(unused, key=lambda a: _iou(box, _bbox(a["polygon"])), default=None)
            if best is not None and _iou(box, _bbox(best["polygon"])) >= 0.5:
                unused.remove(best)
                same += best["text"] == e["text"]
            total += 1
        total += len(unused)
    return same, total


@pytest.fixture(scope="module")
def engine() -> ocr.OcrEngine:
    return ocr.OcrEngine(ocr.DET_MODEL_PATH, ocr.REC_MODEL_PATH)


@pytest.fixture(scope="module")
def frames() -> list[Frame]:
    return make_frames(SEED, FRAME_COUNT)


@pytest.fixture(scope="module")
def images(frames: list[Frame]) -> list[np.ndarray]:
    return [_jpeg_round_trip(f.image) for f in frames]


@pytest.fixture(scope="module")
def sessions():
    """Bare ONNX Runtime (det, rec) sessions, for driving the pure functions as Triton does."""
    import onnxruntime as ort

    return tuple(
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        for path in (ocr.DET_MODEL_PATH, ocr.REC_MODEL_PATH)
    )


@pytest.fixture(scope="module")
def rapidocr():
    from rapidocr_onnxruntime import RapidOCR

    engine = RapidOCR()
    return lambda image: [
        {"text": text, "polygon": box} for box, text, _ in engine(image, use_cls=False)[0] or []
    ]


@pytest.fixture(scope="module")
def reads(engine: ocr.OcrEngine, images: list[np.ndarray]) -> list[list[dict]]:
    return [engine.read(img) for img in images]


@pytest.mark.triton
def test_read_matches_rapidocr(rapidocr, images: list[np.ndarray], reads: list[list[dict]]) -> None:
    expected = [rapidocr(img) for img in images]
    same, total = _agreement(expected, reads)
    print(f"read vs rapidocr: {same}/{total} strings agree ({same / total:.1%})")
    assert total >= FRAME_COUNT
    assert same / total >= 0.95


@pytest.mark.triton  # the slow layer: OCR over the whole 30-frame data set
def test_read_batch_matches_read(
    engine: ocr.OcrEngine, images: list[np.ndarray], reads: list[list[dict]]
) -> None:
    batched = [
        result
        for start in range(0, len(images), DET_BATCH)
        for result in engine.read_batch(images[start : start + DET_BATCH])
    ]
    same, total = _agreement(reads, batched)
    print(f"read_batch vs read: {same}/{total} strings agree ({same / total:.1%})")
    assert same / total >= 0.95


@pytest.mark.triton  # the slow layer: OCR over the whole 30-frame data set
def test_plates_are_read_exactly(frames: list[Frame], reads: list[list[dict]]) -> None:
    signs = [
        (s.text, {r["text"].replace(" ", "") for r in read})
        for f, read in zip(frames, reads, strict=True)
        for s in f.signs
    ]
    found = sum(text in texts for text, texts in signs)
    print(f"plates read exactly: {found}/{len(signs)} ({found / len(signs):.1%})")
    assert found / len(signs) >= 0.90


@pytest.mark.parametrize(
    "size",
    [(100, 30), (96, 28)],
    ids=["letterboxed", "min-side-resized"],
)
@pytest.mark.triton
def test_strip_matches_rapidocr(rapidocr, engine: ocr.OcrEngine, size: tuple[int, int]) -> None:
    # Thin images take rapidocr's special paths: height <= 30 px gets black rows above and
    # below; a side < 30 px resizes the whole image first. Quads must map back identically.
    plate = render_plate(np.random.default_rng(0), "AB3KX7", 200)
    strip = cv2.resize(plate, size)
    ours, theirs = engine.read(strip), rapidocr(strip)
    assert [r["text"] for r in ours] == [r["text"] for r in theirs] == ["AB3KX7"]
    np.testing.assert_allclose(ours[0]["polygon"], theirs[0]["polygon"], atol=0.05)


# ------------------------------------------------------------------------------ CTC decoding

CHARS = ["a", "b", "c"]  # labels: 0 blank, 1 a, 2 b, 3 c, 4 space


def _probs(steps: list[tuple[int, float]], classes: int = len(CHARS) + 2) -> np.ndarray:
    """One [1,T,C] row whose argmax at step t is steps[t][0] with probability steps[t][1]."""
    out = np.zeros((1, len(steps), classes), np.float32)
    for t, (label, p) in enumerate(steps):
        out[0, t, :] = (1 - p) / (classes - 1)
        out[0, t, label] = p
    return out


def test_ctc_collapses_repeats_drops_blanks_and_averages_kept_probs() -> None:
    steps = [
        (1, 0.9),
        (1, 0.2),
        (0, 0.8),
        (1, 0.6),
        (2, 0.5),
        (2, 0.99),
        (0, 0.7),
        (4, 0.8),
        (3, 0.4),
    ]
    [(text, conf)] = ocr.CtcDecoder(CHARS).decode(_probs(steps))
    assert text == "aab c"
    assert conf == pytest.approx(np.mean([0.9, 0.6, 0.5, 0.8, 0.4]))


def test_ctc_from_metadata_uses_newline_separated_characters() -> None:
    decoder = ocr.CtcDecoder.from_metadata({"character": "a\nb\nc"})
    assert decoder.characters == ["blank", "a", "b", "c", " "]


def test_ctc_labels_match_rec_model_output(sessions) -> None:
    _, rec = sessions
    decoder = ocr.CtcDecoder.from_metadata(rec.get_modelmeta().custom_metadata_map)
    crop = np.random.default_rng(0).integers(0, 256, (48, 160, 3), dtype=np.uint8)
    probs = rec.run(None, {rec.get_inputs()[0].name: ocr.rec_batch([crop])})[0]
    assert probs.shape[2] == len(decoder.characters)


def test_ctc_no_text_decodes_empty_and_is_filtered() -> None:
    decoder = ocr.CtcDecoder(CHARS)
    blank_only = decoder.decode(_probs([(0, 0.9)] * 5))
    no_steps = decoder.decode(np.zeros((2, 0, len(CHARS) + 2), np.float32))
    assert blank_only == [("", 0.0)]
    assert no_steps == [("", 0.0), ("", 0.0)]
    quad = np.zeros((4, 2), np.float32)
    assert ocr.to_texts([quad, quad, quad], [("", 0.0), ("ab", 0.49), ("ab", 0.5)]) == [
        {"text": "ab", "confidence": 0.5, "polygon": [[0.0, 0.0]] * 4}
    ]


# ------------------------------------------------------------------------- det batching


def test_det_batch_padding_does_not_change_quads(sessions) -> None:
    # Padded in height for one and in width for the other: det 736x992 and 992x736.
    wide = make_frames(SEED + 1, 1, width=400, height=300)[0].image
    tall = make_frames(SEED + 2, 1, width=300, height=400)[0].image
    session, _ = sessions

    def quads(batch_images: list[np.ndarray]) -> list[list[np.ndarray]]:
        prepared = [ocr.det_preprocess(img) for img in batch_images]
        batch = ocr.det_batch([t for t, _ in prepared])
        maps = session.run(None, {session.get_inputs()[0].name: batch})[0]
        return [
            ocr.det_postprocess(m, ratio, img.shape[:2])
            for m, (_, ratio), img in zip(maps, prepared, batch_images, strict=True)
        ]

    alone = quads([wide]) + quads([tall])
    together = quads([wide, tall])
    for single, batched in zip(alone, together, strict=True):
        assert single, "each image should contain text, or the comparison proves nothing"
        assert len(batched) == len(single)
        for a, b in zip(single, batched, strict=True):
            assert np.abs(a - b).max() <= 2


def test_det_batch_pads_with_model_neutral_value() -> None:
    small = np.ones((3, 32, 64), np.float32)
    large = np.ones((3, 64, 32), np.float32)
    batch = ocr.det_batch([small, large])
    assert batch.shape == (2, 3, 64, 64)
    assert (batch[0, :, 32:, :] == ocr.DET_PAD_VALUE).all()
    assert (batch[1, :, :, 32:] == ocr.DET_PAD_VALUE).all()


# ------------------------------------------------------------------------------ edge cases


@pytest.mark.parametrize(
    "image",
    [np.zeros((1, 1, 3), np.uint8), np.zeros((360, 640, 3), np.uint8)],
    ids=["1x1", "black-640x360"],
)
def test_read_returns_nothing_for_textless_images(engine: ocr.OcrEngine, image: np.ndarray) -> None:
    assert engine.read(image) == []


def test_read_batch_of_nothing_is_empty(engine: ocr.OcrEngine) -> None:
    assert engine.read_batch([]) == []
