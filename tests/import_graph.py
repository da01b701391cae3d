"""The `api` import graph, read statically (ast): which modules a file reaches, function-level
imports included, so a lazy import cannot hide a dependency."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def module_file(module: str) -> Path | None:
    base = REPO_ROOT / Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(path: Path) -> set[str]:
    """Every `api...` module a file imports, at any depth (function-level imports included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from api.x import y` may name a submodule y as well as an attribute.
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        for name in names:
            if name == "api" or name.startswith("api."):
                parts = name.split(".")
                # Importing api.a.b runs api/__init__.py and api/a/__init__.py too.
                found.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return found


def closure(entry_points: Iterable[Path]) -> set[Path]:
    """The entry points and every `api` file they reach."""
    files = set(entry_points)
    todo = list(files)
    while todo:
        for module in imported_modules(todo.pop()):
            path = module_file(module)
            if path is not None and path not in files:
                files.add(path)
                todo.append(path)
    return files
