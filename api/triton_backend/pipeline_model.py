"""Pipeline model (Python backend + BLS): a batch of JPEG bytes in, one JSON result per frame out.

Which pipeline a model serves, its tensor names, the models it calls and their batch limits come
from its definition (api/pipelines_spec.py, found by the model's name); initialize() refuses a
config that disagrees with it. Config parameters (config.pbtxt `parameters`) hold only what the
deployment decides:
  detector_onnx   path of the detector ONNX relative to this model's directory (class names and
                  input size are read from its ultralytics metadata, so a COCO export drops in)
  rec_onnx        path of the OCR recogniser ONNX (its character set is in the metadata)
  det_onnx        path of the OCR detector ONNX (read only when the stages run inline)
  stages          "bls" (default): each stage is a BLS call to its Triton model; "inline": the
                  stage models run in this process (api/triton_backend/stage_runner.py), with
                  the session options `intra_op_threads` and `allow_spinning`
  conf_threshold, iou_threshold   detection thresholds (0.25, 0.45)
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from api import heap
from api.pipelines_spec import MODELS, OCR_REC, YOLO, Pipeline, pipeline_served_by
from api.triton_backend.loaded_config import checked_spec
from api.triton_backend.stage_runner import INLINE, ONNX_PARAMETERS, inline_stages, stage_mode
from api.vision.ocr import CtcDecoder
from api.vision.pipeline import FramePipeline, PipelineSettings
from api.vision.yolo import DetectorInfo

FAULT_INJECTION_ENV = "FRAMEGATE_FAULT_INJECTION"
POISON = b"FRAMEGATE-POISON"

# The config parameter naming the ONNX file whose metadata a stage's post-processing reads.
METADATA_PARAMETERS = {m: ONNX_PARAMETERS[m] for m in (YOLO.name, OCR_REC.name)}


def onnx_metadata(path: Path) -> dict[str, str]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return dict(session.get_modelmeta().custom_metadata_map)


def settings_from_parameters(
    pipeline: Pipeline, params: dict[str, str], model_dir: Path
) -> PipelineSettings:
    """PipelineSettings for `pipeline` from its model's config parameters and the ONNX files
    they name (paths relative to `model_dir`)."""

    def metadata(stage: str) -> dict[str, str]:
        parameter = METADATA_PARAMETERS[stage]
        if parameter not in params:
            raise ValueError(f"{pipeline.triton_model}: config parameter {parameter!r} is missing")
        return onnx_metadata(model_dir / params[parameter])

    calls_yolo, calls_rec = pipeline.calls(YOLO.name), pipeline.calls(OCR_REC.name)
    return PipelineSettings(
        kind=pipeline.id,
        detector=DetectorInfo.from_metadata(metadata(YOLO.name)) if calls_yolo else None,
        decoder=CtcDecoder.from_metadata(metadata(OCR_REC.name)) if calls_rec else None,
        conf_threshold=float(params.get("conf_threshold", "0.25")),
        iou_threshold=float(params.get("iou_threshold", "0.45")),
    )


class PipelineModel:
    def initialize(self, args: dict[str, Any]) -> None:
        import triton_python_backend_utils as pb_utils

        self._pb = pb_utils
        config = json.loads(args["model_config"])
        pipeline = pipeline_served_by(checked_spec(config).name)
        self._input, self._output = pipeline.model.input.name, pipeline.model.output.name
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        model_dir = Path(args["model_repository"])
        settings = settings_from_parameters(pipeline, params, model_dir)
        if stage_mode(params) == INLINE:
            self._pipeline = FramePipeline(settings, inline_stages(pipeline, params, model_dir))
        else:
            self._pipeline = FramePipeline(settings, self._bls)
        # BLS outputs are read in CPU memory: on the GPU deployment the ONNX models' outputs
        # would otherwise stay on the GPU, and NMS/CTC run in numpy anyway (docs/ARCHITECTURE.md).
        self._cpu = pb_utils.PreferredMemory(pb_utils.TRITONSERVER_MEMORY_CPU, 0)
        # Test-only fault injection (off unless the server's environment turns it on): a frame
        # carrying POISON makes the whole run fail, as a model crash on one input would.
        self._inject_faults = os.environ.get(FAULT_INJECTION_ENV) == "1"
        heap.settle()  # the stub lives as long as the model: no collection walks its startup

    def _bls(self, model: str, batch: np.ndarray) -> np.ndarray:
        pb = self._pb
        spec = MODELS[model]
        request = pb.InferenceRequest(
            model_name=model,
            requested_output_names=[spec.output.name],
            inputs=[pb.Tensor(spec.input.name, np.ascontiguousarray(batch, dtype=np.float32))],
            preferred_memory=self._cpu,
        )
        response = request.exec()
        if response.has_error():
            raise RuntimeError(f"{model}: {response.error().message()}")
        output = pb.get_output_tensor_by_name(response, spec.output.name)
        if not output.is_cpu():  # preferred_memory is a preference; never hand numpy a GPU pointer
            raise RuntimeError(f"{model}: output {spec.output.name} arrived in GPU memory")
        return output.as_numpy()

    def execute(self, requests: list) -> list:
        """One pipeline run over every request's frames; when it fails, each request is run on
        its own, so one bad request never errors the others handed to the same execute()."""
        pb = self._pb
        batches = [
            [bytes(f) for f in pb.get_input_tensor_by_name(r, self._input).as_numpy().reshape(-1)]
            for r in requests
        ]
        try:
            results = self._process([f for frames in batches for f in frames])
        except Exception as exc:
            if len(requests) == 1:
                return [self._error(exc)]
            return [self._respond_alone(frames) for frames in batches]
        responses, start = [], 0
        for frames in batches:
            responses.append(self._response(results[start : start + len(frames)]))
            start += len(frames)
        return responses

    def _respond_alone(self, frames: list[bytes]) -> Any:
        try:
            return self._response(self._process(frames))
        except Exception as exc:
            return self._error(exc)

    def _process(self, frames: list[bytes]) -> list[dict]:
        if self._inject_faults and any(POISON in f for f in frames):
            raise RuntimeError("injected fault: poisoned frame")
        return self._pipeline.process(frames)

    def _response(self, results: list[dict]) -> Any:
        payload = np.array(
            [[json.dumps(r, separators=(",", ":")).encode()] for r in results], dtype=np.object_
        )
        return self._pb.InferenceResponse(output_tensors=[self._pb.Tensor(self._output, payload)])

    def _error(self, exc: Exception) -> Any:
        return self._pb.InferenceResponse(error=self._pb.TritonError(f"pipeline failed: {exc}"))

    def finalize(self) -> None:
        del self._pipeline  # drops the pipeline (and its buffers) when Triton unloads the model
