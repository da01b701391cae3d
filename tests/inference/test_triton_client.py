"""TritonClient's error classification, with tritonclient's own InferenceServerException objects
(built as tritonclient builds them from a gRPC error: status `str(grpc.StatusCode.X)`), and the
client against an address where nothing listens (no server, no process)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator

import grpc
import pytest
import pytest_asyncio
from tritonclient.utils import InferenceServerException

from api.core.config import MAX_TRITON_TIMEOUT_S
from api.inference.errors import InferenceUnavailable, PipelineFailure
from api.inference.triton_client import TritonClient, _classify


def server_error(code: grpc.StatusCode, message: str) -> InferenceServerException:
    """What tritonclient.grpc raises for a failed RPC (tritonclient.grpc._utils.get_error_grpc)."""
    return InferenceServerException(msg=message, status=str(code), debug_details="details")


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses"),
        (grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"),
        # Triton restarting: the model is not loaded (yet), not the frame's fault.
        (grpc.StatusCode.NOT_FOUND, "Request for unknown model: 'pipeline_yolo' is not found"),
        (grpc.StatusCode.UNAVAILABLE, "Request for Unknown Model: 'yolo'"),
        (grpc.StatusCode.INTERNAL, "model 'pipeline_yolo' is not ready"),
    ],
)
def test_unreachable_or_not_ready_triton_is_unavailable(
    code: grpc.StatusCode, message: str
) -> None:
    classified = _classify(server_error(code, message))
    assert type(classified) is InferenceUnavailable
    assert str(classified) == message


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (grpc.StatusCode.INTERNAL, "pipeline failed: model crashed"),
        (grpc.StatusCode.INVALID_ARGUMENT, "unexpected shape for input 'frames'"),
        (grpc.StatusCode.UNKNOWN, "unexpected error in the python backend"),
    ],
)
def test_an_error_triton_answered_with_is_a_pipeline_failure(
    code: grpc.StatusCode, message: str
) -> None:
    classified = _classify(server_error(code, message))
    assert type(classified) is PipelineFailure
    assert str(classified) == message


def test_an_exception_without_status_or_message_is_still_classified() -> None:
    classified = _classify(InferenceServerException(msg=None))
    assert type(classified) is PipelineFailure


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port bound but not listening: connections are refused, and nobody else can take it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest_asyncio.fixture(loop_scope="function")
async def unreachable(closed_port: int) -> AsyncIterator[TritonClient]:
    client = TritonClient(f"127.0.0.1:{closed_port}", timeout_s=10.0)
    try:
        yield client
    finally:
        await client.close()


async def test_nothing_listening_is_not_ready(unreachable: TritonClient) -> None:
    assert await unreachable.is_ready() is False
    assert await unreachable.models_ready(["pipeline_yolo", "yolo"]) == {
        "pipeline_yolo": False,
        "yolo": False,
    }


async def test_nothing_listening_makes_inference_unavailable(unreachable: TritonClient) -> None:
    with pytest.raises(InferenceUnavailable) as failed:
        await unreachable.infer_frames("pipeline_yolo", [b"\xff\xd8\xff\xd9"])
    cause = failed.value.__cause__
    assert isinstance(cause, InferenceServerException)  # the client's own error, kept as cause
    assert cause.status() == str(grpc.StatusCode.UNAVAILABLE)
    assert unreachable.last_latency_s != 0.0  # set by the failed call too (0.0 until a call)


@pytest.mark.parametrize(
    ("timeout_s", "status"),
    [
        # Within the bound the call gets as far as connecting (refused: UNAVAILABLE).
        (MAX_TRITON_TIMEOUT_S, grpc.StatusCode.UNAVAILABLE),
        # Far beyond it gRPC fails the call at once: why TRITON_TIMEOUT_S has an upper bound
        # (api/core/config.py). Should gRPC ever accept it, the bound may be relaxed.
        (1e10, grpc.StatusCode.DEADLINE_EXCEEDED),
    ],
)
async def test_a_deadline_too_far_ahead_fails_every_call(
    closed_port: int, timeout_s: float, status: grpc.StatusCode
) -> None:
    client = TritonClient(f"127.0.0.1:{closed_port}", timeout_s=timeout_s)
    try:
        with pytest.raises(InferenceUnavailable) as failed:
            await client.infer_frames("pipeline_yolo", [b"\xff\xd8\xff\xd9"])
    finally:
        await client.close()
    cause = failed.value.__cause__
    assert isinstance(cause, InferenceServerException)
    assert cause.status() == str(status)
