"""`framegate drill --with-guard`: automatic rollback rehearsed for real.

The local stack and `framegate guard` (product thresholds) on its /metrics and flag file;
open-loop sessions stream as cameras do (frames on their own clock, never waiting for
replies); the guard judges that traffic without tripping; then Triton hangs (SIGSTOP of its
process group: the gateway stays up and keeps answering /metrics); the guard must turn the
flag off within `trip_within_s`, the live sessions must close with `streaming_disabled`, and
once Triton resumes `verify` must pass in the off state with the flag still off (the guard
never turns it back on by itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families

from api.core import processes
from api.core.polling import PollTimeout, apoll_until
from api.core.processes import free_port
from api.flags.flagfile import describe, read_document
from api.loadtest.ws_load import LoadConfig, WsLoad
from api.ops.drill import (
    VERIFY_OFF,
    VERIFY_ON,
    DrillFailed,
    DrillOptions,
    DrillReport,
    StepCallback,
    _Drill,
    _Recorder,
    drill_local,
)
from api.ops.probe import Endpoint, synthetic_jpegs
from api.ops.stack import LocalStack
from api.ops.verify import Expect
from api.streaming.protocol import ErrorCode

START_GUARD = "start guard"
STREAM = "stream open-loop"
GUARD_QUIET = "guard quiet on healthy traffic"
HANG_TRITON = "hang Triton"
GUARD_TRIPS = "guard trips the flag"
SESSIONS_DRAINED = "live sessions closed"
RESUME_TRITON = "resume Triton"
FLAG_STAYS_OFF = "flag stays off"
STOP_GUARD = "stop guard"

GUARD_LOG_NAME = "framegate-guard.log"
TRIP_EVENT = "guard tripped: video-streaming turned off"
POLL_S = 0.2
LOG_WAIT_S = 5.0
GUARD_STOP_TIMEOUT_S = 10.0

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class GuardDrillOptions:
    sessions: int = 4
    fps: float = 5.0
    trip_within_s: float = 45.0  # the product promise: Triton hung → flag off
    quiet_rounds: int = 5  # judged rounds without a trip before the fault
    rounds_after_resume: int = 10  # judged-or-idle rounds with Triton back, flag still off
    guard_args: tuple[str, ...] = ()  # extra `framegate guard` options (thresholds, windows)


def guard_drill_local(
    options: DrillOptions,
    guard: GuardDrillOptions,
    data_dir: Path | None = None,
    on_step: StepCallback | None = None,
) -> DrillReport:
    def make(
        endpoint: Endpoint, stack: LocalStack, o: DrillOptions, recorder: _Recorder
    ) -> _GuardDrill:
        return _GuardDrill(endpoint, stack, o, guard, recorder)

    return drill_local(options, data_dir, on_step, make_drill=make)


class GuardProcess:
    """`framegate guard` as a child process, its JSON log in the stack's data dir."""

    def __init__(self, stack: LocalStack, args: tuple[str, ...]) -> None:
        self.port = free_port()
        self.log_path = stack.data_dir / GUARD_LOG_NAME
        self.command = [
            sys.executable, "-m", "api.cli.main", "guard",
            "--metrics-url", f"{stack.url}/metrics",
            "--flag-file", str(stack.flag_file),
            "--host", "127.0.0.1", "--port", str(self.port),
            *args,
        ]  # fmt: skip
        self.process: psutil.Popen | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = processes.spawn(
                self.command, stdout=log, stderr=subprocess.STDOUT, die_with_parent=True
            )

    def stop(self) -> bool:
        process, self.process = self.process, None
        if process is None:
            return True
        return processes.stop(process, sig=signal.SIGTERM, timeout_s=GUARD_STOP_TIMEOUT_S).graceful

    def exited(self) -> int | None:
        return None if self.process is None else self.process.poll()

    async def samples(self) -> dict[str, float]:
        async with httpx.AsyncClient(timeout=3.0) as client:
            text = (await client.get(f"http://127.0.0.1:{self.port}/metrics")).text
        found: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                key = s.name + "".join(f":{v}" for _, v in sorted(s.labels.items()))
                found[key] = s.value
        return found

    def trip_lines(self) -> list[dict]:
        lines = []
        for raw in self.log_path.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                line = json.loads(raw)
                if isinstance(line, dict) and line.get("event") == TRIP_EVENT:
                    lines.append(line)
        return lines


def guard_trips(samples: dict[str, float]) -> float:
    return sum(v for k, v in samples.items() if k.startswith("framegate_guard_trips_total:"))


def guard_rounds(samples: dict[str, float], *verdicts: str) -> float:
    return sum(samples.get(f"framegate_guard_evaluations_total:{v}", 0.0) for v in verdicts)


def triton_process_group(stack: LocalStack) -> int:
    """The process group of the stack's tritonserver (its stubs are in it; the API is not)."""
    assert stack.pid is not None
    own = os.getpgid(stack.pid)
    for child in psutil.Process(stack.pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if child.name() == "tritonserver":
                group = os.getpgid(child.pid)
                if group != own:
                    return group
    raise DrillFailed("no tritonserver in its own process group under framegate up")


@contextlib.contextmanager
def hung(group: int) -> Iterator[None]:
    """SIGSTOP the group; SIGCONT it on every exit path."""
    os.killpg(group, signal.SIGSTOP)
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGCONT)


async def within(
    condition: Callable[[], Awaitable[T]],
    timeout_s: float,
    failure: Callable[[], str],
    interval_s: float = POLL_S,
) -> T:
    """`apoll_until` as a drill step: at the deadline the step fails with `failure()` (what was
    seen by then). A bare `PollTimeout` would read as "no answer" in the report."""
    try:
        return await apoll_until(condition, timeout_s, interval_s=interval_s, what="the drill step")
    except PollTimeout:
        raise DrillFailed(failure()) from None


def left(deadline: float) -> float:
    """Seconds until a `time.monotonic()` deadline set by an earlier step (0 once past)."""
    return max(0.0, deadline - time.monotonic())


class _GuardDrill(_Drill):
    def __init__(
        self,
        endpoint: Endpoint,
        stack: LocalStack,
        options: DrillOptions,
        guard: GuardDrillOptions,
        recorder: _Recorder,
    ) -> None:
        super().__init__(endpoint, stack.flag_file, options, recorder)
        self.stack, self.guard_options = stack, guard
        self.guard = GuardProcess(stack, guard.guard_args)
        self.load: WsLoad | None = None
        self.load_task: asyncio.Task[dict] | None = None
        self.hung_at = self.tripped_at = 0.0

    async def run(self) -> None:
        try:
            await self._step(VERIFY_ON, lambda: self._verify(VERIFY_ON, Expect.ON))
            await self._step(START_GUARD, self._start_guard)
            await self._step(STREAM, self._stream_open_loop)
            await self._step(GUARD_QUIET, self._guard_quiet)
            group = triton_process_group(self.stack)
            with hung(group):
                await self._step(HANG_TRITON, lambda: self._hang(group))
                await self._step(GUARD_TRIPS, self._guard_trips)
                await self._step(SESSIONS_DRAINED, self._sessions_drained)
            await self._step(RESUME_TRITON, self._resume)
            await self._step(VERIFY_OFF, lambda: self._verify(VERIFY_OFF, Expect.OFF))
            await self._step(FLAG_STAYS_OFF, self._flag_stays_off)
        except DrillFailed:
            pass  # recorded; the report says which step
        finally:
            await self._stop_load()
            started = time.monotonic()
            graceful = await asyncio.to_thread(self.guard.stop)
            how = "stopped on SIGTERM" if graceful else "killed"
            self.recorder.record(STOP_GUARD, True, how, started)

    async def _start_guard(self) -> str:
        self.guard.start()
        timeout_s = self.options.timeout_s
        await within(
            self._guard_up, timeout_s, lambda: f"framegate guard not up within {timeout_s:g}s"
        )
        return f"framegate guard serving /metrics on port {self.guard.port}"

    async def _guard_up(self) -> bool:
        with contextlib.suppress(httpx.HTTPError):
            await self.guard.samples()
            return True
        if (code := self.guard.exited()) is not None:
            raise DrillFailed(f"framegate guard exited with {code}: {self._guard_log_tail()}")
        return False

    async def _stream_open_loop(self) -> str:
        g = self.guard_options
        config = LoadConfig(
            url=self.endpoint.http,
            pipeline=self.options.pipeline,
            sessions=g.sessions,
            fps=g.fps,
            duration_s=3600.0,  # until the guard's trip closes the sessions
            token=self.options.token,
        )
        self.load = WsLoad(config, list(synthetic_jpegs()))
        load, task = self.load, asyncio.create_task(self.load.run(), name="guard-drill-load")
        self.load_task = task

        def no_results() -> str:
            errors = {r.error for r in load.records if r.error}
            return f"open-loop sessions got no results (errors: {errors or '-'})"

        async def results_back() -> bool:
            if sum(r.processed for r in load.records) >= g.sessions:
                return True
            if task.done():
                raise DrillFailed(no_results())
            return False

        await within(results_back, self.options.timeout_s, no_results)
        return f"{g.sessions} sessions × {g.fps:g} fps, results coming back"

    async def _guard_quiet(self) -> str:
        wanted = self.guard_options.quiet_rounds
        first = guard_rounds(await self.guard.samples(), "judged")
        judged = 0.0

        async def enough_rounds() -> bool:
            nonlocal judged
            samples = await self.guard.samples()
            if guard_trips(samples) or self._flag_on() is False:
                raise DrillFailed(
                    f"the guard tripped on healthy traffic: {self.guard.trip_lines()}"
                )
            judged = guard_rounds(samples, "judged") - first
            return judged >= wanted

        await within(
            enough_rounds,
            self.options.timeout_s + wanted * 5,
            lambda: f"only {judged:.0f} of {wanted} rounds judged (too little load?)",
        )
        return f"{judged:.0f} judged rounds, no trip"

    async def _hang(self, group: int) -> str:
        self.hung_at = time.monotonic()
        return f"SIGSTOP to Triton's process group {group}"

    async def _guard_trips(self) -> str:
        trip_s = self.guard_options.trip_within_s

        async def flag_off() -> bool:
            return self._flag_on() is False

        await within(
            flag_off,
            left(self.hung_at + trip_s),
            lambda: f"the flag was still on {trip_s:g}s after Triton hung",
        )
        self.tripped_at = time.monotonic()
        seconds = self.tripped_at - self.hung_at
        self.report.timings["guard_trip_s"] = seconds
        line = await self._trip_line()
        return (
            f"flag off {seconds:.1f}s after the hang: {line['signal']} {line['value']:.4g} "
            f"(threshold {line['threshold']:g}, window {line['window_s']:g}s)"
        )

    async def _trip_line(self) -> dict:
        """The guard logs its trip just after writing the flag: wait for the line."""

        async def one_line() -> dict | None:
            lines = self.guard.trip_lines()
            if len(lines) > 1:
                raise DrillFailed(f"expected one trip log line, found {len(lines)}")
            return lines[0] if lines else None

        line = await within(one_line, LOG_WAIT_S, lambda: "expected one trip log line, found 0")
        assert line is not None  # `within` returns the condition's first truthy value
        return line

    async def _sessions_drained(self) -> str:
        assert self.load is not None
        close_s = self.options.close_within_s
        records = [r for r in self.load.records if r.connected]

        async def all_closed() -> bool:
            return all(r.error is not None for r in records)

        def still_open() -> str:
            open_ = sum(r.error is None for r in records)
            return f"{open_} sessions still open {close_s:g}s after the trip"

        await within(all_closed, left(self.tripped_at + close_s), still_open, POLL_S / 4)
        self.report.timings["close_live_sessions_s"] = time.monotonic() - self.tripped_at
        codes = {r.error for r in records if r.error is not None}  # all are, after the wait
        if codes != {str(ErrorCode.STREAMING_DISABLED)}:
            raise DrillFailed(f"sessions ended with {sorted(codes)}, expected streaming_disabled")
        return f"{len(records)} sessions closed with streaming_disabled"

    async def _resume(self) -> str:
        resumed = time.monotonic()  # `hung` sent SIGCONT when its block ended
        timeout_s = self.options.timeout_s
        async with httpx.AsyncClient(timeout=5.0) as client:

            async def ready() -> bool:
                with contextlib.suppress(httpx.HTTPError):
                    return (await client.get(f"{self.endpoint.http}/ready")).status_code == 200
                return False

            await within(ready, timeout_s, lambda: f"/ready not 200 {timeout_s:g}s after SIGCONT")
        self.report.timings["triton_back_s"] = time.monotonic() - resumed
        return "SIGCONT; /ready answers 200"

    async def _flag_stays_off(self) -> str:
        wanted = self.guard_options.rounds_after_resume
        first = guard_rounds(await self.guard.samples(), "judged", "idle")
        samples: dict[str, float] = {}
        rounds = 0.0

        async def enough_rounds() -> bool:
            nonlocal samples, rounds
            samples = await self.guard.samples()
            if self._flag_on() is not False:
                raise DrillFailed("the flag was turned back on")
            rounds = guard_rounds(samples, "judged", "idle") - first
            return rounds >= wanted

        await within(
            enough_rounds,
            self.options.timeout_s + wanted * 5,
            lambda: f"the guard made only {rounds:.0f} rounds of {wanted}",
        )
        if (trips := guard_trips(samples)) != 1:
            raise DrillFailed(f"framegate_guard_trips_total is {trips:g}, expected 1")
        return f"still off after {rounds:.0f} more rounds with Triton back; 1 trip"

    async def _stop_load(self) -> None:
        if self.load_task is not None and not self.load_task.done():
            self.load_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.load_task

    def _flag_on(self) -> bool | None:
        return describe(read_document(self.flag_file)).value

    def _guard_log_tail(self) -> str:
        if not self.guard.log_path.exists():
            return ""
        return "\n".join(self.guard.log_path.read_text(errors="replace").splitlines()[-10:])
