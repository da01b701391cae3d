"""Every Triton config agrees with the pipeline definitions (api/pipelines_spec.py), and the code
that serves the pipelines calls exactly the stages defined. No tritonserver needed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from google.protobuf import json_format

from api.inference.pipelines import PIPELINES as REGISTRY
from api.inference.pipelines import get_pipeline
from api.model_configs import (
    checked_config,
    config_files,
    declared_interface,
    load_config,
    repository_problems,
    selected_config_path,
)
from api.pipelines_spec import MODELS, PIPELINES, STAGE_MODELS, pipeline_served_by
from api.synthetic.scene import encode_jpeg, make_frames
from api.triton_backend.loaded_config import checked_spec
from api.triton_backend.pipeline_model import METADATA_PARAMETERS, settings_from_parameters
from api.triton_backend.stage_runner import (
    BLS,
    INLINE,
    ONNX_PARAMETERS,
    InlineStages,
    inline_stages,
    stage_mode,
)
from api.vision.pipeline import FramePipeline

REPO = Path(__file__).resolve().parents[2] / "triton_models"
ALL_CONFIGS = sorted(
    p for m in REPO.iterdir() if (m / "config.pbtxt").is_file() for p in config_files(m)
)


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """The repository's configs (no ONNX files) to mutate."""
    copy = tmp_path / "triton_models"
    shutil.copytree(REPO, copy, ignore=shutil.ignore_patterns("*.onnx", "__pycache__"))
    return copy


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"  # the mutation must really change the config
    path.write_text(text.replace(old, new, 1))


def test_repository_matches_the_definitions() -> None:
    assert repository_problems(REPO) == []


def test_every_model_has_a_gpu_and_a_cpu_config() -> None:
    found = [str(p.relative_to(REPO)) for p in ALL_CONFIGS]
    assert found == sorted(
        f"{m}/{f}" for m in MODELS for f in ("config.pbtxt", "configs/cpu.pbtxt")
    )


@pytest.mark.parametrize("path", ALL_CONFIGS, ids=lambda p: str(p.relative_to(REPO)))
def test_config_declares_its_definition(path: Path) -> None:
    """Name, tensor names, data types, dims and max_batch_size, file by file (the GPU and CPU
    configs therefore also agree with each other)."""
    declared = declared_interface(load_config(path))
    assert declared.name == path.relative_to(REPO).parts[0]
    assert declared == MODELS[declared.name]


@pytest.mark.parametrize(
    ("file", "old", "new", "expected"),
    [
        ("yolo/config.pbtxt", '"images"', '"input"', "yolo: inputs is"),
        ("ocr_rec/configs/cpu.pbtxt", "[ 3, 48, -1 ]", "[ 3, 32, -1 ]", "ocr_rec: inputs is"),
        (
            "ocr_det/config.pbtxt",
            '.tmp_0", data_type: TYPE_FP32',
            '.tmp_0", data_type: TYPE_FP16',
            "ocr_det: outputs is",
        ),
        ("pipeline_ocr/config.pbtxt", '"results"', '"result"', "pipeline_ocr: outputs is"),
        (
            "pipeline_yolo/configs/cpu.pbtxt",
            "max_batch_size: 16",
            "max_batch_size: 8",
            "pipeline_yolo: max_batch_size is 8",
        ),
        ("ocr_det/configs/cpu.pbtxt", 'name: "ocr_det"', 'name: "ocr_dt"', "ocr_det: name is"),
    ],
)
def test_checker_reports_a_drifted_config(repo_copy, file, old, new, expected) -> None:
    edit(repo_copy / file, old, new)
    problems = repository_problems(repo_copy)
    assert len(problems) == 1 and problems[0].startswith(f"{file}: {expected}"), problems


def test_checker_reports_a_missing_stage_model(repo_copy) -> None:
    shutil.rmtree(repo_copy / "ocr_rec")
    problems = repository_problems(repo_copy)
    assert "ocr_rec: defined but has no ocr_rec/config.pbtxt" in problems
    assert "pipeline ocr: needs model ocr_rec, which is not in the repository" in problems
    assert "pipeline yolo_ocr: needs model ocr_rec, which is not in the repository" in problems


def test_checker_reports_an_undefined_model(repo_copy) -> None:
    shutil.copytree(repo_copy / "yolo", repo_copy / "yolo2")
    problems = repository_problems(repo_copy)
    assert "yolo2: a model in the repository but not defined" in problems


def test_selected_config_follows_model_config_name(repo_copy) -> None:
    model = repo_copy / "yolo"
    assert selected_config_path(model, "cpu") == model / "configs" / "cpu.pbtxt"
    assert selected_config_path(model, "") == model / "config.pbtxt"
    assert selected_config_path(model, "a100") == model / "config.pbtxt"  # Triton falls back
    edit(model / "configs" / "cpu.pbtxt", "max_batch_size: 16", "max_batch_size: 32")
    assert checked_config(model, "").max_batch_size == 16
    with pytest.raises(ValueError, match="yolo: max_batch_size is 32, the definition says 16"):
        checked_config(model, "cpu")


def as_triton_json(path: Path) -> dict:
    """A config as Triton hands it to a Python model (`args["model_config"]`)."""
    message = json_format.MessageToDict(load_config(path), preserving_proto_field_name=True)
    return json.loads(json.dumps(message))


@pytest.mark.parametrize("path", ALL_CONFIGS, ids=lambda p: str(p.relative_to(REPO)))
def test_loaded_config_check_accepts_every_config(path: Path) -> None:
    assert checked_spec(as_triton_json(path)) == MODELS[path.relative_to(REPO).parts[0]]


def test_loaded_config_check_refuses_drift() -> None:
    config = as_triton_json(REPO / "pipeline_yolo_ocr" / "configs" / "cpu.pbtxt")
    config["input"][0]["dims"] = ["-1"]
    with pytest.raises(ValueError, match="pipeline_yolo_ocr: inputs is"):
        checked_spec(config)
    config["name"] = "pipeline_other"
    with pytest.raises(ValueError, match="'pipeline_other' is not defined"):
        checked_spec(config)


def test_pipelines_fit_their_stages_batch_limits() -> None:
    """The detector takes a whole request's frames in one BLS call."""
    for pipeline in PIPELINES.values():
        if pipeline.calls("yolo"):
            assert pipeline.max_batch_size <= STAGE_MODELS["yolo"].max_batch_size, pipeline.id


def test_gateway_registry_is_the_definitions() -> None:
    assert REGISTRY is PIPELINES
    assert get_pipeline("yolo_ocr") is PIPELINES["yolo_ocr"] and get_pipeline("nope") is None
    assert PIPELINES["yolo_ocr"].describe() == {
        "id": "yolo_ocr",
        "description": PIPELINES["yolo_ocr"].description,
        "produces": ["detections"],
        "triton_model": "pipeline_yolo_ocr",
        "models": ["pipeline_yolo_ocr", "yolo", "ocr_rec"],
    }
    assert pipeline_served_by("pipeline_ocr") is PIPELINES["ocr"]
    with pytest.raises(ValueError, match="no pipeline is served by model 'yolo'"):
        pipeline_served_by("yolo")


@pytest.mark.parametrize("pipeline_id", list(PIPELINES))
def test_metadata_parameters_name_a_stage_models_onnx(pipeline_id: str) -> None:
    """The ONNX files whose metadata the pipeline reads (paths relative to its model directory)
    belong to the stages it calls."""
    pipeline = PIPELINES[pipeline_id]
    model_dir = REPO / pipeline.triton_model
    for path in config_files(model_dir):
        params = {k: v.string_value for k, v in load_config(path).parameters.items()}
        for stage, parameter in METADATA_PARAMETERS.items():
            if not pipeline.calls(stage):
                assert parameter not in params, f"{path}: {parameter} names an unused model"
                continue
            onnx = (model_dir / params[parameter]).resolve()
            assert onnx.is_file() and onnx.is_relative_to(REPO / stage), f"{path}: {onnx}"


def _params(path: Path) -> dict[str, str]:
    return {k: v.string_value for k, v in load_config(path).parameters.items()}


@pytest.mark.parametrize("pipeline_id", list(PIPELINES))
def test_inline_stages_are_the_stage_models_own(pipeline_id: str) -> None:
    """The CPU config runs the stages inline, on the very ONNX file and session options each
    stage model's CPU config serves; the GPU config keeps them as BLS calls to Triton models."""
    pipeline = PIPELINES[pipeline_id]
    model_dir = REPO / pipeline.triton_model
    cpu, gpu = _params(model_dir / "configs" / "cpu.pbtxt"), _params(model_dir / "config.pbtxt")
    assert stage_mode(cpu) == INLINE and stage_mode(gpu) == BLS
    for stage in pipeline.stage_names:
        stage_dir = REPO / stage
        stage_params = _params(stage_dir / "configs" / "cpu.pbtxt")
        versions = [p for p in stage_dir.iterdir() if p.is_dir() and p.name.isdigit()]
        served = max(versions, key=lambda p: int(p.name)) / stage_params["onnx_file"]
        assert (model_dir / cpu[ONNX_PARAMETERS[stage]]).resolve() == served.resolve()
        for option in ("intra_op_threads", "allow_spinning"):
            assert cpu[option] == stage_params[option], f"{pipeline.triton_model}: {option}"


def test_stage_mode_refuses_an_unknown_value() -> None:
    assert stage_mode({}) == BLS
    with pytest.raises(ValueError, match="'stages' is 'inlined'; expected one of"):
        stage_mode({"stages": "inlined"})


def test_inline_stages_need_every_stage_onnx(tmp_path: Path) -> None:
    pipeline = PIPELINES["yolo_ocr"]
    model_dir = REPO / pipeline.triton_model
    params = _params(model_dir / "configs" / "cpu.pbtxt")
    missing = {k: v for k, v in params.items() if k != "rec_onnx"}
    with pytest.raises(ValueError, match="'rec_onnx' \\(the ocr_rec ONNX file\\) is missing"):
        inline_stages(pipeline, missing, model_dir)
    with pytest.raises(ValueError, match="is not a file"):
        inline_stages(pipeline, params, tmp_path)  # the relative paths lead nowhere from here


def test_inline_stages_give_the_stage_models_results() -> None:
    """The inline runner returns what the stage model's own session returns for one batch."""
    pipeline = PIPELINES["yolo"]
    model_dir = REPO / pipeline.triton_model
    runner = inline_stages(pipeline, _params(model_dir / "configs" / "cpu.pbtxt"), model_dir)
    assert isinstance(runner, InlineStages) and set(runner.sessions) == {"yolo"}
    assert runner.sessions["yolo"].intra_op_threads == 1
    batch = np.random.default_rng(0).random((2, 3, 320, 320), dtype=np.float32)
    own = ort.InferenceSession(
        str(REPO / "yolo" / "1" / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    expected = own.run(["output0"], {"images": batch})[0]
    got = runner("yolo", batch)
    # (numpy.testing is not used: importing it starts lscpu, a process the fast layer refuses)
    assert got.shape == expected.shape and np.allclose(got, expected, rtol=1e-4, atol=1e-4)


class RecordingRunner:
    """A ModelRunner over the repository's ONNX files, fed with the definitions' tensor names;
    records which model each call went to."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self._sessions = {
            name: ort.InferenceSession(
                str(REPO / name / "1" / "model.onnx"), providers=["CPUExecutionProvider"]
            )
            for name in STAGE_MODELS
        }

    def __call__(self, model: str, batch: np.ndarray) -> np.ndarray:
        self.calls.append(model)
        spec = STAGE_MODELS[model]
        feeds = {spec.input.name: np.ascontiguousarray(batch, dtype=np.float32)}
        return self._sessions[model].run([spec.output.name], feeds)[0]


@pytest.fixture(scope="module")
def runner() -> RecordingRunner:
    return RecordingRunner()


@pytest.mark.parametrize("pipeline_id", list(PIPELINES))
def test_pipeline_calls_exactly_its_stages_in_order(runner, pipeline_id: str) -> None:
    pipeline = PIPELINES[pipeline_id]
    model_dir = REPO / pipeline.triton_model
    params = {k: v.string_value for k, v in checked_config(model_dir, "cpu").parameters.items()}
    settings = settings_from_parameters(pipeline, params, model_dir)
    frames = [encode_jpeg(f.image) for f in make_frames(7300, 2)]
    runner.calls.clear()
    results = FramePipeline(settings, runner).process(frames)
    assert runner.calls == list(pipeline.stage_names)
    assert all(set(r) == set(pipeline.produces) for r in results)
    detections = [d for r in results for d in r.get("detections", [])]
    assert all(("text" in d) == (d["label"] in pipeline.text_classes) for d in detections)
    if pipeline.text_classes:  # the synthetic plates are text-class detections, and get read
        assert any(d["label"] in pipeline.text_classes for d in detections)
