"""The processes of a full-stack row and what each costs per result.

Roles: the gateway (the uvicorn process under test, with any children), `tritonserver` itself,
its Python backend stubs grouped per model (`stub:yolo`, `stub:pipeline_yolo_ocr`, ...: a stub's
first argument is `<repository>/<model>/<version>/model.py`), and the client (this process, which
runs the load generator). Idle is the machine's idle share over the same window.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import PurePath

import psutil

from api.loadtest.cpu import WindowCpu, cmdline, tree

GATEWAY = "gateway"
TRITONSERVER = "tritonserver"
CLIENT = "client"
STUB = "stub:"
TRITON_OTHER = "triton:other"  # a tritonserver descendant that is not a Python stub
STUB_BINARY = "triton_python_backend_stub"
PIPELINE_MODEL = "pipeline_"  # pipeline models are named pipeline_<id>


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    cmdline: tuple[str, ...]


def stub_model(argv: tuple[str, ...]) -> str | None:
    """The model a Python backend stub serves, None for any other process."""
    if not argv or not argv[0].endswith(STUB_BINARY):
        return None
    for arg in argv[1:]:
        parts = PurePath(arg).parts
        if arg.endswith(".py") and len(parts) >= 3:
            return parts[-3]
    return None


def group_stubs(processes: Iterable[ProcInfo]) -> dict[str, list[int]]:
    """Stub pids per model name, in model-name order; processes that are not stubs are left out."""
    groups: dict[str, list[int]] = {}
    for p in processes:
        model = stub_model(p.cmdline)
        if model is not None:
            groups.setdefault(model, []).append(p.pid)
    return {model: sorted(groups[model]) for model in sorted(groups)}


def triton_roles(server: psutil.Process) -> dict[str, list[psutil.Process]]:
    """`tritonserver` and its descendants: one role per model's stubs, the rest together."""
    children = tree(server)[1:]
    by_pid = {c.pid: c for c in children}
    groups = group_stubs(ProcInfo(c.pid, cmdline(c)) for c in children)
    roles = {TRITONSERVER: [server]}
    roles.update({STUB + m: [by_pid[pid] for pid in pids] for m, pids in groups.items()})
    grouped = {pid for pids in groups.values() for pid in pids}
    rest = [c for c in children if c.pid not in grouped]
    if rest:
        roles[TRITON_OTHER] = rest
    return roles


def stack_roles(gateway_pid: int, triton: psutil.Process | None) -> dict[str, list[psutil.Process]]:
    roles = {GATEWAY: tree(psutil.Process(gateway_pid)), CLIENT: [psutil.Process()]}
    if triton is not None:
        roles.update(triton_roles(triton))
    return roles


def is_triton(role: str) -> bool:
    return role in (TRITONSERVER, TRITON_OTHER) or role.startswith(STUB)


def work_s(window: WindowCpu, with_triton: bool) -> float:
    """CPU seconds of the processes doing a row's work: the gateway, plus Triton when the row
    uses it; never the client."""
    return window.role_s(
        [r for r in window.by_role if r == GATEWAY or (with_triton and is_triton(r))]
    )


def cpu_fields(window: WindowCpu, results: int, with_triton: bool) -> dict:
    """A WebSocket row's CPU numbers: the work, the client, other load and the breakdown."""
    per_result = {
        role: round(seconds / results * 1000, 2) if results else 0.0
        for role, seconds in window.by_role.items()
    }
    return {
        "cpu_s": round(work_s(window, with_triton), 3),
        "generator_cores": round(window.cores(window.by_role.get(CLIENT, 0.0)), 2),
        "other_cores": round(window.other_cores, 2),
        "cpu_breakdown": {
            "cpu_ms_per_result": per_result,
            "idle_fraction": round(window.idle_fraction, 3),
        },
    }


@dataclass(frozen=True)
class Columns:
    """The breakdown table's cells (CPU ms per result; None: that process was not measured)."""

    model_stubs: float | None
    model_stubs_by_model: dict[str, float]
    pipeline_stub: float | None
    gateway: float | None
    tritonserver: float | None
    client: float | None
    idle_fraction: float | None


def columns(breakdown: Mapping) -> Columns:
    per = breakdown.get("cpu_ms_per_result", {})
    models = {r[len(STUB) :]: v for r, v in per.items() if r.startswith(STUB)}
    plain = {m: v for m, v in models.items() if not m.startswith(PIPELINE_MODEL)}
    pipelines = [v for m, v in models.items() if m.startswith(PIPELINE_MODEL)]
    has_triton = TRITONSERVER in per
    return Columns(
        model_stubs=round(sum(plain.values()), 2) if has_triton else None,
        model_stubs_by_model=dict(sorted(plain.items(), key=lambda kv: -kv[1])),
        pipeline_stub=round(sum(pipelines), 2) if has_triton else None,
        gateway=per.get(GATEWAY),
        tritonserver=per.get(TRITONSERVER),
        client=per.get(CLIENT),
        idle_fraction=breakdown.get("idle_fraction"),
    )
