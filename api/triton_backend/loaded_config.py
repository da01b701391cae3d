"""The config Triton actually loaded for a model (`args["model_config"]`, JSON), checked against
the model's definition in api/pipelines_spec.py. A deployment whose config drifted fails to load,
loudly, instead of serving under other tensor names or batch limits than the gateway expects."""

from __future__ import annotations

from typing import Any

from api.pipelines_spec import MODELS, ModelSpec, TensorSpec


def declared_interface(config: dict[str, Any]) -> ModelSpec:
    def tensors(items: list[dict[str, Any]]) -> tuple[TensorSpec, ...]:
        # Triton writes int64 dims as JSON strings; int() reads both spellings.
        return tuple(
            TensorSpec(t["name"], t["data_type"], tuple(int(d) for d in t.get("dims", [])))
            for t in items
        )

    return ModelSpec(
        name=config["name"],
        inputs=tensors(config.get("input", [])),
        outputs=tensors(config.get("output", [])),
        max_batch_size=int(config.get("max_batch_size", 0)),
    )


def checked_spec(config: dict[str, Any]) -> ModelSpec:
    """The definition of the model `config` configures; ValueError if it has none or differs."""
    name = config.get("name", "")
    spec = MODELS.get(name)
    if spec is None:
        raise ValueError(f"model {name!r} is not defined in api/pipelines_spec.py")
    problems = spec.differences(declared_interface(config))
    if problems:
        raise ValueError("config does not match api/pipelines_spec.py: " + "; ".join(problems))
    return spec
