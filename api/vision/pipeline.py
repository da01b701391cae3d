"""The frame pipelines (yolo, ocr, yolo_ocr) as plain code over a model runner.

Inside Triton the runner is a BLS call; in benchmarks it is an in-process ONNX Runtime session.
Either way a batch of frames becomes one model call per stage, and a bad frame becomes an error
result for that frame only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from api.pipelines_spec import OCR_REC, PIPELINES, STAGE_MODELS, YOLO
from api.vision import ocr
from api.vision.jpeg import FrameError, decode_jpeg, image_size
from api.vision.yolo import DetectorInfo, crop_box, decode, letterbox

# (model name, batched input) -> batched output; the runner owns transport and batching limits.
ModelRunner = Callable[[str, np.ndarray], np.ndarray]

PIPELINE_KINDS = tuple(PIPELINES)


@dataclass
class PipelineSettings:
    """`kind` is a pipeline id of api/pipelines_spec.py; stage limits and text classes default to
    its definition."""

    kind: str
    detector: DetectorInfo | None = None
    decoder: ocr.CtcDecoder | None = None
    text_classes: frozenset[str] | None = None  # None: the definition's
    conf_threshold: float = 0.25
    iou_threshold: float = 0.45
    max_batch: dict[str, int] = field(
        default_factory=lambda: {m.name: m.max_batch_size for m in STAGE_MODELS.values()}
    )
    model_names: dict[str, str] = field(default_factory=lambda: {m: m for m in STAGE_MODELS})

    def __post_init__(self) -> None:
        if self.kind not in PIPELINES:
            raise ValueError(
                f"unknown pipeline kind {self.kind!r}; expected one of {PIPELINE_KINDS}"
            )
        definition = PIPELINES[self.kind]
        if self.text_classes is None:
            self.text_classes = definition.text_classes
        if definition.calls(YOLO.name) and self.detector is None:
            raise ValueError(f"pipeline {self.kind!r} needs detector metadata")
        if definition.calls(OCR_REC.name) and self.decoder is None:
            raise ValueError(f"pipeline {self.kind!r} needs the OCR character set")


class FramePipeline:
    def __init__(self, settings: PipelineSettings, run: ModelRunner) -> None:
        self.settings = settings
        self._run = run

    def process(self, frames: Sequence[bytes]) -> list[dict]:
        results: list[dict] = [{} for _ in frames]
        images: dict[int, np.ndarray] = {}
        for i, data in enumerate(frames):
            try:
                images[i] = decode_jpeg(data)
            except FrameError as exc:
                results[i] = exc.as_result()
        if not images:
            return results
        order = list(images)
        kind = self.settings.kind
        if kind in ("yolo", "yolo_ocr"):
            detections = self._detect([images[i] for i in order])
            if kind == "yolo_ocr":
                self._read_detections([images[i] for i in order], detections)
            for i, dets in zip(order, detections, strict=True):
                results[i] = {"detections": dets}
        else:
            for i, texts in zip(
                order, self._read_full_frames([images[i] for i in order]), strict=True
            ):
                results[i] = {"texts": texts}
        return results

    def _call(self, stage: str, batch: np.ndarray) -> np.ndarray:
        """One model call per chunk of the stage's max batch size (usually exactly one)."""
        limit = self.settings.max_batch[stage]
        name = self.settings.model_names[stage]
        outs = [self._run(name, batch[i : i + limit]) for i in range(0, len(batch), limit)]
        return outs[0] if len(outs) == 1 else np.concatenate(outs)

    def _detect(self, images: list[np.ndarray]) -> list[list[dict]]:
        info = self.settings.detector
        assert info is not None  # guaranteed by PipelineSettings
        boxed = [letterbox(img, info.imgsz) for img in images]
        output = self._call("yolo", np.stack([t for t, _ in boxed]))
        return [
            decode(
                out,
                lb,
                image_size(img),
                info.names,
                self.settings.conf_threshold,
                self.settings.iou_threshold,
            )
            for out, (_, lb), img in zip(output, boxed, images, strict=True)
        ]

    def _recognise(self, crops: list[np.ndarray]) -> list[tuple[str, float]]:
        """All crops of all frames in as few rec calls as possible; similar aspect ratios are
        grouped so padding to the widest crop wastes little."""
        decoder = self.settings.decoder
        assert decoder is not None
        if not crops:
            return []
        order = sorted(
            range(len(crops)), key=lambda i: crops[i].shape[1] / max(crops[i].shape[0], 1)
        )
        limit = self.settings.max_batch["ocr_rec"]
        read: list[tuple[str, float]] = [("", 0.0)] * len(crops)
        for start in range(0, len(order), limit):
            chunk = order[start : start + limit]
            probs = self._run(
                self.settings.model_names["ocr_rec"], ocr.rec_batch([crops[i] for i in chunk])
            )
            for i, decoded in zip(chunk, decoder.decode(probs), strict=True):
                read[i] = decoded
        return read

    def _read_detections(self, images: list[np.ndarray], detections: list[list[dict]]) -> None:
        classes = self.settings.text_classes
        assert classes is not None  # resolved by PipelineSettings
        wanted = [
            (f, d) for f, dets in enumerate(detections) for d in dets if d["label"] in classes
        ]
        crops = [crop_box(images[f], d["box"]) for f, d in wanted]
        for (_, det), (text, conf) in zip(wanted, self._recognise(crops), strict=True):
            det["text"] = text
            det["text_confidence"] = round(float(conf), 4)

    def _read_full_frames(self, images: list[np.ndarray]) -> list[list[dict]]:
        prepared = [ocr.det_preprocess(img) for img in images]
        maps = self._call("ocr_det", ocr.det_batch([t for t, _ in prepared]))
        quads = [
            ocr.det_postprocess(prob, ratio, image_size(img))
            for prob, (_, ratio), img in zip(maps, prepared, images, strict=True)
        ]
        owners = [(f, q) for f, qs in enumerate(quads) for q in qs]
        reads = self._recognise([ocr.crop_quad(images[f], q) for f, q in owners])
        texts: list[list[dict]] = [[] for _ in images]
        for (f, quad), (text, conf) in zip(owners, reads, strict=True):
            if text and conf >= ocr.TEXT_SCORE:
                texts[f].append(
                    {
                        "text": text,
                        "confidence": round(float(conf), 4),
                        "polygon": [[round(float(x), 1), round(float(y), 1)] for x, y in quad],
                    }
                )
        return texts
