"""The one uvicorn configuration every entry point uses: no permessage-deflate, uvloop and
httptools. A real uvicorn server on a thread (its event loop audited) and a stock `websockets`
client, which offers permessage-deflate as browsers do."""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI, WebSocket
from websockets.sync.client import connect

from api.core.loop_audit import LoopAudit
from api.core.server import GracefulServer, server_config
from tests.support.ports import free_port
from tests.support.threaded_server import threaded

FRAME = os.urandom(48_000)  # like a JPEG: incompressible


def echo_app(loops: list[str]) -> FastAPI:
    app = FastAPI()

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        loops.append(type(asyncio.get_running_loop()).__module__)
        await websocket.send_text(str(len(await websocket.receive_bytes())))
        await websocket.close()

    return app


@contextmanager
def serving(config: uvicorn.Config) -> Iterator[LoopAudit]:
    audit = LoopAudit()

    def install() -> Callable[[], None]:
        audit.install()  # this thread runs the server's event loop
        return audit.uninstall

    with threaded(config, on_thread=install):
        yield audit


def exchange(port: int) -> str | None:
    with connect(f"ws://127.0.0.1:{port}/ws") as ws:  # compression="deflate" by default
        extensions = ws.response.headers.get("Sec-WebSocket-Extensions")
        ws.send(FRAME)
        assert ws.recv(timeout=20) == str(len(FRAME))
    return extensions


def test_uvicorns_default_would_inflate_every_frame_on_the_loop() -> None:
    """The control: what the stack did before (and what the audit sees of it)."""
    port, loops = free_port(), []
    config = uvicorn.Config(echo_app(loops), host="127.0.0.1", port=port, log_level="warning")
    with serving(config) as audit:
        extensions = exchange(port)
    assert extensions is not None and extensions.startswith("permessage-deflate")
    assert audit.caught["zlib.Decompress.decompress"] > 0


def test_server_config_refuses_permessage_deflate_and_runs_uvloop() -> None:
    port, loops = free_port(), []
    config = server_config(echo_app(loops), host="127.0.0.1", port=port, log_level="warning")
    with serving(config) as audit:
        extensions = exchange(port)
    assert extensions is None
    assert audit.caught == {}
    assert loops == ["uvloop"]
    assert "httptools" in config.http_protocol_class.__module__


async def _no_drain() -> None:
    return None


def _served_freeze_count(settle_heap: bool) -> int:
    """gc.get_freeze_count() while a GracefulServer serves on a thread of this process."""
    gc.unfreeze()
    port = free_port()
    config = server_config(echo_app([]), host="127.0.0.1", port=port, log_level="warning")
    server = GracefulServer(config, drain=_no_drain, timeout_s=5, settle_heap=settle_heap)
    try:
        with threaded(config, server=server):
            assert exchange(port) is None  # serving after the heap was settled
            return gc.get_freeze_count()
    finally:
        gc.unfreeze()  # process-wide: the next test gets a normal heap


def test_the_process_server_freezes_its_startup_heap_once_started() -> None:
    # `framegate serve` and `up` pass settle_heap=True (api/heap.py says why).
    assert _served_freeze_count(settle_heap=True) > 0


def test_a_server_on_a_test_thread_leaves_the_collector_alone() -> None:
    assert _served_freeze_count(settle_heap=False) == 0
