"""The real `tritonserver` binary from the nvidia-pytriton wheel, run as a child process.

The wheel carries the server, the Python backend and per-Python-version stubs. The stub must sit
next to libtriton_python.so, the wheel's bundled libraries must be on LD_LIBRARY_PATH, and the
stub finds its interpreter (and our venv's site-packages) through `python3` on PATH.

A server belongs to its work dir: one owner at a time (a lock file), started so that it dies with
its owner, even on SIGKILL (the kernel kills the server; a watchdog kills its process group, since
a stub busy in `execute()` when its server dies does not always exit), and whatever an earlier
owner left there (a server, stubs, their shared memory) is stopped or removed before the next
start.
"""

from __future__ import annotations

import contextlib
import fcntl
import filecmp
import os
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
import psutil

from api.core import processes
from api.core.polling import PollTimeout, poll_until

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODEL_REPOSITORY = REPO_ROOT / "triton_models"
STUB_NAME = "triton_python_backend_stub"
LOCK_NAME = "triton.lock"
SHM_LIST_NAME = "triton.shm"  # shared memory regions of the running server's stubs
SHM_DIR = Path("/dev/shm")
SHM_PREFIX = "triton_python_backend_shm_region_"
READY_POLL_S = 0.25
STALE_STOP_TIMEOUT_S = 10.0
PORT_NAMES = {"grpc": "gRPC", "http": "HTTP", "metrics": "metrics"}


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


def install(source: Path, target: Path) -> None:
    """Copy unless identical, through a temp file and a rename: a stub or library that a running
    (or orphaned) server still executes cannot be written in place (ETXTBSY, or a corrupted
    mapping), but it can be replaced."""
    if target.exists() and filecmp.cmp(source, target, shallow=False):
        return
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(fd)
    try:
        shutil.copy2(source, temp)
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def prepare_backends(workdir: Path) -> Path:
    """A backend directory the server can use: the wheel's python backend plus the stub for the
    running interpreter (the wheel keeps stubs in a separate folder)."""
    root = pytriton_root()
    backends = workdir / "backends"
    python_dir = backends / "python"
    python_dir.mkdir(parents=True, exist_ok=True)
    for item in (root / "backends" / "python").iterdir():
        if item.is_file():
            install(item, python_dir / item.name)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = root / "python_backend_stubs" / version / STUB_NAME
    if not stub.exists():
        raise TritonStartError(
            f"no Python backend stub for Python {version} in {stub.parent.parent}"
        )
    install(stub, python_dir / STUB_NAME)
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
    _process: psutil.Popen | None = field(default=None, init=False, repr=False)
    _log: IO[bytes] | None = field(default=None, init=False, repr=False)
    _lock: IO[str] | None = field(default=None, init=False, repr=False)
    _guard: processes.GroupGuard | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        # Absolute: the command line names it, and finding a stale server compares command lines.
        self.workdir = Path(self.workdir).resolve()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def process(self) -> psutil.Popen | None:
        return self._process

    @property
    def log_path(self) -> Path:
        return self.workdir / "triton.log"

    @property
    def backends(self) -> Path:
        return self.workdir / "backends"

    @property
    def grpc_url(self) -> str:
        return f"{self.host}:{self.ports.grpc}"

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.ports.http}"

    def command(self) -> list[str]:
        backends = prepare_backends(self.workdir)
        return [
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

    def start(self, timeout_s: float = 180.0, cancel: threading.Event | None = None) -> None:
        """Start and wait until ready; on any failure (or `cancel` set) everything is stopped.
        The calling thread must live as long as the server: the kernel kills the server when
        the thread that started it exits (PR_SET_PDEATHSIG)."""
        if self._process is not None:
            raise TritonStartError("Triton is already running")
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self._acquire()
            self._clear_stale()
            for name, port in vars(self.ports).items():
                processes.require_free(self.host, port, f"Triton {PORT_NAMES[name]}")
            command = self.command()
            self._log = self.log_path.open("ab")
            self._process = processes.spawn(
                command,
                env={**server_env(), **self.env},
                stdout=self._log,
                stderr=self._log,
                die_with_parent=True,
                niceness=self.niceness,
            )
            # The kernel kills the server with us; its stubs (same process group) need this.
            self._guard = processes.GroupGuard(self._process.pid)
            self.wait_ready(timeout_s, cancel)
            self._record_shm()
        except processes.PortInUse as exc:
            self.stop()
            raise TritonStartError(str(exc)) from None
        except BaseException:
            self.stop()
            raise

    def wait_ready(self, timeout_s: float, cancel: threading.Event | None = None) -> None:
        with httpx.Client(timeout=2.0) as client:
            try:
                poll_until(
                    lambda: self._ready(client, cancel),
                    timeout_s,
                    interval_s=READY_POLL_S,
                    what="Triton ready",
                )
            except PollTimeout:
                raise TritonStartError(
                    f"Triton not ready after {timeout_s:.0f}s:\n{self.log_tail()}"
                ) from None

    def _ready(self, client: httpx.Client, cancel: threading.Event | None) -> bool:
        """One readiness check; raises when waiting any longer is pointless."""
        if cancel is not None and cancel.is_set():
            raise TritonStartError("start cancelled")
        if self._process is not None and self._process.poll() is not None:
            raise TritonStartError(
                f"tritonserver exited with {self._process.returncode}:\n{self.log_tail()}"
            )
        with contextlib.suppress(httpx.TransportError):
            return client.get(f"{self.http_url}/v2/health/ready").status_code == 200
        return False

    def wait_exit(self, timeout_s: float) -> int | None:
        """The server's exit status once it has exited (reaped), None while it runs."""
        if self._process is None:
            raise TritonStartError("Triton was not started")
        try:
            return self._process.wait(timeout=timeout_s)
        except psutil.TimeoutExpired:
            return None

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM the server (it stops its stubs), SIGKILL what is left after `timeout_s`, then
        remove what a crashed server leaves: stubs that outlived it, their shared memory."""
        process, self._process = self._process, None
        try:
            if process is not None:
                processes.stop(process, sig=signal.SIGTERM, timeout_s=timeout_s)
            if self._lock is not None:
                self._clear_stale()
        finally:
            if self._guard is not None:
                self._guard.release()
                self._guard = None
            if self._log is not None:
                self._log.close()
                self._log = None
            self._release()

    def __enter__(self) -> EmbeddedTriton:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- ownership of the work dir ------------------------------------------------------------

    def _acquire(self) -> None:
        """One owner per work dir: an flock, which the kernel drops when its holder dies (a
        stale lock file from a killed run never blocks). The file names the owner's pid."""
        if self._lock is not None:
            return
        lock = (self.workdir / LOCK_NAME).open("a+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            owner = lock.read().strip() or "unknown"
            lock.close()
            raise TritonStartError(
                f"{self.workdir} is in use by another framegate (pid {owner})"
            ) from None
        lock.truncate(0)
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        self._lock = lock

    def _release(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.close()  # closing the only descriptor drops the flock

    def _is_stub(self, argv: Sequence[str]) -> bool:
        return argv[0] == str(self.backends / "python" / STUB_NAME)

    def _ours(self, argv: Sequence[str]) -> bool:
        """A tritonserver on this work dir's backends, or one of its stubs."""
        return self._is_stub(argv) or f"--backend-directory={self.backends}" in argv

    def _clear_stale(self) -> None:
        """With the lock held, any server or stub on this work dir was left by an earlier owner
        (or by our own server that crashed): stop it, and free its shared memory."""
        for server in processes.matching(lambda argv: self._ours(argv) and not self._is_stub(argv)):
            processes.stop(server, timeout_s=STALE_STOP_TIMEOUT_S)  # it stops its stubs
        for stub in processes.matching(self._is_stub):  # stubs ignore SIGTERM: their server
            processes.kill(stub)  # is gone, nothing else would stop them
        shm_list = self.workdir / SHM_LIST_NAME
        with contextlib.suppress(FileNotFoundError):
            for name in shm_list.read_text().split():
                if name.startswith(SHM_PREFIX):
                    (SHM_DIR / name).unlink(missing_ok=True)
            shm_list.unlink()

    def _record_shm(self) -> None:
        """The stubs' shared memory regions (argv[2]): a server killed with SIGKILL cannot unlink
        them, so the next start or stop on this work dir does."""
        if self._process is None:
            return
        argvs = [_argv(p) for p in processes.tree(self._process)[1:]]
        names = sorted(
            {a[2] for a in argvs if self._is_stub(a) and a[2:3] and a[2].startswith(SHM_PREFIX)}
        )
        temp = self.workdir / f".{SHM_LIST_NAME}.tmp"
        temp.write_text("".join(f"{n}\n" for n in names))
        os.replace(temp, self.workdir / SHM_LIST_NAME)


def _argv(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline() or [""]
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return [""]
