"""`framegate up` as the browser tests' stack: the embedded Triton and the API in one real process
tree, its flag file under the data dir (`framegate up` writes `<data-dir>/flags.json` when no flag
source is configured), flipped as an operator would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from api.core import processes
from api.core.polling import poll_until
from api.flags.flagfile import DEFAULT_FILE_NAME
from api.triton_server.embedded import TritonPorts
from tests.support.api_server import ApiServer
from tests.support.ports import free_port, free_ports

FRAMEGATE = Path(sys.executable).with_name("framegate")  # the installed entry point
READY_S = 300.0  # a cold start loads every model on a busy 2-core machine
STOP_S = 60.0
# Every test stack audits its event loop (`up` passes its environment to the API's settings).
STACK_ENV = {"LOOP_AUDIT": "true", "LOG_LEVEL": "INFO", "ROLE": "all", "FLAG_PROVIDER": "file"}


@dataclass
class UpStack(ApiServer):
    """One `framegate up` process: everything an `ApiServer` offers, plus its Triton's ports."""

    triton: TritonPorts = field(default_factory=free_ports)

    @property
    def triton_grpc(self) -> str:
        return f"127.0.0.1:{self.triton.grpc}"

    def stop(self, sig: int = signal.SIGINT, timeout_s: float = STOP_S) -> int:
        return super().stop(sig, timeout_s)

    def leftovers(self) -> list:
        """Live processes naming the data dir (Triton, its stubs, `up` itself)."""
        return processes.matching(lambda argv: any(str(self.data_dir) in a for a in argv))


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def start_up(workdir: Path, **env: str) -> UpStack:
    """`framegate up` on free ports with its data dir under `workdir`, once `/ready` answers 200
    (Triton's models loaded, DuckDB usable); killed on any failure to get there."""
    if not FRAMEGATE.exists():
        raise AssertionError(f"{FRAMEGATE} is missing: install the project into its venv")
    data_dir = (workdir / "data").resolve()
    port, ports = free_port(), free_ports()
    command = [
        str(FRAMEGATE), "up",
        "--port", str(port),
        "--data-dir", str(data_dir),
        "--triton-grpc-port", str(ports.grpc),
        "--triton-http-port", str(ports.http),
        "--triton-metrics-port", str(ports.metrics),
    ]  # fmt: skip
    stack_env = {**STACK_ENV, **env}
    full_env = {**os.environ, **stack_env}
    full_env.pop("FLAGD_OFFLINE_FLAG_SOURCE_PATH", None)  # `up` writes its own: streaming on
    log_path = workdir / "up.log"
    with log_path.open("ab") as log:
        process = processes.spawn(
            command, env=full_env, stdout=log, stderr=subprocess.STDOUT,
            die_with_parent=True, default_sigint=True,
        )  # fmt: skip
    stack = UpStack(
        port, process, data_dir / DEFAULT_FILE_NAME, data_dir, log_path, stack_env, ports
    )

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"framegate up exited with {process.returncode}:\n{stack.log()}")
        return _answers(f"{stack.http}/ready")

    try:
        poll_until(ready, READY_S, interval_s=0.5, what="framegate up /ready")
    except BaseException:
        stack.stop(signal.SIGKILL, timeout_s=5)
        raise
    return stack
