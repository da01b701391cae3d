"""The real `tritonserver` binary from the nvidia-pytriton wheel, run as a child process.

The wheel carries the server, the Python backend and per-Python-version stubs. The stub must sit
next to libtriton_python.so, the wheel's bundled libraries must be on LD_LIBRARY_PATH, and the
stub finds its interpreter (and our venv's site-packages) through `python3` on PATH.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODEL_REPOSITORY = REPO_ROOT / "triton_models"


class TritonStartError(RuntimeError):
    pass


@dataclass(frozen=True)
class TritonPorts:
    grpc: int = 8001
    http: int = 8002
    metrics: int = 8003


def pytriton_root() -> Path:
    import pytriton

    root = Path(pytriton.__file__).parent / "tritonserver"
    if not (root / "bin" / "tritonserver").exists():
        raise TritonStartError(
            f"tritonserver binary not found under {root}; is nvidia-pytriton installed?"
        )
    return root


def prepare_backends(workdir: Path) -> Path:
    """A backend directory the server can use: the wheel's python backend plus the stub for the
    running interpreter (the wheel keeps stubs in a separate folder)."""
    root = pytriton_root()
    backends = workdir / "backends"
    python_dir = backends / "python"
    python_dir.mkdir(parents=True, exist_ok=True)
    for item in (root / "backends" / "python").iterdir():
        if item.is_file():
            shutil.copy2(item, python_dir / item.name)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = root / "python_backend_stubs" / version / "triton_python_backend_stub"
    if not stub.exists():
        raise TritonStartError(
            f"no Python backend stub for Python {version} in {stub.parent.parent}"
        )
    shutil.copy2(stub, python_dir / stub.name)
    return backends


def server_env() -> dict[str, str]:
    env = dict(os.environ)
    libs = Path(pytriton_root()).parents[1] / "nvidia_pytriton.libs"
    env["LD_LIBRARY_PATH"] = os.pathsep.join(
        p for p in (str(libs), env.get("LD_LIBRARY_PATH", "")) if p
    )
    # The stub runs `python3` from PATH: put this interpreter's bin first so it sees our venv.
    env["PATH"] = os.pathsep.join((str(Path(sys.executable).parent), env.get("PATH", "")))
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


@dataclass
class EmbeddedTriton:
    workdir: Path
    ports: TritonPorts = field(default_factory=TritonPorts)
    model_repository: Path = DEFAULT_MODEL_REPOSITORY
    model_config_name: str = "cpu"
    host: str = "127.0.0.1"
    # Below the gateway's priority: on a shared box the latency-sensitive event loop must win the
    # CPU over batch compute (in Kubernetes they are separate pods with their own CPU).
    niceness: int = 10
    env: dict[str, str] = field(default_factory=dict)  # on top of server_env()
    _process: subprocess.Popen | None = field(default=None, init=False, repr=False)
    _log: object | None = field(default=None, init=False, repr=False)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def log_path(self) -> Path:
        return self.workdir / "triton.log"

    @property
    def grpc_url(self) -> str:
        return f"{self.host}:{self.ports.grpc}"

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.ports.http}"

    def command(self) -> list[str]:
        backends = prepare_backends(self.workdir)
        nice = ["nice", "-n", str(self.niceness)] if self.niceness and shutil.which("nice") else []
        return [
            *nice,
            str(pytriton_root() / "bin" / "tritonserver"),
            f"--model-repository={self.model_repository}",
            f"--model-config-name={self.model_config_name}",
            f"--backend-directory={backends}",
            f"--grpc-port={self.ports.grpc}",
            f"--http-port={self.ports.http}",
            f"--metrics-port={self.ports.metrics}",
            f"--http-address={self.host}",
            f"--grpc-address={self.host}",
            f"--metrics-address={self.host}",
            "--allow-gpu-metrics=false",
            "--exit-on-error=true",
            "--strict-readiness=true",
            "--log-verbose=0",
        ]

    def start(self, timeout_s: float = 180.0) -> None:
        if self._process is not None:
            raise TritonStartError("Triton is already running")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            self.command(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**server_env(), **self.env},
            start_new_session=True,  # own process group: stop() reaches the stubs too
        )
        try:
            self.wait_ready(timeout_s)
        except BaseException:
            self.stop()
            raise

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self._process is not None and self._process.poll() is not None:
                    raise TritonStartError(
                        f"tritonserver exited with {self._process.returncode}:\n{self.log_tail()}"
                    )
                try:
                    if client.get(f"{self.http_url}/v2/health/ready").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.25)  # polling interval of a deadline-bounded readiness wait
        raise TritonStartError(f"Triton not ready after {timeout_s:.0f}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self, timeout_s: float = 20.0) -> None:
        process, self._process = self._process, None
        if process is not None:
            _terminate_group(process, timeout_s)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> EmbeddedTriton:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _terminate_group(process: subprocess.Popen, timeout_s: float) -> None:
    """SIGTERM the whole group (server + Python stubs), then SIGKILL whatever is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=timeout_s)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # stubs that outlive the server, or a hung server
    process.wait()
