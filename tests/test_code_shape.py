"""The shape of `api/`: no module over 450 lines and no function over 50, read statically (ast).

A CLI command's signature is a long list of typer options, so there the body is measured (from the
first statement after the docstring); elsewhere the whole `def`, decorators excluded."""

from __future__ import annotations

import ast

from tests.import_graph import REPO_ROOT

MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 50
CLI_DIR = "api/cli/"

_Function = ast.FunctionDef | ast.AsyncFunctionDef


def _body_lines(node: _Function) -> int:
    body = node.body
    if len(body) > 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    return _end(node) - body[0].lineno + 1


def _def_lines(node: _Function) -> int:
    return _end(node) - node.lineno + 1


def _end(node: ast.AST) -> int:
    end = getattr(node, "end_lineno", None)
    assert end is not None, "ast gives every statement an end line on Python 3.8+"
    return int(end)


def long_functions(source: str, name: str, *, body_only: bool) -> list[str]:
    """`name:line qualname (n lines)` for every function or method over the limit, nested ones
    included."""
    measure = _body_lines if body_only else _def_lines
    found: list[str] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, _Function):
                qualname = f"{prefix}{child.name}"
                if (lines := measure(child)) > MAX_FUNCTION_LINES:
                    found.append(f"{name}:{child.lineno} {qualname} ({lines} lines)")
                visit(child, f"{qualname}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(ast.parse(source, filename=name), "")
    return found


def _api_files() -> list[tuple[str, str]]:
    return [
        (path.relative_to(REPO_ROOT).as_posix(), path.read_text())
        for path in sorted((REPO_ROOT / "api").rglob("*.py"))
    ]


def test_no_module_in_api_is_over_450_lines() -> None:
    long_modules = [
        f"{name} ({lines} lines)"
        for name, source in _api_files()
        if (lines := len(source.splitlines())) > MAX_MODULE_LINES
    ]
    assert not long_modules, "modules over 450 lines:\n" + "\n".join(long_modules)


def test_no_function_in_api_is_over_50_lines() -> None:
    offenders = [
        offender
        for name, source in _api_files()
        for offender in long_functions(source, name, body_only=name.startswith(CLI_DIR))
    ]
    assert not offenders, "functions over 50 lines:\n" + "\n".join(offenders)


def _function(name: str, body_lines: int, *, options: int = 0, docstring: bool = False) -> str:
    signature = "".join(f"    opt{i}: int = 0,\n" for i in range(options))
    doc = '    """Why."""\n' if docstring else ""
    body = "".join(f"    x{i} = {i}\n" for i in range(body_lines))
    return f"@decorator\ndef {name}(\n{signature}) -> None:\n{doc}{body}"


def test_the_measure_reports_a_51_line_function_and_not_a_50_line_one() -> None:
    # def line, signature close and 49 statements = 51 lines; the decorator is not counted.
    source = _function("too_long", 49) + _function("just_fits", 48)
    assert long_functions(source, "m.py", body_only=False) == ["m.py:2 too_long (51 lines)"]


def test_the_measure_finds_methods_and_nested_functions() -> None:
    nested = "\n".join("    " + line for line in _function("inner", 60).splitlines())
    source = f"class Outer:\n{nested}\n\ndef outer():\n{nested}\n"
    assert long_functions(source, "m.py", body_only=False) == [
        "m.py:3 Outer.inner (62 lines)",
        "m.py:66 outer (64 lines)",
        "m.py:68 outer.inner (62 lines)",
    ]


def test_a_cli_command_is_measured_by_its_body_not_its_options() -> None:
    # 40 options and a docstring, but only 50 body lines: fits; 51 body lines: reported.
    fits = _function("fits", 50, options=40, docstring=True)
    too_long = _function("too_long", 51, options=40, docstring=True)
    assert long_functions(fits, "c.py", body_only=True) == []
    assert long_functions(too_long, "c.py", body_only=True) == ["c.py:2 too_long (51 lines)"]
    assert long_functions(fits, "c.py", body_only=False) != []
