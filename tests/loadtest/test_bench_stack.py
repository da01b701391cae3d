"""api/loadtest/bench/stack.py: grouping Triton's Python stubs by model from their command lines,
and a row's CPU split into the breakdown table's columns."""

from __future__ import annotations

from api.loadtest.bench.stack import (
    CLIENT,
    GATEWAY,
    STUB,
    TRITONSERVER,
    ProcInfo,
    columns,
    cpu_fields,
    group_stubs,
    stub_model,
    work_s,
)
from api.loadtest.cpu import WindowCpu

BACKEND = "/tmp/x/backends/python/triton_python_backend_stub"


def _stub(pid: int, model: str, instance: int = 0) -> ProcInfo:
    """A stub's argv as `ps -ef` shows it under the embedded Triton."""
    return ProcInfo(
        pid,
        (
            BACKEND, f"/work/main/triton_models/{model}/1/model.py",
            "triton_python_backend_shm_region_0c1d", "1048576", "1048576", "3495",
            "/tmp/x/backends/python", "336", f"{model}_0_{instance}", "DEFAULT",
        ),
    )  # fmt: skip


def test_a_stub_is_named_by_its_model_directory() -> None:
    assert stub_model(_stub(1, "pipeline_yolo_ocr").cmdline) == "pipeline_yolo_ocr"
    assert stub_model(_stub(1, "ocr_rec").cmdline) == "ocr_rec"


def test_processes_that_are_not_stubs_have_no_model() -> None:
    assert stub_model(()) is None
    assert stub_model(("/usr/bin/python3", "/models/yolo/1/model.py")) is None
    assert stub_model((BACKEND, "no-model-file")) is None
    assert stub_model((BACKEND, "model.py")) is None  # no <model>/<version>/ above it


def test_stubs_are_grouped_per_model_and_others_left_out() -> None:
    infos = [
        _stub(12, "yolo", 1),
        _stub(11, "yolo", 0),
        _stub(20, "pipeline_yolo"),
        ProcInfo(30, ("/opt/tritonserver/bin/tritonserver", "--grpc-port=8001")),
        _stub(40, "ocr_rec"),
    ]
    assert group_stubs(infos) == {"ocr_rec": [40], "pipeline_yolo": [20], "yolo": [11, 12]}
    assert group_stubs([]) == {}


def _window(**by_role: float) -> WindowCpu:
    return WindowCpu(wall_s=2.0, by_role=by_role, machine_busy_s=3.0, machine_idle_s=1.0)


STACK = {
    GATEWAY: 0.2,
    TRITONSERVER: 0.1,
    STUB + "yolo": 0.6,
    STUB + "ocr_rec": 0.8,
    STUB + "pipeline_yolo_ocr": 0.3,
    STUB + "pipeline_yolo": 0.02,
    CLIENT: 0.1,
}


def test_the_work_is_the_gateway_and_triton_never_the_client() -> None:
    w = _window(**STACK)
    assert round(work_s(w, with_triton=True), 6) == 2.02
    assert work_s(w, with_triton=False) == 0.2  # the naive gateway: Triton idles beside it


def test_cpu_fields_are_per_result_with_the_client_and_idle_apart() -> None:
    fields = cpu_fields(_window(**STACK), results=100, with_triton=True)
    assert fields["cpu_s"] == 2.02
    assert fields["generator_cores"] == 0.05  # 0.1 s over 2 s
    assert fields["other_cores"] == round((3.0 - 2.12) / 2.0, 2)
    per = fields["cpu_breakdown"]["cpu_ms_per_result"]
    assert per[STUB + "ocr_rec"] == 8.0 and per[CLIENT] == 1.0
    assert fields["cpu_breakdown"]["idle_fraction"] == 0.25


def test_columns_split_model_stubs_from_pipeline_stubs() -> None:
    fields = cpu_fields(_window(**STACK), results=100, with_triton=True)
    col = columns(fields["cpu_breakdown"])
    assert col.model_stubs == 14.0
    assert list(col.model_stubs_by_model) == ["ocr_rec", "yolo"]  # biggest first
    assert col.pipeline_stub == 3.2
    assert (col.gateway, col.tritonserver, col.client) == (2.0, 1.0, 1.0)
    assert col.idle_fraction == 0.25


def test_columns_without_triton_leave_its_cells_empty() -> None:
    fields = cpu_fields(_window(**{GATEWAY: 1.0, CLIENT: 0.1}), results=10, with_triton=False)
    col = columns(fields["cpu_breakdown"])
    assert col.model_stubs is None and col.pipeline_stub is None and col.tritonserver is None
    assert col.gateway == 100.0
    assert columns({}).gateway is None


def test_no_results_means_zero_per_result_not_a_division_error() -> None:
    per = cpu_fields(_window(**STACK), results=0, with_triton=True)["cpu_breakdown"]
    assert set(per["cpu_ms_per_result"].values()) == {0.0}
