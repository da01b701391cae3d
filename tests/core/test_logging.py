"""One logging configuration for the whole package (api/core/logging.py): every logger of `api/`
is under `framegate`, so flag provider changes, errors and stale-source warnings come out as the
same JSON lines as the rest; the OpenFeature SDK's warnings too."""

from __future__ import annotations

import ast
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from openfeature.exception import ErrorCode
from openfeature.provider import ProviderEventDetails

from api.core.logging import OPENFEATURE_LOGGER, PACKAGE_LOGGER, configure_logging
from api.flags.file_provider import ContentFileWatcher

PACKAGE = Path(__file__).resolve().parents[2] / "api"
CONFIGURED = (PACKAGE_LOGGER, OPENFEATURE_LOGGER)


def logger_names(path: Path) -> list[object]:
    """The first argument of every `getLogger(...)` call in a module (None: no argument, an
    expression: its source)."""
    found: list[object] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name != "getLogger":
            continue
        if not node.args:
            found.append(None)
        elif isinstance(node.args[0], ast.Constant):
            found.append(node.args[0].value)
        else:
            found.append(ast.unparse(node.args[0]))
    return found


def package_loggers() -> dict[str, list[object]]:
    # api/core/logging.py configures the trees (and uvicorn's) by name: it is the rule itself.
    modules = (p for p in PACKAGE.rglob("*.py") if p != PACKAGE / "core" / "logging.py")
    return {str(p.relative_to(PACKAGE)): names for p in modules if (names := logger_names(p))}


@pytest.fixture
def configured() -> Iterator[io.StringIO]:
    """configure_logging with its one handler writing into a buffer (what it writes to stderr);
    the loggers it touched are put back afterwards."""
    loggers = [logging.getLogger(name) for name in CONFIGURED]
    saved = [(logger, logger.handlers[:], logger.level, logger.propagate) for logger in loggers]
    configure_logging("INFO")
    buffer = io.StringIO()
    [handler] = {h for logger in loggers for h in logger.handlers}
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buffer)
    try:
        yield buffer
    finally:
        for logger, handlers, level, propagate in saved:
            logger.handlers[:], logger.level, logger.propagate = handlers, level, propagate


class UnusedStore:
    def update(self, flags_data: dict) -> None:
        raise AssertionError("a missing file loads nothing")


def json_lines(buffer: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_scan_sees_the_package_loggers() -> None:
    names = package_loggers()
    assert names["flags/service.py"] == ["framegate.flags"]
    assert names["streaming/session.py"] == ["framegate.stream"]


def test_scan_flags_module_named_logger(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import logging\nlog = logging.getLogger(__name__)\n")
    assert logger_names(module) == ["__name__"]


def test_every_package_logger_is_under_framegate() -> None:
    escaped = {
        module: names
        for module, names in package_loggers().items()
        if not all(
            isinstance(n, str) and (n == PACKAGE_LOGGER or n.startswith(f"{PACKAGE_LOGGER}."))
            for n in names
        )
    }
    assert escaped == {}, "loggers outside the `framegate` tree: configure_logging misses them"


def test_every_package_logger_writes_json_lines(configured: io.StringIO) -> None:
    names = sorted({str(n) for names in package_loggers().values() for n in names})
    for name in names:
        logging.getLogger(name).warning("from %s", name, extra={"pipeline_id": "ocr"})

    lines = json_lines(configured)
    assert [(line["logger"], line["event"], line["level"]) for line in lines] == [
        (name, f"from {name}", "warning") for name in names
    ]
    assert all(line["pipeline_id"] == "ocr" for line in lines)


def test_stale_flag_source_warning_is_a_json_line(configured: io.StringIO, tmp_path: Path) -> None:
    errors: list[ProviderEventDetails] = []
    watcher = ContentFileWatcher(
        tmp_path / "missing.json", 1.0, UnusedStore(), lambda *_: None, errors.append
    )
    watcher.poll()  # what the watcher thread runs every interval

    [line] = json_lines(configured)
    assert line["logger"] == "framegate.flags" and line["level"] == "warning"
    assert line["event"].startswith("flag file not found: ")
    assert [e.error_code for e in errors] == [ErrorCode.GENERAL]


def test_openfeature_warnings_are_json_lines(configured: io.StringIO) -> None:
    sdk = logging.getLogger("openfeature.contrib")  # the flagd provider's logger
    sdk.debug("checking for new flag store contents from file")  # every poll: not wanted
    sdk.warning("SyncFlags stream error")

    assert [(line["logger"], line["event"]) for line in json_lines(configured)] == [
        ("openfeature.contrib", "SyncFlags stream error")
    ]


def test_openfeature_follows_a_stricter_level(configured: io.StringIO) -> None:
    configure_logging("ERROR")
    assert logging.getLogger(OPENFEATURE_LOGGER).getEffectiveLevel() == logging.ERROR
