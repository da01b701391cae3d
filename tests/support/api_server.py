"""A real API process for tests (`python -m api.cli.main serve` against a given Triton), and the
helpers tests use with it: start, poll, stop, read its metrics and loop audit. Plain module, not
a conftest: the fixtures in tests/*/conftest.py build on it, and so may any test."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families

from api.core import processes
from api.core.polling import poll_until
from api.flags.flagfile import set_streaming, write_default
from tests.support.ports import free_port


@dataclass
class ApiServer:
    port: int
    process: psutil.Popen
    flag_file: Path
    data_dir: Path
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws(self, pipeline_id: str | None = "yolo_ocr", **query: str) -> str:
        params = dict(query)
        if pipeline_id is not None:
            params["pipeline_id"] = pipeline_id
        qs = "&".join(f"{k}={v}" for k, v in params.items())
        return f"ws://127.0.0.1:{self.port}/ws/video/stream" + (f"?{qs}" if qs else "")

    def metrics(self) -> dict[str, float]:
        """Flattened samples: 'name{label="v",...}' -> value."""
        text = httpx.get(f"{self.http}/metrics", timeout=5).text
        samples: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
                samples[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
        return samples

    def blocking_calls(self) -> dict[str, float]:
        """What the server's loop audit caught on its event loop thread (LOOP_AUDIT=true)."""
        prefix = "framegate_loop_blocking_calls_total{"
        return {k: v for k, v in self.metrics().items() if k.startswith(prefix) and v}

    def rss_bytes(self) -> int:
        return int(psutil.Process(self.process.pid).memory_info().rss)

    def set_flag(self, on: bool) -> None:
        set_streaming(self.flag_file, on)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 20) -> int:
        """`sig`, SIGKILL (the whole tree) after `timeout_s`; the exit status."""
        processes.stop(self.process, sig=sig, timeout_s=timeout_s)
        return self.process.returncode


def start_api(
    triton_grpc: str, workdir: Path, *, uvicorn_log_level: str = "warning", **env: str
) -> ApiServer:
    workdir.mkdir(parents=True, exist_ok=True)
    flag_file = workdir / "flags.json"
    write_default(flag_file)
    port = free_port()
    full_env = {
        **os.environ,
        "TRITON_URL": triton_grpc,
        "DATA_DIR": str(workdir / "data"),
        "FLAG_PROVIDER": "file",
        "FLAGD_OFFLINE_FLAG_SOURCE_PATH": str(flag_file),
        "LOG_LEVEL": "INFO",
        # Every test server audits its event loop; the fixtures fail a test that blocked it.
        "LOOP_AUDIT": "true",
        **env,
    }
    log_path = workdir / "api.log"
    with log_path.open("wb") as log:
        process = processes.spawn(
            [sys.executable, "-m", "api.cli.main", "serve",
             "--host", "127.0.0.1", "--port", str(port), "--log-level", uvicorn_log_level],
            env=full_env, stdout=log, stderr=subprocess.STDOUT, die_with_parent=True,
        )  # fmt: skip
    server = ApiServer(port, process, flag_file, workdir / "data", log_path, env)

    def healthy() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"API exited with {process.returncode}:\n{server.log()}")
        try:
            return httpx.get(f"{server.http}/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        poll_until(healthy, 60, what="API /health")
    except BaseException:
        server.stop(signal.SIGKILL)
        raise
    return server


def stop_all(servers: list[ApiServer]) -> None:
    """Check every server's loop audit, then stop them all (whatever the check said)."""
    try:
        for server in servers:
            assert_loop_never_blocked(server)
    finally:
        for server in servers:
            server.stop()


def assert_loop_never_blocked(server: ApiServer) -> None:
    if server.process.poll() is None and server.env.get("LOOP_AUDIT") != "false":
        assert server.blocking_calls() == {}, "blocking calls ran on the API's event loop"


def parse(message: str | bytes) -> dict:
    return json.loads(message)
