"""The local stack for `framegate drill`: `framegate up` as a child process on free ports with its
own data dir and flag file, stopped on every exit path together with everything it started."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from api.core import processes
from api.core.polling import PollTimeout, poll_until
from api.core.processes import free_port
from api.flags.flagfile import set_streaming

UP_LOG_NAME = "framegate-up.log"
FLAG_FILE_NAME = "flags.json"
READY_POLL_S = 0.25
STOP_TIMEOUT_S = 40.0
LEFTOVER_TIMEOUT_S = 5.0


class StackError(RuntimeError):
    """The local stack did not come up; the message carries the end of its log."""


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
    _process: psutil.Popen | None = field(default=None, init=False, repr=False)

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
                # Dies with us, even on SIGKILL (and its Triton with it); SIGINT at its default
                # action, as stop() relies on it even when we were started with it ignored.
                self._process = processes.spawn(
                    self.command(),
                    env=self.environment(),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    die_with_parent=True,
                    default_sigint=True,
                )
            self._wait_ready(timeout_s)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout_s: float) -> None:
        with httpx.Client(timeout=2.0) as client:
            try:
                poll_until(
                    lambda: self._ready(client),
                    timeout_s,
                    interval_s=READY_POLL_S,
                    what="the stack's /ready",
                )
            except PollTimeout:
                raise StackError(
                    f"stack not ready after {timeout_s:g}s:\n{self.log_tail()}"
                ) from None

    def _ready(self, client: httpx.Client) -> bool:
        """One `/ready` check; raises once `framegate up` has exited."""
        assert self._process is not None
        if self._process.poll() is not None:
            raise StackError(
                f"framegate up exited with {self._process.returncode}:\n{self.log_tail()}"
            )
        with contextlib.suppress(httpx.TransportError):
            return client.get(f"{self.url}/ready").status_code == 200
        return False

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
            # SIGINT, not SIGTERM: uvicorn re-raises the signal it caught once it has shut down,
            # and SIGTERM's default action would end `framegate up` before it stops Triton.
            stopped = processes.stop(
                process,
                sig=signal.SIGINT,
                timeout_s=timeout_s,
                leftover_timeout_s=LEFTOVER_TIMEOUT_S,
            )
        leftovers = tuple(pid for pid in stopped.killed if pid != process.pid)
        return StopOutcome(time.monotonic() - started, stopped.graceful, leftovers)

    def __enter__(self) -> LocalStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


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
