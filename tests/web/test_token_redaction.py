"""Stream tokens never reach a log, the query string included (api/core/logging.py)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.core.logging import REDACTED, UVICORN_LOGGERS, RedactTokens, configure_logging, redact
from tests.support.api_server import ApiServer, assert_loop_never_blocked, start_api
from tests.web.conftest import upgrade_status
from tests.web.stack import UpStack

TOKEN = "s3cret-stream-token"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/ws?pipeline_id=ocr&token=abc", f"/ws?pipeline_id=ocr&token={REDACTED}"),
        ("/x?token=abc&pipeline_id=ocr", f"/x?token={REDACTED}&pipeline_id=ocr"),
        ('"GET /x?TOKEN=abc HTTP/1.1" 200', f'"GET /x?TOKEN={REDACTED} HTTP/1.1" 200'),
        ("/x?notatoken=abc", "/x?notatoken=abc"),
        ("token=abc without a query", "token=abc without a query"),
    ],
)  # fmt: skip
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_filter_rewrites_uvicorn_style_arguments() -> None:
    record = logging.LogRecord(
        "uvicorn.error", logging.INFO, __file__, 1, '%s - "WebSocket %s" [accepted]',
        ("127.0.0.1:5000", f"/ws/video/stream?token={TOKEN}"), None,
    )  # fmt: skip
    assert RedactTokens().filter(record)
    assert TOKEN not in record.getMessage()


def test_configure_logging_installs_one_filter_per_uvicorn_logger() -> None:
    configure_logging()
    configure_logging()
    for name in UVICORN_LOGGERS:
        filters = logging.getLogger(name).filters
        assert sum(isinstance(f, RedactTokens) for f in filters) == 1


@pytest.fixture
def verbose_api(stack: UpStack, tmp_path: Path) -> Iterator[ApiServer]:
    """`framegate serve` with uvicorn at INFO, so its access and WebSocket lines are written at
    all (the shared fixtures run uvicorn at WARNING), against the stack's Triton."""
    server = start_api(
        stack.triton_grpc, tmp_path, uvicorn_log_level="info", STREAM_AUTH_TOKEN=TOKEN
    )
    try:
        yield server
        assert_loop_never_blocked(server)
    finally:
        server.stop()


@pytest.mark.triton
def test_token_never_reaches_the_api_log(verbose_api: ApiServer) -> None:
    assert upgrade_status(verbose_api.ws(token=TOKEN)) == 101
    assert httpx.get(f"{verbose_api.http}/health?token={TOKEN}", timeout=5).status_code == 200
    log = verbose_api.log()
    assert f"token={REDACTED}" in log  # the lines that carried it were written, redacted
    assert "WebSocket /ws/video/stream" in log
    assert TOKEN not in log
