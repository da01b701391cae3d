"""CPU stand-in for Triton's onnxruntime backend: the embedded Triton from the nvidia-pytriton
wheel carries only the Python backend, so `configs/cpu.pbtxt` runs the same model.onnx through
ONNX Runtime here. One ONNX Runtime call per execute() for all requests of the same shape."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from api import heap
from api.triton_backend.loaded_config import checked_spec

if TYPE_CHECKING:
    import onnxruntime as ort  # for annotations; the functions import it when they run


def session_options(params: dict[str, str]) -> ort.SessionOptions:
    """ONNX Runtime session options from a model's config parameters.

    intra_op_threads  threads per run (0 = ONNX Runtime's default, all cores)
    allow_spinning    "1" lets idle intra-op threads busy-wait for the next run. Off by default:
                      on a small CPU deployment several stub processes share the cores, and a
                      spinning thread burns the core another model's run (or the JPEG decode)
                      needs; measured on 2 cores, spinning cost about a third of the throughput.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = int(params.get("intra_op_threads", "0"))
    options.inter_op_num_threads = 1
    spinning = params.get("allow_spinning", "0")
    options.add_session_config_entry("session.intra_op.allow_spinning", spinning)
    options.add_session_config_entry("session.inter_op.allow_spinning", spinning)
    return options


class OnnxModel:
    def initialize(self, args: dict[str, Any]) -> None:
        import onnxruntime as ort
        import triton_python_backend_utils as pb_utils

        self._pb = pb_utils
        config = json.loads(args["model_config"])
        checked_spec(config)  # the interface the pipelines' BLS calls rely on
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        path = (
            Path(args["model_repository"])
            / args["model_version"]
            / params.get("onnx_file", "model.onnx")
        )
        self._session = ort.InferenceSession(
            str(path), session_options(params), providers=["CPUExecutionProvider"]
        )
        self._inputs = [i["name"] for i in config["input"]]
        self._outputs = [o["name"] for o in config["output"]]
        onnx_inputs = {i.name for i in self._session.get_inputs()}
        onnx_outputs = {o.name for o in self._session.get_outputs()}
        if set(self._inputs) - onnx_inputs or set(self._outputs) - onnx_outputs:
            raise ValueError(
                f"config tensors {self._inputs}->{self._outputs} do not match {path.name}: "
                f"{sorted(onnx_inputs)}->{sorted(onnx_outputs)}"
            )
        # A static batch-1 export still works (one call per frame) rather than failing to load.
        batch_dim = self._session.get_inputs()[0].shape[0]
        self._static_batch = batch_dim if isinstance(batch_dim, int) else None
        heap.settle()  # the stub lives as long as the model: no collection walks its startup

    def execute(self, requests: list) -> list:
        pb = self._pb
        arrays = [
            {name: pb.get_input_tensor_by_name(r, name).as_numpy() for name in self._inputs}
            for r in requests
        ]
        # Requests whose tensors share a shape (all but the batch axis) go through one call.
        groups: dict[tuple, list[int]] = defaultdict(list)
        for i, feeds in enumerate(arrays):
            groups[tuple(feeds[n].shape[1:] for n in self._inputs)].append(i)
        responses: list = [None] * len(requests)
        for members in groups.values():
            try:
                outputs = self._run(
                    {n: _joined([arrays[i][n] for i in members]) for n in self._inputs}
                )
            except Exception as exc:  # one bad shape group must not fail the others
                for i in members:
                    responses[i] = pb.InferenceResponse(
                        error=pb.TritonError(f"inference failed: {exc}")
                    )
                continue
            start = 0
            for i in members:
                n = arrays[i][self._inputs[0]].shape[0]
                tensors = [
                    pb.Tensor(name, out[start : start + n])
                    for name, out in zip(self._outputs, outputs, strict=True)
                ]
                responses[i] = pb.InferenceResponse(output_tensors=tensors)
                start += n
        return responses

    def _run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        if self._static_batch in (None, next(iter(feeds.values())).shape[0]):
            return self._session.run(self._outputs, feeds)
        parts = [
            self._session.run(self._outputs, {n: v[i : i + 1] for n, v in feeds.items()})
            for i in range(next(iter(feeds.values())).shape[0])
        ]
        return [np.concatenate([p[k] for p in parts]) for k in range(len(self._outputs))]

    def finalize(self) -> None:
        self._session = None


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    # A lone request (the usual case under a latency budget) is fed as is: concatenating one
    # array would copy a 4.9 MB image tensor per frame for nothing.
    return parts[0] if len(parts) == 1 else np.concatenate(parts)
