"""Async Triton client for the pipeline models (gRPC, tritonclient.grpc.aio)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

import numpy as np
import tritonclient.grpc.aio as grpcclient
from tritonclient.utils import InferenceServerException

from api.inference.errors import InferenceUnavailable, PipelineFailure
from api.pipelines_spec import FRAMES, RESULTS

# gRPC's default reconnect backoff grows to 120 s: a Triton that comes back would wait that long
# for traffic. Capped at 1 s, the first result after a restart arrives within 2 s.
RECONNECT = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]
INPUT = FRAMES.name  # every pipeline model's tensors (api/pipelines_spec.py)
OUTPUT = RESULTS.name


__all__ = ["TritonClient"]  # its errors live in api.inference.errors


class TritonClient:
    def __init__(self, url: str, timeout_s: float = 30.0) -> None:
        self.url = url
        self.timeout_s = timeout_s
        # With a headless Service (dns:///triton-headless:8001) the resolver returns every Triton
        # pod; round_robin spreads requests over them instead of pinning the first.
        self._client = grpcclient.InferenceServerClient(
            url=url, channel_args=[("grpc.lb_policy_name", "round_robin"), *RECONNECT]
        )
        self.last_latency_s = 0.0

    async def close(self) -> None:
        await self._client.close()

    async def is_ready(self) -> bool:
        try:
            return bool(await self._client.is_server_ready(client_timeout=2.0))
        except InferenceServerException:
            return False

    async def models_ready(self, models: Sequence[str]) -> dict[str, bool]:
        status: dict[str, bool] = {}
        for model in models:
            try:
                status[model] = bool(await self._client.is_model_ready(model, client_timeout=2.0))
            except InferenceServerException:
                status[model] = False
        return status

    async def infer_frames(self, model: str, frames: Sequence[bytes]) -> list[dict]:
        """One request carrying all frames as a batch; one parsed JSON result per frame."""
        batch = np.array([[f] for f in frames], dtype=np.object_)
        tensor = grpcclient.InferInput(INPUT, list(batch.shape), "BYTES")
        tensor.set_data_from_numpy(batch)
        started = time.perf_counter()
        try:
            response = await self._client.infer(
                model,
                [tensor],
                outputs=[grpcclient.InferRequestedOutput(OUTPUT)],
                client_timeout=self.timeout_s,
            )
        except InferenceServerException as exc:
            raise _classify(exc) from exc
        finally:
            self.last_latency_s = time.perf_counter() - started
        raw = response.as_numpy(OUTPUT).reshape(-1)
        if len(raw) != len(frames):
            raise PipelineFailure(f"{model} returned {len(raw)} results for {len(frames)} frames")
        return [json.loads(r) for r in raw]

    async def statistics(self, model: str) -> dict:
        stats = await self._client.get_inference_statistics(model, as_json=True)
        return stats["model_stats"][0]


def _classify(exc: InferenceServerException) -> Exception:
    status = (exc.status() or "").upper()
    message = exc.message() or str(exc)
    if (
        "UNAVAILABLE" in status
        or "DEADLINE" in status
        or "not ready" in message
        or "unknown model" in message.lower()
    ):
        return InferenceUnavailable(message)
    return PipelineFailure(message)
