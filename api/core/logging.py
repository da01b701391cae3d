"""JSON lines logging: one object per record, with `extra` fields (session_id, pipeline_id...).

One rule: every logger of the package is `framegate` or under it (`framegate.flags`,
`framegate.stream`...; never `__name__`, tests/core/test_logging.py enforces it), so this
one configuration reaches them all. The OpenFeature SDK's `openfeature` tree shares the handler
from WARNING up: provider errors surface there, its DEBUG is a line per file poll.

Tokens never reach a log: uvicorn's access and WebSocket lines carry the query string, where a
browser passes its stream token (`?token=...`), so those loggers and ours redact it.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
_TOKEN_PARAM = re.compile(r"([?&;]token=)[^&;\s\"']*", re.IGNORECASE)
REDACTED = "[redacted]"
UVICORN_LOGGERS = ("uvicorn.access", "uvicorn.error")
PACKAGE_LOGGER = "framegate"
OPENFEATURE_LOGGER = "openfeature"


def redact(text: str) -> str:
    """`/ws/video/stream?pipeline_id=ocr&token=s3cret` -> `...&token=[redacted]`."""
    return _TOKEN_PARAM.sub(rf"\g<1>{REDACTED}", text)


class RedactTokens(logging.Filter):
    """Rewrites a record's message and string arguments before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        payload.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactTokens())
    root = logging.getLogger(PACKAGE_LOGGER)
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
    sdk = logging.getLogger(OPENFEATURE_LOGGER)
    sdk.handlers[:] = [handler]
    sdk.setLevel(max(logging.WARNING, root.level))
    sdk.propagate = False
    for name in UVICORN_LOGGERS:  # logger filters survive uvicorn's own dictConfig
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())
