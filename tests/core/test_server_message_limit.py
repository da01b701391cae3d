"""The WebSocket transport's message limit follows STREAM_MAX_FRAME_SIZE_MB
(protocol.max_message_bytes): a frame the settings allow is read, one over the frame limit
reaches the app (which answers frame_too_large), and only a message over the transport limit is
refused by uvicorn with 1009. A real uvicorn server (server_config) on a thread."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi import FastAPI, WebSocket
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from api.core.server import server_config
from api.streaming.protocol import (
    TRANSPORT_MIN_MESSAGE_BYTES,
    WS_1009_MESSAGE_TOO_BIG,
    max_message_bytes,
)
from tests.support.ports import free_port
from tests.support.threaded_server import threaded

MIB = 1024 * 1024


def length_app() -> FastAPI:
    app = FastAPI()

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(str(len(await websocket.receive_bytes())))
        await websocket.close()

    return app


@contextmanager
def serving(max_frame_bytes: int) -> Iterator[int]:
    port = free_port()
    config = server_config(
        length_app(), host="127.0.0.1", port=port, log_level="warning",
        max_frame_bytes=max_frame_bytes,
    )  # fmt: skip
    with threaded(config):
        yield port


def send(port: int, size: int) -> str:
    with connect(f"ws://127.0.0.1:{port}/ws", max_size=None) as ws:
        ws.send(bytes(size))
        return ws.recv(timeout=30)


def test_frame_allowed_by_a_large_setting_is_read() -> None:
    """Regression: uvicorn's fixed 16 MiB closed a 17 MiB frame with 1009 although
    STREAM_MAX_FRAME_SIZE_MB=20 allowed it."""
    with serving(20 * MIB) as port:
        assert send(port, 17 * MIB) == str(17 * MIB)


def test_frame_over_the_frame_limit_reaches_the_app() -> None:
    with serving(MIB) as port:  # the app answers it frame_too_large
        assert send(port, 3 * MIB) == str(3 * MIB)


@pytest.mark.parametrize("max_frame_bytes", [MIB, 10 * MIB])
def test_message_over_the_transport_limit_closes_1009(max_frame_bytes: int) -> None:
    """Sent as two fragments, the limit exactly then one byte: the server refuses the message on
    the second fragment's header, after the client has written everything, so its close frame
    is read (a single large frame is refused at its header while the client still writes, and
    the connection reset may then lose the close frame)."""
    limit = max_message_bytes(max_frame_bytes)
    assert limit >= max(TRANSPORT_MIN_MESSAGE_BYTES, 2 * max_frame_bytes)
    with (
        serving(max_frame_bytes) as port,
        pytest.raises(ConnectionClosed) as closed,
        connect(f"ws://127.0.0.1:{port}/ws", max_size=None) as ws,
    ):
        ws.send([bytes(limit), b"\x00"])
        ws.recv(timeout=30)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == WS_1009_MESSAGE_TOO_BIG
