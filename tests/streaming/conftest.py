"""The real API in a subprocess (uvicorn) against the session's embedded Triton."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from api.synthetic.scene import Frame, encode_jpeg, make_frames
from tests.support.api_server import ApiServer, assert_loop_never_blocked, start_api, stop_all


@pytest.fixture
def api_factory(triton, tmp_path: Path) -> Iterator[Callable[..., ApiServer]]:
    servers: list[ApiServer] = []

    def make(triton_url: str | None = None, **env: str) -> ApiServer:
        server = start_api(triton_url or triton.grpc_url, tmp_path / f"api{len(servers)}", **env)
        servers.append(server)
        return server

    yield make
    stop_all(servers)


@pytest.fixture(scope="module")
def api(triton, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    server = start_api(triton.grpc_url, tmp_path_factory.mktemp("api"))
    try:
        yield server
        assert_loop_never_blocked(server)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def stream_frames() -> list[Frame]:
    return make_frames(8000, 24)


@pytest.fixture(scope="session")
def stream_jpegs(stream_frames: list[Frame]) -> list[bytes]:
    return [encode_jpeg(f.image) for f in stream_frames]
