"""Job tests: real DuckDB files, the session's embedded Triton and real API subprocesses (started
and stopped exactly as the streaming tests do)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import pytest

from api.synthetic.video import video_frames, write_video
from tests.support.api_server import ApiServer, start_api, stop_all

FAST_JOBS = {"JOBS_POLL_INTERVAL_S": "0.2", "JOBS_RETRY_INITIAL_S": "0.2", "JOBS_RETRY_MAX_S": "1"}


@pytest.fixture
def launch(triton, tmp_path: Path) -> Iterator[Callable[..., ApiServer]]:
    """Start an API; the same `name` again restarts it on the same DATA_DIR. Every process
    started here is stopped in the finalizer (SIGTERM, then SIGKILL)."""
    servers: list[ApiServer] = []

    def make(name: str = "api", triton_url: str | None = None, **env: str) -> ApiServer:
        server = start_api(triton_url or triton.grpc_url, tmp_path / name, **{**FAST_JOBS, **env})
        servers.append(server)
        return server

    yield make
    stop_all(servers)


@pytest.fixture(scope="session")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("videos")


@pytest.fixture(scope="session")
def accuracy_video(videos: Path) -> Path:
    """Seeds >= 1000 are never used for training."""
    return write_video(videos / "accuracy.mp4", video_frames(1000, 40))


@pytest.fixture(scope="session")
def short_video(videos: Path) -> Path:
    return write_video(videos / "short.mp4", video_frames(1001, 20))


@pytest.fixture(scope="session")
def long_video(videos: Path) -> Path:
    return write_video(videos / "long.mp4", video_frames(1002, 60))


@pytest.fixture(scope="session")
def corrupt_frame_video(videos: Path) -> Path:
    """MJPG AVI of 12 frames whose frame 5 has its JPEG data wiped."""
    path = videos / "corrupt_frame.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15.0, (640, 360))
    for frame in video_frames(1003, 12):
        writer.write(frame.image)
    writer.release()
    data = bytearray(path.read_bytes())
    starts = [i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xD8]
    assert len(starts) == 12
    data[starts[5] + 2 : starts[5] + 2002] = bytes(2000)
    path.write_bytes(bytes(data))
    return path


@pytest.fixture(scope="session")
def zero_frame_avi(videos: Path) -> Path:
    path = videos / "zero.avi"
    cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15.0, (640, 360)).release()
    return path


@pytest.fixture(scope="session")
def zero_frame_mp4(videos: Path) -> Path:
    path = videos / "zero.mp4"
    cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 15.0, (640, 360)).release()
    return path
