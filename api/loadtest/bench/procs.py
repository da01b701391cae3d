"""The benchmark's servers: an embedded Triton (or a given one) and uvicorn processes for the
gateway under test, each in its own process group, stopped with its whole tree
(`api/core/processes.py`)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from api.core import processes
from api.core.polling import poll_until
from api.core.processes import free_port

REPO_ROOT = Path(__file__).resolve().parents[3]
HEALTH_POLL_S = 0.1


@dataclass
class Subprocess:
    name: str
    process: psutil.Popen
    port: int
    log_path: Path

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM, SIGKILL after `timeout_s`, then SIGKILL any child still alive; reaped."""
        processes.stop(self.process, sig=signal.SIGTERM, timeout_s=timeout_s)


def start_gateway(
    name: str, workdir: Path, env: dict[str, str], timeout_s: float = 120.0
) -> Subprocess:
    """The API exactly as deployed (`framegate serve`) in its own process group."""
    return _start(name, [sys.executable, "-m", "api.cli.main", "serve"], workdir, env, timeout_s)


def start_uvicorn(
    name: str, factory: str, workdir: Path, env: dict[str, str], timeout_s: float = 120.0
) -> Subprocess:
    """Any other ASGI app (`uvicorn --factory`), with the gateway's server settings so the rows
    compare architectures, not uvicorn options."""
    command = [
        sys.executable, "-m", "uvicorn", "--factory", factory, "--ws-per-message-deflate", "false",
    ]  # fmt: skip
    return _start(name, command, workdir, env, timeout_s)


def _start(
    name: str, command: list[str], workdir: Path, env: dict[str, str], timeout_s: float
) -> Subprocess:
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as log:
        process = processes.spawn(
            [*command, "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            env={**os.environ, **env}, stdin=None, stdout=log, stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
        )  # fmt: skip
    server = Subprocess(name, process, port, log_path)
    try:
        _wait_healthy(server, timeout_s)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_healthy(server: Subprocess, timeout_s: float) -> None:
    what = f"{server.name} /health"
    poll_until(lambda: _healthy(server), timeout_s, interval_s=HEALTH_POLL_S, what=what)


def _healthy(server: Subprocess) -> bool:
    """One /health check; raises once the server has exited."""
    if server.process.poll() is not None:
        raise RuntimeError(
            f"{server.name} exited with {server.process.returncode}:\n{server.log_tail()}"
        )
    with contextlib.suppress(httpx.TransportError):
        return httpx.get(f"{server.http}/health", timeout=1).status_code == 200
    return False


def default_budget_ms() -> float:
    from api.core.config import Settings

    return float(Settings.model_fields["stream_latency_budget_ms"].default)


def api_env(
    triton_url: str, workdir: Path, batching: bool, budget_ms: float | None = None
) -> dict[str, str]:
    """The gateway's environment for one row: streaming on, nothing else running."""
    from api.flags.flagfile import write_default

    workdir.mkdir(parents=True, exist_ok=True)
    flag_file = workdir / "flags.json"
    write_default(flag_file)
    env = {
        "ROLE": "stream",
        "TRITON_URL": triton_url,
        "DATA_DIR": str(workdir / "data"),
        "FLAG_PROVIDER": "file",
        "FLAGD_OFFLINE_FLAG_SOURCE_PATH": str(flag_file),
        "LOG_LEVEL": "WARNING",
        "STREAM_MAX_SESSIONS": "256",
    }
    if not batching:
        env.update({"BATCH_MAX_SIZE": "1", "BATCH_MAX_INFLIGHT": "256"})
    # Always explicit, so a value in the caller's environment cannot change what a row means.
    env["STREAM_LATENCY_BUDGET_MS"] = f"{default_budget_ms() if budget_ms is None else budget_ms:g}"
    return env


@contextlib.contextmanager
def triton_server(url: str | None, workdir: Path) -> Iterator[str]:
    """The given Triton's gRPC URL, or a fresh embedded one's (stopped on the way out)."""
    if url:
        yield url
        return
    from api.triton_server.embedded import EmbeddedTriton, TritonPorts

    server = EmbeddedTriton(
        workdir=workdir / "triton",
        ports=TritonPorts(grpc=free_port(), http=free_port(), metrics=free_port()),
    )
    try:
        server.start(timeout_s=300)
        yield server.grpc_url
    finally:
        server.stop()
