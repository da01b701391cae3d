"""`framegate triton` stops cleanly on Ctrl-C and SIGTERM: no tritonserver or stub is left."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from api.core import processes
from api.synthetic.scene import encode_jpeg, make_frames
from tests.support.ports import free_port, free_ports

pytestmark = pytest.mark.triton  # framegate up / triton start the real tritonserver


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if text in cmdline or text.encode() in environ:
            found.append(int(entry.name))
    return found


def _wait(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def _streaming_session(port: int) -> ClientConnection:
    """A live session that has had one frame answered."""
    jpeg = encode_jpeg(make_frames(8100, 1)[0].image)
    ws = connect(f"ws://127.0.0.1:{port}/ws/video/stream?pipeline_id=yolo", open_timeout=30)
    ws.send(jpeg)
    assert "result" in json.loads(ws.recv(timeout=120))
    return ws


def _ws_extensions(port: int) -> str | None:
    """The extensions a stock client (offering permessage-deflate) is granted."""
    with connect(f"ws://127.0.0.1:{port}/ws/video/stream?pipeline_id=yolo") as ws:
        return ws.response.headers.get("Sec-WebSocket-Extensions")


@pytest.mark.parametrize(
    ("command", "sig"),
    [("triton", signal.SIGINT), ("triton", signal.SIGTERM), ("up", signal.SIGTERM)],
)
def test_command_leaves_no_process_behind(
    tmp_path: Path, command: str, sig: signal.Signals
) -> None:
    ports = free_ports()
    data_dir = tmp_path / f"data-{command}-{sig.name}"
    cmd = [
        sys.executable, "-m", "api.cli.main", command,
        "--data-dir", str(data_dir),
        "--triton-grpc-port", str(ports.grpc),
        "--triton-http-port", str(ports.http),
        "--triton-metrics-port", str(ports.metrics),
    ]  # fmt: skip
    api_port = free_port()
    if command == "up":
        cmd += ["--port", str(api_port)]
    proc = processes.spawn(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        die_with_parent=True, default_sigint=True,
    )  # fmt: skip
    try:
        _wait(lambda: _ready(f"http://127.0.0.1:{ports.http}/v2/health/ready"), 240, "Triton ready")
        assert _processes_mentioning(str(data_dir))  # server (and stubs) are running
        session = None
        if command == "up":
            _wait(lambda: _ready(f"http://127.0.0.1:{api_port}/health"), 60, "API up")
            assert _ws_extensions(api_port) is None  # `up` never negotiates permessage-deflate
            session = _streaming_session(api_port)
        proc.send_signal(sig)
        if session is not None:
            # `up` drains like `framegate serve`: the live session is told to go elsewhere (1012)
            # rather than cut off when uvicorn stops.
            with pytest.raises(ConnectionClosed) as closed:
                session.recv(timeout=60)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
            session.close()
        assert proc.wait(timeout=60) == 0
        _wait(lambda: not _processes_mentioning(str(data_dir)), 10, "all Triton processes to exit")
        assert (data_dir / "triton" / "triton.log").stat().st_size > 0
    finally:
        processes.kill(proc)
