"""perf_analyzer input data: the JSON holds the exact JPEGs, in the b64 form perf_analyzer 2.41
puts on the wire verbatim (Triton's serialized BYTES tensor: uint32 LE length + bytes)."""

from __future__ import annotations

import json

import grpc
import numpy as np
import pytest
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import deserialize_bytes_tensor

from api.cli.perf_cmd import perf_input
from api.loadtest.perf_input import decode_perf_input, decode_step, sample_jpegs


def test_perf_input_json_decodes_back_to_the_exact_jpegs(tmp_path) -> None:
    out = tmp_path / "perf_input.json"
    perf_input(out, seed=1000, frames=3)
    document = json.loads(out.read_text())
    expected = sample_jpegs(1000, 3)
    assert len(document["data"]) == 3
    assert decode_perf_input(document) == expected
    for step, jpeg in zip(document["data"], expected, strict=True):
        assert set(step) == {"frames"}
        assert step["frames"]["shape"] == [1]
        # tritonclient's own deserializer (what the server does) reads one element: the JPEG.
        elements = deserialize_bytes_tensor(decode_step(step))
        assert elements.shape == (1,)
        assert elements[0] == jpeg
        assert jpeg.startswith(b"\xff\xd8") and jpeg.endswith(b"\xff\xd9")


def test_a_step_with_a_wrong_length_prefix_is_rejected() -> None:
    document = {"data": [{"frames": {"content": {"b64": "/9j/2Q=="}, "shape": [1]}}]}  # raw
    with pytest.raises(ValueError, match="length prefix"):
        decode_perf_input(document)


def _infer_raw(url: str, model: str, payload: bytes, count: int):
    """One gRPC ModelInfer with `payload` as raw_input_contents: exactly what perf_analyzer
    sends for a b64 input (the decoded steps of a batch, concatenated)."""
    request = service_pb2.ModelInferRequest(
        model_name=model,
        inputs=[
            service_pb2.ModelInferRequest.InferInputTensor(
                name="frames", datatype="BYTES", shape=[count, 1]
            )
        ],
        outputs=[service_pb2.ModelInferRequest.InferRequestedOutputTensor(name="results")],
        raw_input_contents=[payload],
    )
    with grpc.insecure_channel(url) as channel:
        return service_pb2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=120)


@pytest.mark.triton
def test_perf_input_wire_bytes_reach_the_pipeline_as_real_jpegs(triton, tmp_path) -> None:
    out = tmp_path / "perf_input.json"
    perf_input(out, seed=1000, frames=2)
    steps = json.loads(out.read_text())["data"]
    response = _infer_raw(
        triton.grpc_url, "pipeline_yolo", b"".join(decode_step(s) for s in steps), 2
    )
    results = [json.loads(r) for r in deserialize_bytes_tensor(response.raw_output_contents[0])]
    assert len(results) == 2
    assert all("error" not in r for r in results), results
    assert all(r["detections"] for r in results)  # every synthetic scene has 1-3 plates


@pytest.mark.triton
def test_raw_jpeg_bytes_without_the_length_prefix_are_rejected_by_triton(triton) -> None:
    jpeg = sample_jpegs(1000, 1)[0]
    with pytest.raises(grpc.RpcError) as failure:
        _infer_raw(triton.grpc_url, "pipeline_yolo", jpeg, 1)
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "string" in failure.value.details()


def test_sample_jpegs_are_deterministic() -> None:
    first, second = sample_jpegs(1234, 2), sample_jpegs(1234, 2)
    assert first == second
    assert np.frombuffer(first[0][:2], np.uint8).tolist() == [0xFF, 0xD8]
