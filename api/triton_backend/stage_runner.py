"""A pipeline's stage models run inside the pipeline's own process (`stages: "inline"`).

On the CPU deployment every stage model is ONNX Runtime inside a Python backend stub
(onnx_model.py), so a BLS call to it only adds a hop: the request and its tensors copied through
the server's shared memory, a process switch and the server's scheduling, twice per stage. Run
in the pipeline's stub instead, the same model file with the same session options does the same
work with none of that (docs/BENCHMARKS.md, issue 10: `yolo_ocr` c/a 0.73-0.80 through BLS,
0.87-1.02 inline). The GPU deployment keeps BLS: there each stage is Triton's onnxruntime or
TensorRT backend on the GPU.

Only what Triton's Python environment has is used here (numpy, onnxruntime): no pbtxt parsing.
The ONNX files and session options come from the pipeline's own config parameters, and a test
checks that they are the stage models' own (tests/triton/test_pipeline_definitions.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from api.pipelines_spec import MODELS, OCR_DET, OCR_REC, YOLO, Pipeline
from api.triton_backend.onnx_model import session_options

BLS, INLINE = "bls", "inline"
STAGE_MODES = (BLS, INLINE)

# The pipeline config parameter naming each stage model's ONNX file (relative to the pipeline's
# model directory).
ONNX_PARAMETERS = {YOLO.name: "detector_onnx", OCR_DET.name: "det_onnx", OCR_REC.name: "rec_onnx"}


def stage_mode(params: Mapping[str, str]) -> str:
    """`stages` of a pipeline's config parameters: "bls" (the default) or "inline"."""
    mode = params.get("stages", BLS)
    if mode not in STAGE_MODES:
        raise ValueError(f"config parameter 'stages' is {mode!r}; expected one of {STAGE_MODES}")
    return mode


class StageSession:
    """One stage model in ONNX Runtime, called with the batch a BLS request would carry."""

    def __init__(self, model: str, path: Path, params: Mapping[str, str]) -> None:
        import onnxruntime as ort

        spec = MODELS[model]
        self.name, self.path = model, path
        options = session_options(dict(params))
        self.intra_op_threads = options.intra_op_num_threads
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input, self.output = spec.input.name, spec.output.name
        batch_dim = self.session.get_inputs()[0].shape[0]
        # A static batch-1 export still works (one run per frame), as in onnx_model.py.
        self._static_batch = batch_dim if isinstance(batch_dim, int) else None

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=np.float32)  # what the BLS call sends
        if self._static_batch in (None, batch.shape[0]):
            return self.session.run([self.output], {self.input: batch})[0]
        return np.concatenate(
            [
                self.session.run([self.output], {self.input: batch[i : i + 1]})[0]
                for i in range(batch.shape[0])
            ]
        )


class InlineStages:
    """A FramePipeline model runner (model name, batch) -> output over in-process sessions."""

    def __init__(self, sessions: Mapping[str, StageSession]) -> None:
        self.sessions = dict(sessions)

    def __call__(self, model: str, batch: np.ndarray) -> np.ndarray:
        return self.sessions[model](batch)


def inline_stages(pipeline: Pipeline, params: Mapping[str, str], model_dir: Path) -> InlineStages:
    """Sessions for every stage of `pipeline`: the ONNX files its config parameters name
    (relative to `model_dir`), with the session options of its own parameters
    (`intra_op_threads`, `allow_spinning`: the stage models' CPU configs' values)."""
    sessions = {}
    for stage in pipeline.stage_names:
        parameter = ONNX_PARAMETERS[stage]
        if parameter not in params:
            raise ValueError(
                f"{pipeline.triton_model}: stages are inline but config parameter "
                f"{parameter!r} (the {stage} ONNX file) is missing"
            )
        path = model_dir / params[parameter]
        if not path.is_file():
            raise ValueError(f"{pipeline.triton_model}: {parameter} {path} is not a file")
        sessions[stage] = StageSession(stage, path, params)
    return InlineStages(sessions)
