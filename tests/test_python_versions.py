"""Which Python each part of `api/` needs, checked rather than stated.

The gateway runs on 3.11+ (StrEnum, datetime.UTC, asyncio.timeout), which `requires-python` says.
The code tritonserver's Python stubs import (triton_models/*/1/model.py and every `api` module
they reach) runs inside the NGC Triton image, whose Python is 3.10: vermin (a static detector of
the minimum version each construct and stdlib name needs) must find nothing newer there.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import vermin

from tests.import_graph import REPO_ROOT, closure

TRITON_PYTHON = (3, 10)
MODEL_ENTRY_POINTS = sorted((REPO_ROOT / "triton_models").glob("*/1/model.py"))


def triton_side_files() -> set[Path]:
    """The model entry points and the transitive closure of the `api` modules they import."""
    return closure(MODEL_ENTRY_POINTS)


def minimum_python(source: str) -> tuple[int, ...]:
    return vermin.visit(source).minimum_versions()[1] or (3, 0)


def test_the_detector_sees_what_3_10_lacks() -> None:
    assert minimum_python("import datetime\nnow = datetime.datetime.now(datetime.UTC)\n") == (3, 11)
    assert minimum_python("from enum import StrEnum\n") == (3, 11)
    assert minimum_python(
        "import asyncio\nasync def f():\n    async with asyncio.timeout(1): ...\n"
    ) == (3, 11)
    assert minimum_python("def f(x: int | None): ...\n") <= TRITON_PYTHON


def test_the_triton_side_closure_reaches_the_vision_code() -> None:
    names = {p.relative_to(REPO_ROOT).as_posix() for p in triton_side_files()}
    assert len(MODEL_ENTRY_POINTS) >= 5
    assert {"api/triton_backend/pipeline_model.py", "api/triton_backend/onnx_model.py"} <= names
    assert "api/vision/pipeline.py" in names and "api/pipelines_spec.py" in names
    assert not any(n.startswith(("api/streaming/", "api/cli/")) for n in names)


def test_the_triton_side_imports_only_its_own_room() -> None:
    """docs/ARCHITECTURE.md, "Rooms": the stubs import each other and the shared modules only."""
    shared = {"api/__init__.py", "api/pipelines_spec.py", "api/frame_errors.py", "api/heap.py"}
    names = {p.relative_to(REPO_ROOT).as_posix() for p in triton_side_files()}
    outside = {
        n
        for n in names
        if n not in shared
        and not n.startswith(("api/triton_backend/", "api/vision/", "triton_models/"))
    }
    assert outside == set()


def test_code_triton_imports_runs_on_python_3_10() -> None:
    too_new = {
        p.relative_to(REPO_ROOT).as_posix(): version
        for p in sorted(triton_side_files())
        if (version := minimum_python(p.read_text())) > TRITON_PYTHON
    }
    assert too_new == {}


def test_requires_python_states_what_the_gateway_needs() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"].startswith(">=3.11")
    # The claim is needed, not just cautious: the gateway itself uses 3.11-only names.
    gateway = [*REPO_ROOT.glob("api/core/*.py"), *REPO_ROOT.glob("api/streaming/*.py")]
    assert max(minimum_python(p.read_text()) for p in gateway) >= (3, 11)
