"""Every pipeline and every Triton model it calls, defined once.

The gateway registry (api/inference/pipelines.py), the Triton pipeline models
(api/triton_backend/), the in-process baseline (api/loadtest/inprocess.py) and the config check
(api/model_configs.py, tests/triton/test_pipeline_definitions.py) all read these definitions;
each `triton_models/<model>/config.pbtxt` and `configs/*.pbtxt` must declare exactly the interface
written here.

Imported inside Triton's Python backend stub: plain dataclasses only, Python 3.10.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TensorSpec:
    name: str
    data_type: str  # Triton's DataType name, as config.pbtxt spells it ("TYPE_FP32")
    dims: tuple[int, ...]  # without the batch axis; -1 is a variable size

    def __str__(self) -> str:
        return f"{self.name} {self.data_type} {list(self.dims)}"


@dataclass(frozen=True)
class ModelSpec:
    """The interface of one Triton model: identical in its GPU and CPU configs."""

    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    max_batch_size: int

    @property
    def input(self) -> TensorSpec:
        return _only(self.inputs, self.name, "input")

    @property
    def output(self) -> TensorSpec:
        return _only(self.outputs, self.name, "output")

    def differences(self, declared: ModelSpec) -> list[str]:
        """What `declared` (read from a config) gets wrong about this model, one line each."""
        problems = []
        for attr in ("name", "max_batch_size", "inputs", "outputs"):
            want, got = getattr(self, attr), getattr(declared, attr)
            if want != got:
                problems.append(
                    f"{self.name}: {attr} is {_show(got)}, the definition says {_show(want)}"
                )
        return problems


def _show(value: object) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(str(t) for t in value) + ")"
    return repr(value)


def _only(tensors: tuple[TensorSpec, ...], model: str, kind: str) -> TensorSpec:
    if len(tensors) != 1:
        raise ValueError(f"{model} has {len(tensors)} {kind}s, expected exactly one")
    return tensors[0]


@dataclass(frozen=True)
class Pipeline:
    """A pipeline as clients ask for it, the Triton model that serves it (JPEG bytes in, one JSON
    result per frame out) and the models that model calls through BLS, in call order."""

    id: str
    model: ModelSpec
    stages: tuple[ModelSpec, ...]
    description: str
    produces: tuple[str, ...]  # top-level keys of each frame's result
    text_classes: frozenset[str] = frozenset()  # detector labels whose crops are read by OCR

    @property
    def triton_model(self) -> str:
        return self.model.name

    @property
    def stage_names(self) -> tuple[str, ...]:
        return tuple(stage.name for stage in self.stages)

    @property
    def models(self) -> tuple[str, ...]:
        """Every Triton model that must be ready for this pipeline."""
        return (self.model.name, *self.stage_names)

    @property
    def max_batch_size(self) -> int:
        """Frames per request the serving model accepts."""
        return self.model.max_batch_size

    def calls(self, model: str) -> bool:
        return model in self.stage_names

    def describe(self) -> dict[str, object]:
        return {
            "id": self.id,
            "description": self.description,
            "produces": list(self.produces),
            "triton_model": self.triton_model,
            "models": list(self.models),
        }


FP32 = "TYPE_FP32"

YOLO = ModelSpec(
    name="yolo",
    inputs=(TensorSpec("images", FP32, (3, -1, -1)),),  # ultralytics export, 0..1 RGB
    outputs=(TensorSpec("output0", FP32, (-1, -1)),),  # [4 + classes, anchors]
    max_batch_size=16,
)
OCR_DET = ModelSpec(
    name="ocr_det",
    inputs=(TensorSpec("x", FP32, (3, -1, -1)),),
    outputs=(TensorSpec("sigmoid_0.tmp_0", FP32, (1, -1, -1)),),
    max_batch_size=8,  # full frames at detection resolution: memory, not throughput, limits it
)
OCR_REC = ModelSpec(
    name="ocr_rec",
    inputs=(TensorSpec("x", FP32, (3, 48, -1)),),
    outputs=(TensorSpec("softmax_11.tmp_0", FP32, (-1, 6625)),),  # PP-OCRv4 charset + blank
    max_batch_size=64,  # small crops: every plate of a batch of frames in one call
)
STAGE_MODELS: dict[str, ModelSpec] = {m.name: m for m in (YOLO, OCR_DET, OCR_REC)}


# Every pipeline model's interface: a batch of JPEG bytes in, one JSON string per frame out.
FRAMES = TensorSpec("frames", "TYPE_STRING", (1,))
RESULTS = TensorSpec("results", "TYPE_STRING", (1,))


def _serving_model(name: str) -> ModelSpec:
    """Every pipeline model takes a batch of JPEG bytes and returns one JSON string per frame;
    its batch fits the detector's, so BLS never splits a batch of frames for YOLO."""
    return ModelSpec(
        name=name,
        inputs=(FRAMES,),
        outputs=(RESULTS,),
        max_batch_size=YOLO.max_batch_size,
    )


PIPELINES: dict[str, Pipeline] = {
    p.id: p
    for p in (
        Pipeline(
            id="yolo",
            model=_serving_model("pipeline_yolo"),
            stages=(YOLO,),
            description="YOLO object detection; boxes in source-image pixels",
            produces=("detections",),
        ),
        Pipeline(
            id="ocr",
            model=_serving_model("pipeline_ocr"),
            stages=(OCR_DET, OCR_REC),
            description="Full-frame text detection and recognition (PP-OCRv4)",
            produces=("texts",),
        ),
        Pipeline(
            id="yolo_ocr",
            model=_serving_model("pipeline_yolo_ocr"),
            stages=(YOLO, OCR_REC),
            description="YOLO detection; text-bearing detections also carry the text read by OCR",
            produces=("detections",),
            # The synthetic detector's class, and the COCO/plate-model labels that carry text.
            text_classes=frozenset({"plate", "license_plate", "stop sign"}),
        ),
    )
}

MODELS: dict[str, ModelSpec] = {
    **STAGE_MODELS,
    **{p.triton_model: p.model for p in PIPELINES.values()},
}


def pipeline_served_by(model: str) -> Pipeline:
    """The pipeline whose Triton model is `model` (a pipeline model knows only its own name)."""
    for pipeline in PIPELINES.values():
        if pipeline.triton_model == model:
            return pipeline
    known = ", ".join(p.triton_model for p in PIPELINES.values())
    raise ValueError(f"no pipeline is served by model {model!r}; defined: {known}")
