"""The in-process ONNX Runtime baseline runs exactly what Triton runs, and the measurement helpers
produce complete records (no timing assertions: this machine's speed is not under test)."""

from __future__ import annotations

import asyncio

import pytest

from api.cli.perf_cmd import ratio_table
from api.inference.triton_client import TritonClient
from api.loadtest.compare import run_compare
from api.loadtest.inprocess import InProcessPipelines, pipeline_settings, run_inprocess
from api.loadtest.measure import CpuMonitor, local_grpc_port
from api.loadtest.perf_input import sample_jpegs
from api.loadtest.triton_direct import measure_triton

pytestmark = pytest.mark.triton


@pytest.fixture(scope="module")
def jpegs() -> list[bytes]:
    return sample_jpegs(7100, 3)


async def _triton_results(url: str, model: str, frames: list[bytes]) -> list[dict]:
    client = TritonClient(url, timeout_s=120)
    try:
        return await client.infer_frames(model, frames)
    finally:
        await client.close()


@pytest.mark.parametrize("kind", ["yolo", "yolo_ocr", "ocr"])
def test_inprocess_results_equal_the_served_pipeline(triton, jpegs, kind) -> None:
    frames = [*jpegs, b"not a jpeg"]
    local = InProcessPipelines().process(kind, frames)
    served = asyncio.run(_triton_results(triton.grpc_url, f"pipeline_{kind}", frames))
    assert local == served
    assert local[-1]["error"] == "not_jpeg"
    key = "texts" if kind == "ocr" else "detections"
    assert all(r[key] for r in local[:-1])  # real work: every scene has text/plates


def test_inprocess_settings_follow_the_pipeline_configs() -> None:
    settings = pipeline_settings("yolo_ocr")
    assert settings.kind == "yolo_ocr"
    assert "plate" in settings.text_classes
    assert settings.detector is not None and settings.decoder is not None
    assert settings.max_batch == {"yolo": 16, "ocr_det": 8, "ocr_rec": 64}
    with pytest.raises(ValueError):
        pipeline_settings("nope")


def test_measurement_helpers_produce_complete_records(triton, jpegs) -> None:
    report = run_inprocess(
        jpegs, kinds=("yolo",), batches=(2,), duration_s=0, warmup=1, min_requests=2
    )
    pipeline, model = report.measurements
    assert (pipeline.subject, pipeline.requests, pipeline.frames) == ("pipeline yolo", 2, 4)
    assert pipeline.frame_errors == 0 and pipeline.objects > 0
    assert model.subject.startswith("model yolo") and model.frames == 2 * model.requests
    assert report.intra_op_threads["yolo"] >= 0
    assert set(pipeline.cpu) == {"machine_cores", "ours_cores", "other_cores"}

    monitor = CpuMonitor(local_grpc_port(triton.grpc_url))
    assert monitor.triton is not None  # the server and its stubs: their load counts as ours

    served = asyncio.run(
        measure_triton(
            triton.grpc_url,
            "pipeline_yolo",
            jpegs,
            2,
            2,
            duration_s=0,
            min_requests=2,
            monitor=monitor,
        )
    )
    assert set(served.cpu) == {"machine_cores", "ours_cores", "other_cores"}
    assert served.target == "triton" and served.concurrency == 2
    assert served.requests >= 2 and served.frames == 2 * served.requests
    assert served.frame_errors == 0 and served.objects > 0
    assert served.server["requests"] >= 1 and served.server["frames"] >= 2
    assert "| yolo | 2 |" in ratio_table(report.measurements, [served])


def test_compare_runs_both_sides_on_the_same_frames(triton, jpegs) -> None:
    result = run_compare(
        triton.grpc_url,
        jpegs,
        kinds=("yolo",),
        batches=(1,),
        concurrencies=(1,),
        duration_s=0,
        warmup=0,
        min_requests=1,
    )
    assert result.facts["tritonserver"].startswith("2.")
    assert [m.subject for m in result.inprocess] == ["pipeline yolo", "model yolo (ORT only)"]
    assert [(m.subject, m.concurrency) for m in result.triton] == [("pipeline yolo", 1)]
    assert result.as_dict()["triton"][0]["frame_errors"] == 0
