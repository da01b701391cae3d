"""Triton model configs read as Triton reads them (the ModelConfig protobuf in text format), and
checked against the definitions in api/pipelines_spec.py.

For the gateway side, the in-process baseline and the tests: tritonclient's `model_config_pb2` is
not part of Triton's own Python environment, so the models inside Triton check the config they
were handed instead (api/triton_backend/loaded_config.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from api.pipelines_spec import MODELS, PIPELINES, ModelSpec, Pipeline, TensorSpec


# tritonclient's generated model_config_pb2 has no type stubs: these Protocols are the parts of
# its ModelConfig message that api/ reads.
class TensorConfig(Protocol):
    name: str
    data_type: int
    dims: Sequence[int]


class ParameterConfig(Protocol):
    string_value: str


class InstanceGroupConfig(Protocol):
    count: int


class ModelConfig(Protocol):
    name: str
    max_batch_size: int
    input: Sequence[TensorConfig]
    output: Sequence[TensorConfig]
    parameters: Mapping[str, ParameterConfig]
    instance_group: Sequence[InstanceGroupConfig]


def load_config(path: Path) -> ModelConfig:
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


def selected_config_path(model_dir: Path, config_name: str = "") -> Path:
    """The file Triton loads under `--model-config-name=<config_name>`: configs/<name>.pbtxt when
    it exists, else config.pbtxt."""
    path = model_dir / "configs" / f"{config_name}.pbtxt"
    return path if config_name and path.exists() else model_dir / "config.pbtxt"


def config_files(model_dir: Path) -> list[Path]:
    """Every deployment's config of one model: config.pbtxt (GPU) and configs/*.pbtxt."""
    return [model_dir / "config.pbtxt", *sorted((model_dir / "configs").glob("*.pbtxt"))]


def declared_interface(config: ModelConfig) -> ModelSpec:
    def tensors(items: Iterable[TensorConfig]) -> tuple[TensorSpec, ...]:
        return tuple(
            TensorSpec(t.name, model_config_pb2.DataType.Name(t.data_type), tuple(t.dims))
            for t in items
        )

    return ModelSpec(
        name=config.name,
        inputs=tensors(config.input),
        outputs=tensors(config.output),
        max_batch_size=config.max_batch_size,
    )


def checked_config(model_dir: Path, config_name: str = "") -> ModelConfig:
    """The config Triton would load for `model_dir`; ValueError if it differs from the model's
    definition."""
    path = selected_config_path(model_dir, config_name)
    config = load_config(path)
    spec = MODELS.get(model_dir.name)
    if spec is None:
        raise ValueError(f"{model_dir.name}: not defined in api/pipelines_spec.py")
    problems = spec.differences(declared_interface(config))
    if problems:
        raise ValueError(f"{path}: " + "; ".join(problems))
    return config


def repository_problems(
    repository: Path,
    models: Mapping[str, ModelSpec] = MODELS,
    pipelines: Mapping[str, Pipeline] = PIPELINES,
) -> list[str]:
    """Everything in `repository` that disagrees with the definitions, one line each (empty when
    the repository and the definitions agree)."""
    present = {p.name for p in repository.iterdir() if (p / "config.pbtxt").is_file()}
    problems = [
        f"{n}: a model in the repository but not defined" for n in sorted(present - models.keys())
    ]
    problems += [
        f"{n}: defined but has no {n}/config.pbtxt" for n in sorted(models.keys() - present)
    ]
    for pipeline in pipelines.values():
        problems += [
            f"pipeline {pipeline.id}: needs model {name}, which is not in the repository"
            for name in pipeline.models
            if name not in present
        ]
    for name in sorted(present & models.keys()):
        for path in config_files(repository / name):
            declared = declared_interface(load_config(path))
            where = path.relative_to(repository)
            problems += [f"{where}: {p}" for p in models[name].differences(declared)]
    return problems
