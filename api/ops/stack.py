"""The local stack for `framegate drill`: `framegate up` as a child process on free ports with its
own data dir and flag file, stopped on every exit path together with everything it started."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from api.flags.flagfile import set_streaming

UP_LOG_NAME = "framegate-up.log"
FLAG_FILE_NAME = "flags.json"
READY_POLL_S = 0.25
STOP_TIMEOUT_S = 40.0
LEFTOVER_TIMEOUT_S = 5.0


class StackError(RuntimeError):
    """The local stack did not come up; the message carries the end of its log."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass(frozen=True, slots=True)
class StopOutcome:
    seconds: float
    graceful: bool  # `framegate up` exited on SIGINT within the timeout
    killed: tuple[int, ...]  # leftover descendants that had to be SIGKILLed


@dataclass
class LocalStack:
    """`framegate up` (embedded Triton on the CPU + the API) with the file flag provider reading
    `<data_dir>/flags.json`. The child runs in its own session: a Ctrl-C meant for the drill
    does not reach it, and `stop()` shuts it down in order (API first, then Triton)."""

    data_dir: Path
    host: str = "127.0.0.1"
    stream_auth_token: str | None = None
    port: int = field(default_factory=free_port)
    _process: subprocess.Popen | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.data_dir = self.data_dir.resolve()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def flag_file(self) -> Path:
        return self.data_dir / FLAG_FILE_NAME

    @property
    def log_path(self) -> Path:
        return self.data_dir / UP_LOG_NAME

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "api.cli.main", "up",
            "--host", self.host,
            "--port", str(self.port),
            "--data-dir", str(self.data_dir),
            "--triton-grpc-port", str(free_port(self.host)),
            "--triton-http-port", str(free_port(self.host)),
            "--triton-metrics-port", str(free_port(self.host)),
        ]  # fmt: skip

    def environment(self) -> dict[str, str]:
        return {
            **os.environ,
            "ROLE": "all",
            "STREAMING_ROUTER": "true",
            "FLAG_PROVIDER": "file",
            "FLAGD_OFFLINE_FLAG_SOURCE_PATH": str(self.flag_file),
            "STREAM_AUTH_TOKEN": self.stream_auth_token or "",
        }

    def start(self, timeout_s: float) -> None:
        """Start and wait until `/ready` answers 200; on any failure everything is stopped."""
        if self._process is not None:
            raise StackError("LocalStack.start: expected a stopped stack, it is running")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        set_streaming(self.flag_file, True)
        try:
            with self.log_path.open("ab") as log:
                self._process = subprocess.Popen(
                    self.command(),
                    env=self.environment(),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            self._wait_ready(timeout_s)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                assert self._process is not None
                if self._process.poll() is not None:
                    raise StackError(
                        f"framegate up exited with {self._process.returncode}:\n{self.log_tail()}"
                    )
                with contextlib.suppress(httpx.TransportError):
                    if client.get(f"{self.url}/ready").status_code == 200:
                        return
                time.sleep(READY_POLL_S)  # polling interval of a deadline-bounded wait
        raise StackError(f"stack not ready after {timeout_s:g}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        parts = []
        for path in (self.log_path, self.data_dir / "triton" / "triton.log"):
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {path}\n" + "\n".join(tail))
        return "\n".join(parts)

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> StopOutcome | None:
        """SIGINT (`framegate up` then stops the API and Triton), SIGKILL after `timeout_s`, then
        SIGKILL any process it started that is still alive. Ctrl-C is held off meanwhile."""
        process, self._process = self._process, None
        if process is None:
            return None
        started = time.monotonic()
        with _signals_held():
            tree = process_tree(process.pid)
            graceful = _interrupt(process, timeout_s)
            killed = _kill_leftovers(tree, LEFTOVER_TIMEOUT_S)
        return StopOutcome(time.monotonic() - started, graceful, killed)

    def __enter__(self) -> LocalStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _interrupt(process: subprocess.Popen, timeout_s: float) -> bool:
    # SIGINT, not SIGTERM: uvicorn re-raises the signal it caught once it has shut down, and
    # SIGTERM's default action would end `framegate up` before it stops Triton.
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=timeout_s)
        return True
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return False


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


ProcessId = tuple[int, int]  # (pid, start time in clock ticks): a pid that cannot be reused


def process_tree(root: int) -> list[ProcessId]:
    """`root` and all its descendants, from /proc."""
    children: dict[int, list[ProcessId]] = {}
    identities: dict[int, ProcessId] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            parent, started = stat
            identity = (int(entry.name), started)
            identities[identity[0]] = identity
            children.setdefault(parent, []).append(identity)
    if root not in identities:
        return []
    tree, queue = [], [identities[root]]
    while queue:
        identity = queue.pop()
        tree.append(identity)
        queue.extend(children.get(identity[0], []))
    return tree


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time) of a live process; None if it is gone or a zombie."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # the command name may hold spaces
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[1]), int(fields[19])


def _alive(identity: ProcessId) -> bool:
    stat = _stat(identity[0])
    return stat is not None and stat[1] == identity[1]


def _kill_leftovers(tree: list[ProcessId], timeout_s: float) -> tuple[int, ...]:
    """Give stopped processes `timeout_s` to disappear, then SIGKILL the ones still there (the
    start time check makes sure a reused pid is never hit)."""
    deadline = time.monotonic() + timeout_s
    while (alive := [p for p in tree if _alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.1)  # polling interval of a deadline-bounded wait
    for pid, _ in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return tuple(pid for pid, _ in alive)
