"""The gateway's import graph holds no tooling: nothing `api.main` reaches, even through a
function-level import, comes from the load tools, the operator commands, the CLI or the guard
(they import the gateway, never the reverse)."""

from __future__ import annotations

from tests.import_graph import REPO_ROOT, closure, imported_modules

TOOLING = ("api/loadtest/", "api/ops/", "api/cli/", "api/guard/")


def _gateway_files() -> set[str]:
    return {p.relative_to(REPO_ROOT).as_posix() for p in closure([REPO_ROOT / "api/main.py"])}


def test_the_gateway_reaches_no_tooling() -> None:
    assert sorted(f for f in _gateway_files() if f.startswith(TOOLING)) == []


def test_the_graph_follows_the_frame_path() -> None:
    files = _gateway_files()
    for module in ("streaming/router", "streaming/session", "inference/batcher", "core/config"):
        assert f"api/{module}.py" in files


def test_function_level_imports_count(tmp_path) -> None:
    lazy = tmp_path / "lazy.py"
    lazy.write_text("def f():\n    from api.loadtest.cpu import tree\n    return tree\n")
    assert "api.loadtest.cpu" in imported_modules(lazy)
    assert {"api", "api.loadtest"} <= imported_modules(lazy)  # their __init__ modules run too
