"""Catch blocking work on the event loop thread: what ran there, not how long it took.

A wall-clock bound (a /health p99, a slow-callback threshold) says as much about the machine as
about the code. Instead, with `LOOP_AUDIT=true`, a profile hook on the loop thread (and only on
it: `sys.setprofile` is per thread, so worker threads run unprofiled) records every call to a
function that must never run there: JPEG codecs, ONNX Runtime, DuckDB (through the functions
marked `@blocking`), synchronous gRPC, (de)compression and sleeping. Each catch is counted in
`framegate_loop_blocking_calls_total{call}`; tests assert the count stays at zero while real
traffic flows. The hook costs every Python call on the loop a few
hundred nanoseconds, so it is for tests and diagnosis, never on by default.
"""

from __future__ import annotations

import importlib
import sys
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable
from types import CodeType, FrameType, ModuleType
from typing import Any, TypeVar

from prometheus_client import Counter as MetricCounter


def _blocking_targets() -> tuple[dict[int, str], dict[type, str]]:
    """C functions (by identity) and classes whose C methods (by owner type) are blocking work.
    Identity, not names: OpenCV's functions carry no module name."""
    functions: dict[int, str] = {}
    owners: dict[type, str] = {
        type(zlib.compressobj()): "zlib.Compress",
        type(zlib.decompressobj()): "zlib.Decompress",
    }
    for module, names in (
        (zlib, ("compress", "decompress")),
        (time, ("sleep",)),
        (_optional("cv2"), ("imdecode", "imencode", "imread", "resize", "cvtColor")),
    ):
        if module is None:
            continue
        for name in names:
            functions[id(getattr(module, name))] = f"{module.__name__}.{name}"
    return functions, owners


def blocking(function: F) -> F:
    """Declare a Python function blocking: the audit counts every call of it on the loop thread.
    For libraries whose bindings emit no profile event (DuckDB's nanobind methods), mark the one
    function every call goes through."""
    _BLOCKING_CODE[function.__code__] = function.__qualname__
    return function


def _blocking_code() -> dict[CodeType, str]:
    code = dict(_BLOCKING_CODE)
    ort = _optional("onnxruntime")
    if ort is not None:
        code[ort.InferenceSession.run.__code__] = "onnxruntime.InferenceSession.run"
    channel = _optional("grpc._channel")  # synchronous gRPC (the flagd RPC provider); not grpc.aio
    if channel is not None:
        for kind in ("_UnaryUnaryMultiCallable", "_UnaryStreamMultiCallable"):
            code[getattr(channel, kind).__call__.__code__] = f"grpc.{kind}.__call__"
    return code


def _optional(module: str) -> ModuleType | None:
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


F = TypeVar("F", bound=Callable[..., Any])
_BLOCKING_CODE: dict[CodeType, str] = {}

BLOCKING_CALLS_TOTAL = MetricCounter(
    "framegate_loop_blocking_calls",
    "Blocking calls caught on the event loop thread (only counted with LOOP_AUDIT=true)",
    ["call"],
)


class LoopAudit:
    """Counts blocking calls made on the thread that called `install()`."""

    def __init__(self) -> None:
        self.caught: Counter[str] = Counter()
        self._thread: int | None = None
        self._functions, self._owners = _blocking_targets()
        self._code = _blocking_code()

    def _hook(self, frame: FrameType, event: str, arg: Any) -> None:
        if event == "call":
            name = self._code.get(frame.f_code)
            if name is None:
                return
        elif event == "c_call":
            name = self._functions.get(id(arg))
            if name is None:
                owner = self._owners.get(type(getattr(arg, "__self__", None)))
                if owner is None:
                    return
                name = f"{owner}.{getattr(arg, '__name__', '?')}"
        else:
            return
        self.caught[name] += 1
        BLOCKING_CALLS_TOTAL.labels(call=name).inc()

    def install(self) -> None:
        self._thread = threading.get_ident()
        sys.setprofile(self._hook)

    def uninstall(self) -> None:
        if self._thread == threading.get_ident():
            sys.setprofile(None)
        self._thread = None
