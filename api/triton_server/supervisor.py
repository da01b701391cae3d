"""Keeps the embedded Triton running for `framegate up|triton`: the first start happens in the
caller's thread (a failure there is the command's error); afterwards a thread of its own waits on
the server and restarts it, with a growing delay, whenever it exits or crashes. The API never
restarts: its gRPC channels reconnect to the new server on their own.

PR_SET_PDEATHSIG fires when the thread that started the child exits, so the caller's thread must
live as long as the supervisor (the main thread does), and the watcher stops its server before it
returns.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass

from api.triton_server.embedded import EmbeddedTriton

log = logging.getLogger("framegate.triton")

START_TIMEOUT_S = 180.0
WATCH_POLL_S = 0.5


@dataclass(frozen=True, slots=True)
class Backoff:
    initial_s: float = 1.0
    max_s: float = 30.0
    # A server that ran this long was healthy: its next exit starts the backoff over.
    reset_after_s: float = 60.0

    def delay(self, failures: int) -> float:
        return min(self.initial_s * 2 ** max(failures - 1, 0), self.max_s)


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class TritonSupervisor:
    def __init__(
        self,
        triton: EmbeddedTriton,
        backoff: Backoff | None = None,
        start_timeout_s: float = START_TIMEOUT_S,
    ) -> None:
        self.triton = triton
        self.backoff = backoff or Backoff()
        self.start_timeout_s = start_timeout_s
        self.restarts = 0
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the server (raises `TritonStartError` when it cannot), then watch it."""
        if self._thread is not None:
            raise RuntimeError("TritonSupervisor.start: expected a stopped supervisor")
        self.triton.start(self.start_timeout_s)
        self._thread = threading.Thread(target=self._watch, name="triton-supervisor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching and stop the server (also one that is being restarted)."""
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()  # the watcher stops the server on its way out
        else:
            self.triton.stop()

    def _watch(self) -> None:
        failures, since = 0, time.monotonic()
        try:
            while not self._stopping.is_set():
                code = self.triton.wait_exit(WATCH_POLL_S)
                if code is None:
                    continue
                if time.monotonic() - since >= self.backoff.reset_after_s:
                    failures = 0
                failures += 1
                log.warning(
                    "triton exited",
                    extra={
                        "cause": describe_exit(code),
                        "restart_in_s": self.backoff.delay(failures),
                    },
                )
                while not self._restart(failures):
                    failures += 1
                since = time.monotonic()
        finally:
            self.triton.stop()

    def _restart(self, failures: int) -> bool:
        """One restart attempt after its delay; True when the server is back (or we stop)."""
        self.triton.stop()  # reaps what is left, frees the work dir
        delay = self.backoff.delay(failures)
        if self._stopping.wait(delay):
            return True
        try:
            self.triton.start(self.start_timeout_s, cancel=self._stopping)
        except Exception as exc:
            if self._stopping.is_set():
                return True
            retry = self.backoff.delay(failures + 1)
            first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log.error("triton restart failed", extra={"error": first_line, "retry_in_s": retry})
            return False
        self.restarts += 1
        log.warning(
            "triton restarted",
            extra={"pid": self.triton.pid, "restarts": self.restarts, "after_s": delay},
        )
        return True
