"""Pipeline model (Python backend + BLS): a batch of JPEG bytes in, one JSON result per frame out.

Config parameters (config.pbtxt `parameters`):
  pipeline        yolo | ocr | yolo_ocr
  detector_onnx   path of the detector ONNX relative to this model's directory (class names and
                  input size are read from its ultralytics metadata, so a COCO export drops in)
  rec_onnx        path of the OCR recogniser ONNX (its character set is in the metadata)
  text_classes    comma-separated detector labels whose crops are read by OCR
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from api.vision.ocr import CtcDecoder
from api.vision.pipeline import FramePipeline, PipelineSettings
from api.vision.yolo import DetectorInfo

INPUT = "frames"
OUTPUT = "results"


def onnx_metadata(path: Path) -> dict[str, str]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return dict(session.get_modelmeta().custom_metadata_map)


def max_batch_of(model_dir: Path) -> int:
    """Sub-model batch limit from its config, so BLS never sends more than it accepts."""
    for name in ("configs/cpu.pbtxt", "config.pbtxt"):
        path = model_dir / name
        if path.exists():
            for line in path.read_text().splitlines():
                if line.strip().startswith("max_batch_size"):
                    return int(line.split(":")[1])
    return 8


def settings_from_parameters(params: dict[str, str], model_dir: Path) -> PipelineSettings:
    """PipelineSettings from a pipeline model's config parameters and the ONNX files they name
    (paths relative to `model_dir`; sub-model batch limits from the repository beside it)."""
    kind = params.get("pipeline", "")
    detector = decoder = None
    if kind in ("yolo", "yolo_ocr"):
        detector = DetectorInfo.from_metadata(onnx_metadata(model_dir / params["detector_onnx"]))
    if kind in ("ocr", "yolo_ocr"):
        decoder = CtcDecoder.from_metadata(onnx_metadata(model_dir / params["rec_onnx"]))
    return PipelineSettings(
        kind=kind,
        detector=detector,
        decoder=decoder,
        text_classes=frozenset(
            c.strip() for c in params.get("text_classes", "plate").split(",") if c.strip()
        ),
        conf_threshold=float(params.get("conf_threshold", "0.25")),
        iou_threshold=float(params.get("iou_threshold", "0.45")),
        max_batch={m: max_batch_of(model_dir.parent / m) for m in ("yolo", "ocr_det", "ocr_rec")},
    )


class PipelineModel:
    def initialize(self, args: dict[str, Any]) -> None:
        import triton_python_backend_utils as pb_utils

        self._pb = pb_utils
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        settings = settings_from_parameters(params, Path(args["model_repository"]))
        self._pipeline = FramePipeline(settings, self._bls)

    def _bls(self, model: str, batch: np.ndarray) -> np.ndarray:
        pb = self._pb
        input_name, output_name = (
            ("images", "output0") if model == "yolo" else ("x", _OCR_OUTPUTS[model])
        )
        request = pb.InferenceRequest(
            model_name=model,
            requested_output_names=[output_name],
            inputs=[pb.Tensor(input_name, np.ascontiguousarray(batch, dtype=np.float32))],
        )
        response = request.exec()
        if response.has_error():
            raise RuntimeError(f"{model}: {response.error().message()}")
        return pb.get_output_tensor_by_name(response, output_name).as_numpy()

    def execute(self, requests: list) -> list:
        pb = self._pb
        frames: list[bytes] = []
        counts: list[int] = []
        for request in requests:
            column = pb.get_input_tensor_by_name(request, INPUT).as_numpy().reshape(-1)
            frames.extend(bytes(f) for f in column)
            counts.append(len(column))
        try:
            results = self._pipeline.process(frames)
        except Exception as exc:  # a model failure: every request gets an error, none is lost
            return [
                pb.InferenceResponse(error=pb.TritonError(f"pipeline failed: {exc}"))
                for _ in requests
            ]
        responses = []
        start = 0
        for n in counts:
            payload = np.array(
                [
                    [json.dumps(r, separators=(",", ":")).encode()]
                    for r in results[start : start + n]
                ],
                dtype=np.object_,
            )
            responses.append(pb.InferenceResponse(output_tensors=[pb.Tensor(OUTPUT, payload)]))
            start += n
        return responses

    def finalize(self) -> None:
        self._pipeline = None


_OCR_OUTPUTS = {"ocr_det": "sigmoid_0.tmp_0", "ocr_rec": "softmax_11.tmp_0"}
