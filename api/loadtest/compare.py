"""In-process ONNX Runtime against Triton direct, interleaved: for each pipeline and batch size
the in-process row is measured right before its Triton rows, so slow drift of a shared machine
(other jobs, thermal or frequency changes) hits both sides alike."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from api.loadtest.cpu import CpuMonitor
from api.loadtest.inprocess import (
    InProcessPipelines,
    measure_model,
    measure_pipeline,
    pipeline_settings,
    yolo_tensors,
)
from api.loadtest.measure import Measurement, local_grpc_port, machine_facts
from api.loadtest.triton_direct import measure_triton, server_version


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
    facts = machine_facts()
    facts["tritonserver"] = asyncio.run(server_version(url))
    detector = pipeline_settings("yolo").detector
    assert detector is not None
    facts["yolo_input"] = f"{detector.imgsz[0]}x{detector.imgsz[1]}"
    facts["frames"] = f"{len(jpegs)} JPEGs, {sum(map(len, jpegs)) // len(jpegs)} bytes average"
    result = Comparison(facts)
    pipelines = InProcessPipelines()

    def record(rows: list[Measurement], m: Measurement) -> None:
        rows.append(m)
        if progress:
            progress(m)

    for kind in kinds:
        for batch in batches:
            record(
                result.inprocess,
                measure_pipeline(
                    pipelines, kind, jpegs, batch, duration_s, warmup, min_requests, monitor
                ),
            )
            for concurrency in concurrencies:
                m = asyncio.run(
                    measure_triton(
                        url,
                        f"pipeline_{kind}",
                        jpegs,
                        batch,
                        concurrency,
                        duration_s=duration_s,
                        min_requests=min_requests,
                        monitor=monitor,
                    )
                )
                record(result.triton, m)
    if raw_yolo:
        model = pipelines.runner.model("yolo")
        tensors = yolo_tensors(jpegs)
        for batch in batches:
            record(
                result.inprocess,
                measure_model(model, tensors, batch, duration_s, warmup, min_requests, monitor),
            )
    facts["ort_intra_op_threads"] = str(
        {n: m.intra_op_threads for n, m in pipelines.runner.models.items()}
    )
    return result
