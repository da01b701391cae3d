"""In-process ONNX Runtime baseline of the served pipelines: the only difference from Triton is
the server.

`FramePipeline` (api/vision/pipeline.py) is the same code the Triton pipeline models run; here its
model runner calls ONNX Runtime sessions directly instead of making BLS calls. Everything else is
taken from the model repository the way the Triton models take it:

- each ONNX model (`yolo`, `ocr_det`, `ocr_rec`) is `triton_models/<m>/<version>/<onnx_file>` with
  the session options of `api/triton_backend/onnx_model.py` (`intra_op_threads` from the model's
  config parameters, one inter-op thread, CPU execution provider; a static batch-1 export is run
  one frame at a time);
- each pipeline's settings come from its definition (api/pipelines_spec.py: stages, text
  classes, per-stage batch limits), its config parameters (thresholds) and the ONNX metadata
  (detector names and input size, OCR character set), as `api/triton_backend/pipeline_model.py`
  builds them;
- the config is `configs/<config_name>.pbtxt` when it exists, else `config.pbtxt`, as Triton's
  `--model-config-name` picks it, and it must match the model's definition
  (api/pipelines_spec.py), as the Triton models require.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from api.loadtest.measure import (
    CpuMonitor,
    Measurement,
    count_results,
    cycle_batch,
    latency_summary,
)
from api.model_configs import ModelConfig, checked_config
from api.pipelines_spec import PIPELINES, STAGE_MODELS
from api.triton_backend.pipeline_model import settings_from_parameters
from api.triton_backend.stage_runner import StageSession
from api.vision.jpeg import decode_jpeg
from api.vision.pipeline import PIPELINE_KINDS, FramePipeline, PipelineSettings
from api.vision.yolo import letterbox

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL_REPOSITORY = REPO_ROOT / "triton_models"
ONNX_MODELS = tuple(STAGE_MODELS)


def load_config(model_dir: Path, config_name: str = "cpu") -> ModelConfig:
    """The model's Triton config (a ModelConfig protobuf), chosen as Triton chooses it and checked
    against its definition."""
    return checked_config(model_dir, config_name)


def config_parameters(config: ModelConfig) -> dict[str, str]:
    return {key: value.string_value for key, value in config.parameters.items()}


def latest_version(model_dir: Path) -> Path:
    """Triton's default version policy: the highest numbered version directory."""
    versions = [p for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit()]
    if not versions:
        raise FileNotFoundError(f"no version directory under {model_dir}")
    return max(versions, key=lambda p: int(p.name))


class OrtModel:
    """One ONNX model with the Triton CPU model's session settings (its config's parameters, as
    api/triton_backend/onnx_model.py reads them); called with the batch a BLS request would
    carry. The run itself is the inline stage's (api/triton_backend/stage_runner.py)."""

    def __init__(self, model_dir: Path, config_name: str = "cpu") -> None:
        config = load_config(model_dir, config_name)
        params = config_parameters(config)
        self.name = model_dir.name
        self.path = latest_version(model_dir) / params.get("onnx_file", "model.onnx")
        self._stage = StageSession(self.name, self.path, params)
        self.intra_op_threads = self._stage.intra_op_threads
        self.session = self._stage.session
        self.input, self.output = self._stage.input, self._stage.output

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self._stage(batch)


@dataclass
class OrtRunner:
    """A `ModelRunner` for FramePipeline: model name -> in-process ONNX Runtime session. Like the
    Triton deployment, all pipelines share one session per model (loaded on first use)."""

    repository: Path = MODEL_REPOSITORY
    config_name: str = "cpu"
    models: dict[str, OrtModel] = field(default_factory=dict)

    def model(self, name: str) -> OrtModel:
        if name not in self.models:
            self.models[name] = OrtModel(self.repository / name, self.config_name)
        return self.models[name]

    def __call__(self, name: str, batch: np.ndarray) -> np.ndarray:
        return self.model(name)(batch)


def pipeline_settings(
    kind: str, repository: Path = MODEL_REPOSITORY, config_name: str = "cpu"
) -> PipelineSettings:
    """The settings `pipeline_<kind>` builds in PipelineModel.initialize, from the same files."""
    if kind not in PIPELINE_KINDS:
        raise ValueError(f"unknown pipeline {kind!r}; expected one of {PIPELINE_KINDS}")
    pipeline = PIPELINES[kind]
    model_dir = repository / pipeline.triton_model
    params = config_parameters(load_config(model_dir, config_name))
    return settings_from_parameters(pipeline, params, model_dir)


class InProcessPipelines:
    """All pipeline kinds over one shared OrtRunner."""

    def __init__(self, repository: Path = MODEL_REPOSITORY, config_name: str = "cpu") -> None:
        self.repository = repository
        self.config_name = config_name
        self.runner = OrtRunner(repository, config_name)
        self._pipelines: dict[str, FramePipeline] = {}

    def pipeline(self, kind: str) -> FramePipeline:
        if kind not in self._pipelines:
            settings = pipeline_settings(kind, self.repository, self.config_name)
            self._pipelines[kind] = FramePipeline(settings, self.runner)
        return self._pipelines[kind]

    def process(self, kind: str, frames: Sequence[bytes]) -> list[dict]:
        return self.pipeline(kind).process(frames)


@dataclass(frozen=True)
class _Window:
    """The closed loop's stopping rule: it runs until both `duration_s` and `min_requests` are
    reached."""

    started: float
    duration_s: float
    min_requests: int

    def more(self, requests: int) -> bool:
        elapsed = time.perf_counter() - self.started
        return requests < self.min_requests or elapsed < self.duration_s


@dataclass
class _Tally:
    """One caller's measured batches."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    objects: int = 0


def _pipeline_caller(
    pipelines: InProcessPipelines,
    kind: str,
    jpegs: Sequence[bytes],
    batch: int,
    first_index: int,
    window: _Window,
) -> _Tally:
    tally = _Tally()
    index = first_index
    while window.more(len(tally.latencies)):
        frames = cycle_batch(jpegs, index, batch)
        t0 = time.perf_counter()
        results = pipelines.process(kind, frames)
        tally.latencies.append(time.perf_counter() - t0)
        e, o = count_results(results)
        tally.errors, tally.objects, index = tally.errors + e, tally.objects + o, index + 1
    return tally


def _on_threads(calls: Sequence[Callable[[], _Tally]]) -> list[_Tally]:
    """Runs the calls at once, one thread each (a single one on this thread)."""
    if len(calls) == 1:
        return [calls[0]()]
    tallies = [_Tally()] * len(calls)

    def run(n: int) -> None:
        tallies[n] = calls[n]()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return tallies


def _measurement(
    subject: str, batch: int, tallies: Sequence[_Tally], seconds: float, cpu: dict[str, float]
) -> Measurement:
    latencies = [lat for tally in tallies for lat in tally.latencies]
    frames_done = len(latencies) * batch
    return Measurement(
        target="in-process",
        subject=subject,
        batch=batch,
        concurrency=len(tallies),
        requests=len(latencies),
        frames=frames_done,
        seconds=round(seconds, 3),
        frames_per_s=round(frames_done / seconds, 2),
        latency_ms=latency_summary(latencies),
        frame_errors=sum(tally.errors for tally in tallies),
        objects=sum(tally.objects for tally in tallies),
        cpu=cpu,
    )


def measure_pipeline(
    pipelines: InProcessPipelines | Sequence[InProcessPipelines],
    kind: str,
    jpegs: Sequence[bytes],
    batch: int,
    duration_s: float = 10.0,
    warmup: int = 3,
    min_requests: int = 5,
    monitor: CpuMonitor | None = None,
) -> Measurement:
    """Closed loop: batches of `batch` JPEGs through FramePipeline.process, after `warmup`
    unmeasured batches; runs until both `duration_s` and `min_requests` are reached.

    Given several InProcessPipelines, each is one caller on its own thread with its own ONNX
    Runtime sessions, as Triton runs one per model instance (ONNX Runtime and OpenCV release the
    GIL while they compute)."""
    callers = [pipelines] if isinstance(pipelines, InProcessPipelines) else list(pipelines)
    for i in range(warmup):
        for caller in callers:
            caller.process(kind, cycle_batch(jpegs, i, batch))
    monitor = monitor or CpuMonitor()
    monitor.start()
    window = _Window(time.perf_counter(), duration_s, min_requests)
    calls = [
        # Callers start at different frames.
        partial(_pipeline_caller, caller, kind, jpegs, batch, warmup + n * 7919, window)
        for n, caller in enumerate(callers)
    ]
    tallies = _on_threads(calls)
    seconds = time.perf_counter() - window.started
    return _measurement(f"pipeline {kind}", batch, tallies, seconds, monitor.stop())


def instance_count(kind: str, repository: Path = MODEL_REPOSITORY, config_name: str = "cpu") -> int:
    """Instances of `pipeline_<kind>` in its config: the callers an in-process run mirrors."""
    config = load_config(repository / PIPELINES[kind].triton_model, config_name)
    return sum(group.count for group in config.instance_group) or 1


def measure_model(
    model: OrtModel,
    tensors: Sequence[np.ndarray],
    batch: int,
    duration_s: float = 10.0,
    warmup: int = 3,
    min_requests: int = 5,
    monitor: CpuMonitor | None = None,
) -> Measurement:
    """Raw model throughput on preprocessed tensors (no decode, no letterbox, no NMS)."""
    n = len(tensors)
    batches = [
        np.ascontiguousarray(np.stack([tensors[(i * batch + k) % n] for k in range(batch)]))
        for i in range(max(1, n // batch))
    ]
    for i in range(warmup):
        model(batches[i % len(batches)])
    tally = _Tally()
    monitor = monitor or CpuMonitor()
    monitor.start()
    window = _Window(time.perf_counter(), duration_s, min_requests)
    while window.more(len(tally.latencies)):
        data = batches[len(tally.latencies) % len(batches)]
        t0 = time.perf_counter()
        model(data)
        tally.latencies.append(time.perf_counter() - t0)
    seconds = time.perf_counter() - window.started
    subject = f"model {model.name} (ORT only)"
    return _measurement(subject, batch, [tally], seconds, monitor.stop())


def yolo_tensors(jpegs: Sequence[bytes], repository: Path = MODEL_REPOSITORY) -> list[np.ndarray]:
    """Letterboxed CHW float32 inputs at the detector's own input size."""
    info = pipeline_settings("yolo", repository).detector
    assert info is not None
    return [letterbox(decode_jpeg(j), info.imgsz)[0] for j in jpegs]


def measure_raw_yolo(
    pipelines: InProcessPipelines,
    jpegs: Sequence[bytes],
    batches: Sequence[int],
    duration_s: float = 10.0,
    warmup: int = 3,
    min_requests: int = 5,
    monitor: CpuMonitor | None = None,
    progress: Callable[[Measurement], object] | None = None,
) -> list[Measurement]:
    """The raw `yolo` model, the session the pipelines share, at each batch size."""
    model = pipelines.runner.model("yolo")
    tensors = yolo_tensors(jpegs, pipelines.repository)
    out = []
    for batch in batches:
        m = measure_model(model, tensors, batch, duration_s, warmup, min_requests, monitor)
        out.append(m)
        if progress:
            progress(m)
    return out


@dataclass
class InProcessReport:
    measurements: list[Measurement]
    yolo_imgsz: tuple[int, int]
    intra_op_threads: dict[str, int]

    def as_dict(self) -> dict:
        return {
            "yolo_imgsz": list(self.yolo_imgsz),
            "intra_op_threads": self.intra_op_threads,
            "measurements": [m.as_dict() for m in self.measurements],
        }


def run_inprocess(
    jpegs: Sequence[bytes],
    kinds: Sequence[str] = ("yolo", "yolo_ocr", "ocr"),
    batches: Sequence[int] = (1, 8),
    duration_s: float = 10.0,
    warmup: int = 3,
    min_requests: int = 5,
    raw_yolo: bool = True,
    repository: Path = MODEL_REPOSITORY,
    config_name: str = "cpu",
    progress: Callable[[Measurement], object] | None = None,
    monitor: CpuMonitor | None = None,
) -> InProcessReport:
    """Every pipeline kind at every batch size, then the raw `yolo` model, on the same JPEGs."""
    for kind in kinds:
        if kind not in PIPELINE_KINDS:
            raise ValueError(f"unknown pipeline {kind!r}; expected one of {PIPELINE_KINDS}")
    pipelines = InProcessPipelines(repository, config_name)
    results: list[Measurement] = []
    for kind in kinds:
        for batch in batches:
            m = measure_pipeline(
                pipelines, kind, jpegs, batch, duration_s, warmup, min_requests, monitor
            )
            results.append(m)
            if progress:
                progress(m)
    settings = pipeline_settings("yolo", repository, config_name)
    assert settings.detector is not None
    if raw_yolo:
        results += measure_raw_yolo(
            pipelines, jpegs, batches, duration_s, warmup, min_requests, monitor, progress
        )
    return InProcessReport(
        measurements=results,
        yolo_imgsz=settings.detector.imgsz,
        intra_op_threads={n: m.intra_op_threads for n, m in pipelines.runner.models.items()},
    )
