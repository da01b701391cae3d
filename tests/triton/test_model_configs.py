"""config.pbtxt (GPU) and configs/cpu.pbtxt (CPU) must describe the same model interface."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

REPO = Path(__file__).resolve().parents[2] / "triton_models"
MODELS = sorted(p.name for p in REPO.iterdir() if (p / "config.pbtxt").exists())
ONNX_MODELS = ["yolo", "ocr_det", "ocr_rec"]
PIPELINES = ["pipeline_yolo", "pipeline_ocr", "pipeline_yolo_ocr"]


def load(path: Path) -> model_config_pb2.ModelConfig:
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


def interface(config: model_config_pb2.ModelConfig) -> tuple:
    def tensors(items):  # name, dtype, dims
        return sorted((t.name, t.data_type, tuple(t.dims)) for t in items)

    return config.name, config.max_batch_size, tensors(config.input), tensors(config.output)


def test_repository_has_every_model() -> None:
    assert set(MODELS) == set(ONNX_MODELS + PIPELINES)


@pytest.mark.parametrize("model", MODELS)
def test_gpu_and_cpu_configs_agree(model: str) -> None:
    gpu = load(REPO / model / "config.pbtxt")
    cpu = load(REPO / model / "configs" / "cpu.pbtxt")
    assert interface(gpu) == interface(cpu)
    assert gpu.max_batch_size >= 8
    assert gpu.HasField("dynamic_batching") and cpu.HasField("dynamic_batching")


@pytest.mark.parametrize("model", ONNX_MODELS)
def test_onnx_models_use_gpu_and_tensorrt_on_gpu(model: str) -> None:
    gpu = load(REPO / model / "config.pbtxt")
    assert gpu.platform == "onnxruntime_onnx"
    assert [g.kind for g in gpu.instance_group] == [model_config_pb2.ModelInstanceGroup.KIND_GPU]
    accelerators = gpu.optimization.execution_accelerators.gpu_execution_accelerator
    assert [a.name for a in accelerators] == ["tensorrt"]
    assert (REPO / model / "1" / "model.onnx").exists()


@pytest.mark.parametrize("model", MODELS)
def test_cpu_configs_run_on_cpu_in_python_backend(model: str) -> None:
    cpu = load(REPO / model / "configs" / "cpu.pbtxt")
    assert cpu.backend == "python"
    assert all(g.kind == model_config_pb2.ModelInstanceGroup.KIND_CPU for g in cpu.instance_group)


@pytest.mark.parametrize("model", PIPELINES)
def test_pipelines_take_jpeg_bytes_and_return_json(model: str) -> None:
    config = load(REPO / model / "config.pbtxt")
    assert [(t.name, t.data_type) for t in config.input] == [
        ("frames", model_config_pb2.TYPE_STRING)
    ]
    assert [(t.name, t.data_type) for t in config.output] == [
        ("results", model_config_pb2.TYPE_STRING)
    ]


@pytest.mark.parametrize("model", PIPELINES)
def test_pipeline_batch_fits_its_sub_models(model: str) -> None:
    """The BLS stage never needs to split a batch of the pipeline's size for the detector."""
    pipeline = load(REPO / model / "config.pbtxt")
    assert load(REPO / "yolo" / "config.pbtxt").max_batch_size >= pipeline.max_batch_size
