"""`framegate up` owns its Triton (the real tritonserver and the real `framegate up` process):
kill -9 of `up` leaves no Triton behind and the next `up` on the same data dir resumes its jobs;
a tritonserver killed under `up` is restarted and streaming resumes without restarting the API;
a server an earlier run left on the data dir is replaced; a foreign process on a port is one
clear error line."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from api.core import processes
from api.core.polling import poll_until
from api.synthetic.scene import encode_jpeg, make_frames
from api.synthetic.video import video_frames, write_video
from api.triton_server.embedded import EmbeddedTriton, TritonPorts, server_env
from tests.jobs.client import database, status, submit, wait_completed
from tests.support.ports import free_port, free_ports

pytestmark = pytest.mark.triton

READY_S = 240.0  # a cold start loads every model on a busy 2-core machine
RECOVERY_S = 45.0  # the product promise: results again this long after tritonserver is killed
GONE_S = 30.0  # a killed `up`'s Triton and stubs are gone by then
STOP_S = 60.0
POLL_S = 0.5
FRAMES = 60
FAST_JOBS = {"JOBS_POLL_INTERVAL_S": "0.2", "JOBS_RETRY_INITIAL_S": "0.2", "JOBS_RETRY_MAX_S": "1"}
LISTEN = (
    "import signal, socket, sys\n"
    "s = socket.create_server(('127.0.0.1', int(sys.argv[1])))\n"
    "print('ready', flush=True)\n"
    "signal.pause()"
)


@dataclass
class Up:
    """One `framegate up` process on `data_dir` (the jobs helpers use `http`, `process` and
    `data_dir`, as for an API server)."""

    data_dir: Path
    log_path: Path
    triton: TritonPorts = field(default_factory=free_ports)
    port: int = field(default_factory=free_port)
    process: psutil.Popen | None = None

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/video/stream?pipeline_id=yolo"

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "api.cli.main", "up",
            "--port", str(self.port),
            "--data-dir", str(self.data_dir),
            "--triton-grpc-port", str(self.triton.grpc),
            "--triton-http-port", str(self.triton.http),
            "--triton-metrics-port", str(self.triton.metrics),
        ]  # fmt: skip

    def spawn(self) -> psutil.Popen:
        env = {**os.environ, **FAST_JOBS, "ROLE": "all", "FLAG_PROVIDER": "file"}
        env.pop("FLAGD_OFFLINE_FLAG_SOURCE_PATH", None)  # `up` writes its own: streaming on
        with self.log_path.open("ab") as log:
            self.process = processes.spawn(
                self.command(), env=env, stdout=log, stderr=subprocess.STDOUT,
                die_with_parent=True, default_sigint=True,
            )  # fmt: skip
        return self.process

    def wait_ready(self) -> None:
        def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"framegate up exited:\n{self.log()[-3000:]}")
            return answers(f"{self.http}/ready")

        poll_until(ready, READY_S, interval_s=POLL_S, what="framegate up /ready")

    def stop(self) -> None:
        if self.process is not None:
            processes.stop(self.process, sig=signal.SIGINT, timeout_s=STOP_S)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def tritonserver(self) -> psutil.Process | None:
        assert self.process is not None
        children = processes.tree(self.process)[1:]
        servers = [p for p in children if argv(p)[:1] and argv(p)[0].endswith("tritonserver")]
        return servers[0] if servers else None


def argv(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.Error:
        return []


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def on_data_dir(data_dir: Path) -> list[psutil.Process]:
    """Every live process (Triton, its stubs, `up`) naming the data dir on its command line."""
    return processes.matching(lambda args: any(str(data_dir) in a for a in args))


@pytest.fixture
def stacks(tmp_path: Path) -> Iterator[list[Up]]:
    """The test's `framegate up` runs, stopped afterwards; nothing naming their data dirs may
    survive (the safety net kills it, and the test fails)."""
    ups: list[Up] = []
    yield ups
    for up in ups:
        up.stop()
    leftovers = [p for up in ups for p in on_data_dir(up.data_dir)]
    for process in leftovers:
        processes.kill(process)
    assert not leftovers, [processes.describe(p) for p in leftovers]


def start_up(stacks: list[Up], data_dir: Path, log_name: str, **ports: object) -> Up:
    up = Up(data_dir.resolve(), data_dir.parent / log_name, **ports)  # type: ignore[arg-type]
    stacks.append(up)
    up.spawn()
    up.wait_ready()
    return up


@pytest.fixture(scope="module")
def jpeg() -> bytes:
    return encode_jpeg(make_frames(8000, 1)[0].image)


@pytest.fixture(scope="module")
def long_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(tmp_path_factory.mktemp("videos") / "long.mp4", video_frames(1002, FRAMES))


def stream_until_result(
    up: Up, jpeg: bytes, timeout_s: float, on_poll: Callable[[], None] = lambda: None
) -> dict:
    """Stream `jpeg` until a frame gets a result (frames may be dropped: a busy or absent
    Triton); a session that is closed (1013) is replaced by a new one. `on_poll` runs before
    every frame."""
    deadline = time.monotonic() + timeout_s
    while True:
        with (
            contextlib.suppress(ConnectionClosed, OSError, TimeoutError),
            connect(up.ws, open_timeout=5, close_timeout=2) as ws,
        ):
            while True:
                on_poll()
                assert time.monotonic() < deadline, f"no result within {timeout_s:g}s"
                ws.send(jpeg)
                reply = json.loads(ws.recv(timeout=max(deadline - time.monotonic(), 0.1)))
                result = reply.get("result")
                if isinstance(result, dict) and "error" not in result:
                    return result
                time.sleep(POLL_S)  # polling interval of a deadline-bounded wait
        on_poll()
        assert time.monotonic() < deadline, f"no result within {timeout_s:g}s"
        time.sleep(POLL_S)  # polling interval of a deadline-bounded wait


def mid_job(up: Up, job_ids: list[str]) -> bool:
    states = [status(up, job_id) for job_id in job_ids]  # type: ignore[arg-type]
    return any(0 < s["progress"]["frames_done"] < s["progress"]["frames_total"] for s in states)


def test_kill_9_of_up_leaves_no_triton_and_the_next_up_resumes_its_job(
    stacks: list[Up], tmp_path: Path, jpeg: bytes, long_video: Path
) -> None:
    data_dir = tmp_path / "data"
    first = start_up(stacks, data_dir, "up-1.log")
    job_ids = [submit(first, long_video, pipeline_id="yolo") for _ in range(2)]  # type: ignore[arg-type]
    poll_until(
        lambda: mid_job(first, job_ids), READY_S, interval_s=0.05, what="a job part-way through"
    )

    assert first.process is not None
    first.process.kill()  # kill -9 of `framegate up` alone: none of its code runs after this
    first.process.wait(timeout=GONE_S)
    poll_until(lambda: not on_data_dir(first.data_dir), GONE_S, what="no Triton process left")

    second = start_up(stacks, data_dir, "up-2.log", triton=first.triton, port=first.port)
    assert "detections" in stream_until_result(second, jpeg, READY_S)
    wait_completed(second, job_ids, timeout_s=READY_S)  # type: ignore[arg-type]
    second.stop()
    with database(second) as conn:  # type: ignore[arg-type]
        rows = conn.execute(
            """
            SELECT j.status, count(r.frame_index), count(DISTINCT r.frame_index), j.frames_total
            FROM jobs j LEFT JOIN job_results r USING (job_id)
            GROUP BY j.job_id, j.status, j.frames_total
            """
        ).fetchall()
    assert rows == [("completed", FRAMES, FRAMES, FRAMES)] * 2  # every frame stored once


def test_kill_9_of_framegate_triton_leaves_no_triton(tmp_path: Path) -> None:
    data_dir, ports = (tmp_path / "data").resolve(), free_ports()
    command = [
        sys.executable, "-m", "api.cli.main", "triton", "--data-dir", str(data_dir),
        "--triton-grpc-port", str(ports.grpc), "--triton-http-port", str(ports.http),
        "--triton-metrics-port", str(ports.metrics),
    ]  # fmt: skip
    owner = processes.spawn(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, die_with_parent=True
    )
    try:
        ready = f"http://127.0.0.1:{ports.http}/v2/health/ready"
        poll_until(lambda: answers(ready), READY_S, interval_s=POLL_S, what="Triton ready")
        assert len(on_data_dir(data_dir)) > 2  # `framegate triton`, tritonserver, its stubs
        owner.kill()
        owner.wait(timeout=GONE_S)
        poll_until(lambda: not on_data_dir(data_dir), GONE_S, what="no Triton process left")
    finally:
        for process in [owner, *on_data_dir(data_dir)]:
            processes.kill(process)


def test_tritonserver_killed_under_up_is_restarted_and_streaming_resumes(
    stacks: list[Up], tmp_path: Path, jpeg: bytes
) -> None:
    up = start_up(stacks, tmp_path / "data", "up.log")
    assert up.process is not None
    api_pid = up.process.pid
    killed = up.tritonserver()
    assert killed is not None
    stubs = processes.tree(killed)[1:]
    assert stubs

    killed.kill()  # kill -9 of tritonserver alone, as an operator (or the OOM killer) would
    killed_at = time.monotonic()

    def health_answers() -> None:
        assert answers(f"{up.http}/health"), "/health stopped answering"

    assert "detections" in stream_until_result(up, jpeg, RECOVERY_S, on_poll=health_answers)
    print(  # reported, not asserted (docs/RELIABILITY.md)
        f"RELIABILITY tritonserver killed under up: first result {time.monotonic() - killed_at:.1f}"
        " s after the kill"
    )

    restarted = up.tritonserver()
    assert restarted is not None and restarted.pid != killed.pid
    assert up.process.pid == api_pid and up.process.poll() is None  # the API never restarted
    poll_until(lambda: not any(processes.alive(s) for s in stubs), GONE_S, what="old stubs to exit")
    log = up.log()
    assert '"event": "triton exited"' in log and '"cause": "killed by SIGKILL"' in log
    assert '"event": "triton restarted"' in log


def test_up_replaces_a_server_an_earlier_run_left_on_its_data_dir(
    stacks: list[Up], tmp_path: Path, jpeg: bytes
) -> None:
    data_dir = (tmp_path / "data").resolve()
    ports = free_ports()
    # What a kill -9 of `up` left before it owned its Triton: a server on the data dir (and its
    # copy of the stub binary, executing) that nobody owns. One model keeps it light.
    earlier = EmbeddedTriton(workdir=data_dir / "triton", ports=ports)
    earlier.workdir.mkdir(parents=True)
    orphan = processes.spawn(
        [*earlier.command(), "--model-control-mode=explicit", "--load-model=yolo"],
        env=server_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        die_with_parent=True,
    )  # fmt: skip
    try:
        poll_until(
            lambda: answers(f"{earlier.http_url}/v2/health/ready"), READY_S, what="the orphan"
        )
        up = start_up(stacks, data_dir, "up.log", triton=ports)
        assert orphan.wait(timeout=GONE_S) is not None  # stopped by `up`, not by us
        assert "detections" in stream_until_result(up, jpeg, READY_S)
    finally:
        processes.kill(orphan)


@pytest.mark.parametrize("option", ["--triton-grpc-port", "--port"])
def test_a_foreign_process_on_a_port_is_one_clear_error_line(tmp_path: Path, option: str) -> None:
    port = free_port()
    listener = processes.spawn(
        [sys.executable, "-c", LISTEN, str(port)], stdout=subprocess.PIPE, die_with_parent=True
    )
    up = Up(tmp_path / "data", tmp_path / "up.log")
    command = up.command()
    command[command.index(option) + 1] = str(port)
    try:
        assert listener.stdout is not None and listener.stdout.readline()
        process = processes.spawn(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, die_with_parent=True
        )
        try:
            output = process.communicate(timeout=120)[0].decode()
        finally:
            processes.kill(process)
    finally:
        processes.kill(listener)
        listener.stdout.close()
    what = "Triton gRPC" if option == "--triton-grpc-port" else "API"
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, output
    assert errors[0].startswith(
        f"error: {what} port {port} on 127.0.0.1 is in use by pid {listener.pid} "
        f"({sys.executable} -c "
    ), output
    assert process.returncode == 1 and "Traceback" not in output
    assert not on_data_dir(up.data_dir)
