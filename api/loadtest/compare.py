"""In-process ONNX Runtime against Triton direct, interleaved: for each pipeline and batch size
the in-process row is measured right before its Triton rows, so slow drift of a shared machine
(other jobs, thermal or frequency changes) hits both sides alike."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from api.loadtest import event_loop
from api.loadtest.cpu import CpuMonitor
from api.loadtest.inprocess import (
    InProcessPipelines,
    measure_pipeline,
    measure_raw_yolo,
    pipeline_settings,
)
from api.loadtest.measure import Measurement, local_grpc_port, machine_facts
from api.loadtest.triton_direct import measure_concurrencies, server_version


@dataclass
class Comparison:
    facts: dict[str, str]
    inprocess: list[Measurement] = field(default_factory=list)
    triton: list[Measurement] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "machine": self.facts,
            "inprocess": [m.as_dict() for m in self.inprocess],
            "triton": [m.as_dict() for m in self.triton],
        }


def run_compare(
    url: str,
    jpegs: Sequence[bytes],
    kinds: Sequence[str] = ("yolo", "yolo_ocr", "ocr"),
    batches: Sequence[int] = (1, 8),
    concurrencies: Sequence[int] = (1, 2, 4),
    duration_s: float = 10.0,
    warmup: int = 3,
    min_requests: int = 5,
    raw_yolo: bool = True,
    progress: Callable[[Measurement], None] | None = None,
) -> Comparison:
    monitor = CpuMonitor(local_grpc_port(url))
    result = Comparison(_facts(url, jpegs))
    pipelines = InProcessPipelines()
    for kind in kinds:
        for batch in batches:
            m = measure_pipeline(
                pipelines, kind, jpegs, batch, duration_s, warmup, min_requests, monitor
            )
            result.inprocess.append(m)
            if progress:
                progress(m)
            result.triton += event_loop.run(
                measure_concurrencies(
                    url,
                    kind,
                    jpegs,
                    batch,
                    concurrencies,
                    duration_s,
                    min_requests,
                    progress,
                    monitor,
                )
            )
    if raw_yolo:
        result.inprocess += measure_raw_yolo(
            pipelines, jpegs, batches, duration_s, warmup, min_requests, monitor, progress
        )
    result.facts["ort_intra_op_threads"] = str(
        {n: m.intra_op_threads for n, m in pipelines.runner.models.items()}
    )
    return result


def _facts(url: str, jpegs: Sequence[bytes]) -> dict[str, str]:
    """The machine, the server and the inputs both sides were measured on."""
    facts = machine_facts()
    facts["tritonserver"] = asyncio.run(server_version(url))
    detector = pipeline_settings("yolo").detector
    assert detector is not None
    facts["yolo_input"] = f"{detector.imgsz[0]}x{detector.imgsz[1]}"
    facts["frames"] = f"{len(jpegs)} JPEGs, {sum(map(len, jpegs)) // len(jpegs)} bytes average"
    return facts
