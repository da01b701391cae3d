"""api/triton_server/supervisor.py with a fake server: restart after an exit, a growing delay
while restarts fail, a clean stop (also in the middle of a restart), and what it logs."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest

from api.core.polling import poll_until
from api.triton_server.embedded import TritonStartError
from api.triton_server.supervisor import Backoff, TritonSupervisor, describe_exit

DEADLINE_S = 30.0
FAST = Backoff(initial_s=0.01, max_s=0.04, reset_after_s=3600)


class FakeTriton:
    """Runs until `crash()`; `start` fails while `failures_left` > 0."""

    def __init__(self, failures_left: int = 0) -> None:
        self.failures_left = failures_left
        self.starts = 0
        self.stops = 0
        self.running = False
        self.pid: int | None = None
        self._exit = threading.Event()
        self._code = 0
        self.block_start: threading.Event | None = None

    def start(self, timeout_s: float, cancel: threading.Event | None = None) -> None:
        self.starts += 1
        if self.block_start is not None and cancel is not None:
            cancel.wait()  # a start that only a stop ends
            raise TritonStartError("start cancelled")
        if self.failures_left:
            self.failures_left -= 1
            raise TritonStartError("tritonserver exited with 1:\nlog line")
        self._exit.clear()
        self.running, self.pid = True, 1000 + self.starts

    def wait_exit(self, timeout_s: float) -> int | None:
        return self._code if self._exit.wait(timeout_s) else None

    def crash(self, code: int = -9) -> None:
        self._code = code
        self.running = False
        self._exit.set()

    def stop(self) -> None:
        self.stops += 1
        self.running = False


@pytest.fixture
def supervised() -> Iterator[tuple[TritonSupervisor, FakeTriton]]:
    triton = FakeTriton()
    supervisor = TritonSupervisor(triton, FAST)  # type: ignore[arg-type]
    supervisor.start()
    yield supervisor, triton
    supervisor.stop()


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def named(self, event: str) -> list[logging.LogRecord]:
        return [r for r in self.records if r.getMessage() == event]

    @property
    def events(self) -> list[str]:
        return [r.getMessage() for r in self.records]


@pytest.fixture
def logged() -> Iterator[Records]:
    """The supervisor's records, caught on its own logger (`framegate` may not propagate)."""
    logger, handler = logging.getLogger("framegate.triton"), Records()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_a_server_that_exits_is_restarted(supervised, logged: Records) -> None:
    supervisor, triton = supervised
    triton.crash(-9)
    poll_until(lambda: supervisor.restarts == 1, DEADLINE_S, what="a restart")
    assert triton.running and triton.pid == 1002
    assert logged.events == ["triton exited", "triton restarted"]
    assert logged.named("triton exited")[0].cause == "killed by SIGKILL"


def test_failed_restarts_are_retried_with_a_growing_delay(supervised, logged: Records) -> None:
    supervisor, triton = supervised
    triton.failures_left = 3
    triton.crash(1)
    poll_until(lambda: supervisor.restarts == 1, DEADLINE_S, what="a restart after three failures")
    assert triton.starts == 1 + 4
    failed = logged.named("triton restart failed")
    assert [r.retry_in_s for r in failed] == [0.02, 0.04, 0.04]  # doubling, capped
    assert failed[0].error == "tritonserver exited with 1:"  # the first line, not the log tail


def test_stop_ends_a_restart_in_progress() -> None:
    triton = FakeTriton()
    supervisor = TritonSupervisor(triton, FAST)  # type: ignore[arg-type]
    supervisor.start()
    triton.block_start = threading.Event()
    triton.crash()
    poll_until(lambda: triton.starts == 2, DEADLINE_S, what="the restart to begin")
    supervisor.stop()
    assert not triton.running and supervisor.restarts == 0


def test_stop_stops_the_server() -> None:
    triton = FakeTriton()
    supervisor = TritonSupervisor(triton, FAST)  # type: ignore[arg-type]
    supervisor.start()
    supervisor.stop()
    assert not triton.running and triton.stops >= 1


def test_a_first_start_that_fails_is_the_callers_error() -> None:
    triton = FakeTriton(failures_left=1)
    supervisor = TritonSupervisor(triton, FAST)  # type: ignore[arg-type]
    with pytest.raises(TritonStartError, match="exited with 1"):
        supervisor.start()
    supervisor.stop()
    assert triton.starts == 1  # no retry: a bad first start is reported, not hidden


def test_backoff_doubles_up_to_its_cap() -> None:
    backoff = Backoff(initial_s=1, max_s=30)
    assert [backoff.delay(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


@pytest.mark.parametrize(
    ("code", "text"),
    [(-9, "killed by SIGKILL"), (1, "exit code 1"), (-200, "killed by signal 200")],
)
def test_describe_exit(code: int, text: str) -> None:
    assert describe_exit(code) == text
