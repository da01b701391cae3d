"""`framegate drill`: the rollback plan's "Testing Rollback" run for real.

Verify (on) → stream in a live session → flip the flag off → the live session is closed with
`streaming_disabled` (1001) within `close_within_s` → new upgrades get 404 → verify (off) → flip
on → a frame is processed again → verify (on). Each step is timed; the first failure ends the
drill with a message that names the step.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
from websockets.exceptions import InvalidStatus, WebSocketException

from api.flags.flagfile import FlagFileError, parse_document, set_streaming, write_document
from api.ops.probe import (
    HTTP_NOT_FOUND,
    Endpoint,
    LiveSession,
    ProbeError,
    describe_result,
    end_text,
    process_one_frame,
    refused_text,
    synthetic_jpegs,
    upgrade_status,
)
from api.ops.stack import LocalStack, StackError
from api.ops.verify import Expect, VerifyOptions, VerifyReport, run_verify
from api.streaming.protocol import WS_1001_GOING_AWAY, ErrorCode

RETRY_PAUSE_S = 0.1

START_STACK = "start stack"
VERIFY_ON = "verify on"
STREAM = "stream"
FLIP_OFF = "flip off"
SESSION_CLOSED = "live session closed"
UPGRADES_REFUSED = "upgrades refused"
VERIFY_OFF = "verify off"
FLIP_ON = "flip on"
STREAMING_BACK = "streaming back"
VERIFY_ON_AGAIN = "verify on again"
STOP_STACK = "stop stack"


class DrillFailed(Exception):
    """A step's failure; the message is the step's detail."""


# What a step may run into talking to a server or editing the flag file: a failed step, not a crash.
STEP_ERRORS = (ProbeError, WebSocketException, FlagFileError, httpx.TransportError, OSError)


@dataclass(frozen=True, slots=True)
class DrillOptions:
    pipeline: str = "yolo_ocr"
    token: str | None = None
    timeout_s: float = 30.0  # each verify check, opening a session, a frame's result
    close_within_s: float = 2.0  # flip off → live session closed
    flip_deadline_s: float = 10.0  # flip → new upgrades refused / a frame processed again
    frames_before_flip: int = 3
    start_timeout_s: float = 300.0  # local stack: until /ready


@dataclass(frozen=True, slots=True)
class Step:
    number: int
    name: str
    ok: bool
    detail: str
    duration_s: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.number,
            "name": self.name,
            "ok": self.ok,
            "detail": self.detail,
            "duration_s": round(self.duration_s, 4),
        }


@dataclass
class DrillReport:
    url: str | None = None
    flag_file: str | None = None
    local_stack: bool = False
    data_dir: str | None = None
    steps: list[Step] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    verifications: dict[str, VerifyReport] = field(default_factory=dict)
    failure: str | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None and bool(self.steps) and all(s.ok for s in self.steps)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "failure": self.failure,
            "url": self.url,
            "flag_file": self.flag_file,
            "local_stack": self.local_stack,
            "data_dir": self.data_dir,
            "timings": {name: round(value, 4) for name, value in self.timings.items()},
            "steps": [step.to_dict() for step in self.steps],
            "verifications": {name: r.to_dict() for name, r in self.verifications.items()},
        }


StepCallback = Callable[[Step], None]


class _Recorder:
    """Numbers, times and records steps; the first failure becomes the report's `failure`."""

    def __init__(self, report: DrillReport, on_step: StepCallback | None) -> None:
        self.report = report
        self._on_step = on_step

    def record(self, name: str, ok: bool, detail: str, started: float) -> Step:
        step = Step(len(self.report.steps) + 1, name, ok, detail, time.monotonic() - started)
        self.report.steps.append(step)
        if not ok and self.report.failure is None:
            self.report.failure = f"step {step.number} '{name}' failed: {detail}"
        if self._on_step is not None:
            self._on_step(step)
        return step


class _Drill:
    def __init__(
        self, endpoint: Endpoint, flag_file: Path, options: DrillOptions, recorder: _Recorder
    ) -> None:
        self.endpoint = endpoint
        self.flag_file = flag_file
        self.options = options
        self.recorder = recorder
        self.report = recorder.report
        self.session: LiveSession | None = None
        self.flipped_at = 0.0

    async def run(self) -> None:
        try:
            await self._step(VERIFY_ON, lambda: self._verify(VERIFY_ON, Expect.ON))
            await self._step(STREAM, self._stream)
            await self._step(FLIP_OFF, lambda: self._flip(on=False))
            await self._step(SESSION_CLOSED, self._session_closed)
            await self._step(UPGRADES_REFUSED, self._upgrades_refused)
            await self._step(VERIFY_OFF, lambda: self._verify(VERIFY_OFF, Expect.OFF))
            await self._step(FLIP_ON, lambda: self._flip(on=True))
            await self._step(STREAMING_BACK, self._streaming_back)
            await self._step(VERIFY_ON_AGAIN, lambda: self._verify(VERIFY_ON_AGAIN, Expect.ON))
        except DrillFailed:
            pass  # recorded; the report says which step
        finally:
            if self.session is not None:
                await self.session.close()

    async def _step(self, name: str, action: Callable[[], Awaitable[str]]) -> None:
        started = time.monotonic()
        try:
            detail = await action()
        except DrillFailed as exc:
            self.recorder.record(name, False, str(exc), started)
            raise
        except TimeoutError as exc:
            text = f"no answer within {self.options.timeout_s:g}s"
            self.recorder.record(name, False, text, started)
            raise DrillFailed(text) from exc
        except STEP_ERRORS as exc:
            text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            self.recorder.record(name, False, text, started)
            raise DrillFailed(text) from exc
        self.recorder.record(name, True, detail, started)

    async def _verify(self, name: str, expect: Expect) -> str:
        report = await run_verify(
            VerifyOptions(self.endpoint, expect=expect, timeout_s=self.options.timeout_s)
        )
        self.report.verifications[name] = report
        if not report.ok:
            raise DrillFailed(f"verify --expect-streaming {expect}: {report.summary()}")
        return f"{len(report.checks)} checks passed, streaming {report.streaming}"

    async def _stream(self) -> str:
        self.session = LiveSession(self.endpoint, synthetic_jpegs())
        await self.session.open(self.options.timeout_s)
        count = self.options.frames_before_flip
        await self.session.wait_results(count, self.options.timeout_s)
        return f"live session open, {count} frames processed"

    async def _flip(self, on: bool) -> str:
        result = await asyncio.to_thread(set_streaming, self.flag_file, on)
        self.flipped_at = time.monotonic()
        return f"{self.flag_file}: video-streaming {result.label}"

    async def _session_closed(self) -> str:
        assert self.session is not None
        within = self.options.close_within_s
        remaining = max(0.0, self.flipped_at + within - time.monotonic())
        try:
            end = await self.session.wait_end(remaining)
        except TimeoutError:
            hint = await self._flag_source_hint()
            raise DrillFailed(
                f"the live session was still open {within:g}s after the flag was turned off "
                f"in {self.flag_file}{hint}"
            ) from None
        seconds = end.at - self.flipped_at
        self.report.timings["close_live_session_s"] = seconds
        code = end.error.get("error") if end.error else None
        if code != ErrorCode.STREAMING_DISABLED or end.close_code != WS_1001_GOING_AWAY:
            raise DrillFailed(
                f"the live session ended with {end_text(end)}; expected error "
                f"{ErrorCode.STREAMING_DISABLED} and close code {WS_1001_GOING_AWAY}"
            )
        return f"closed with {code} ({end.close_code}) {seconds:.2f}s after the flip"

    async def _upgrades_refused(self) -> str:
        deadline = self.flipped_at + self.options.flip_deadline_s
        while (status := await upgrade_status(self.endpoint, self.options.timeout_s)) != 404:
            if time.monotonic() > deadline:
                hint = await self._flag_source_hint()
                raise DrillFailed(
                    f"new upgrades still get HTTP {status} {self.options.flip_deadline_s:g}s "
                    f"after the flag was turned off in {self.flag_file}{hint}"
                )
            await asyncio.sleep(RETRY_PAUSE_S)  # polling interval of a deadline-bounded wait
        seconds = time.monotonic() - self.flipped_at
        self.report.timings["until_404_s"] = seconds
        return f"HTTP 404 {seconds:.2f}s after the flip"

    async def _streaming_back(self) -> str:
        deadline = self.flipped_at + self.options.flip_deadline_s
        jpeg = synthetic_jpegs()[0]
        while True:
            try:
                result = await process_one_frame(self.endpoint, jpeg, self.options.timeout_s)
                break
            except InvalidStatus as exc:
                if exc.response.status_code != HTTP_NOT_FOUND:
                    raise DrillFailed(refused_text(exc)) from exc
                last = refused_text(exc)
            except ProbeError as exc:
                last = str(exc)
            except TimeoutError:
                last = f"no result within {self.options.timeout_s:g}s"
            if time.monotonic() > deadline:
                hint = await self._flag_source_hint()
                raise DrillFailed(
                    f"streaming not back {self.options.flip_deadline_s:g}s after the flag was "
                    f"turned on in {self.flag_file}: {last}{hint}"
                )
            await asyncio.sleep(RETRY_PAUSE_S)  # polling interval of a deadline-bounded wait
        seconds = time.monotonic() - self.flipped_at
        self.report.timings["until_back_on_s"] = seconds
        return f"{describe_result(result)}; {seconds:.2f}s after the flip"

    async def _flag_source_hint(self) -> str:
        """Where the server says its flags come from (`/ready`), when that is not our file."""
        try:
            async with httpx.AsyncClient(timeout=self.options.timeout_s) as client:
                body = (await client.get(f"{self.endpoint.http}/ready")).json()
        except (httpx.HTTPError, ValueError):
            return ""
        flags = body.get("flags") if isinstance(body, dict) else None
        if not isinstance(flags, dict):
            return ""
        source = str(flags.get("source"))
        if flags.get("provider") == "file" and Path(source).resolve() == self.flag_file.resolve():
            return "; the server reads this file but did not react"
        return f"; the server reads its flags from {flags.get('provider')} {source}, not this file"


async def drill_server(
    url: str, flag_file: Path, options: DrillOptions, on_step: StepCallback | None = None
) -> DrillReport:
    """Drill an already running server whose file flag provider reads `flag_file`. The file is
    put back as it was found, whatever happens."""
    report = DrillReport(url=url, flag_file=str(flag_file))
    endpoint = Endpoint(url, options.pipeline, options.token)
    started = time.monotonic()
    original = _read_bytes(flag_file)
    try:
        await _Drill(endpoint, flag_file, options, _Recorder(report, on_step)).run()
    finally:
        _restore(flag_file, original)
    report.timings["total_s"] = time.monotonic() - started
    return report


class _Runnable(Protocol):
    async def run(self) -> None: ...


MakeDrill = Callable[[Endpoint, LocalStack, DrillOptions, _Recorder], _Runnable]


def _flag_drill(
    endpoint: Endpoint, stack: LocalStack, options: DrillOptions, recorder: _Recorder
) -> _Runnable:
    return _Drill(endpoint, stack.flag_file, options, recorder)


def drill_local(
    options: DrillOptions,
    data_dir: Path | None = None,
    on_step: StepCallback | None = None,
    make_drill: MakeDrill = _flag_drill,
) -> DrillReport:
    """Start the local stack (`framegate up` in a temp data dir unless `data_dir` is given),
    drill it (`make_drill`: the flag drill; `api/ops/guard_drill.py` passes its own), and stop
    it on every exit path. A temp dir is removed when the drill passed and kept (with the
    logs) when it failed."""
    temporary = data_dir is None
    directory = Path(tempfile.mkdtemp(prefix="framegate-drill-")) if data_dir is None else data_dir
    stack = LocalStack(directory, stream_auth_token=options.token)
    report = DrillReport(
        url=stack.url, flag_file=str(stack.flag_file), local_stack=True, data_dir=str(directory)
    )
    recorder = _Recorder(report, on_step)
    started = time.monotonic()
    try:
        try:
            stack.start(options.start_timeout_s)
        except StackError as exc:
            recorder.record(START_STACK, False, str(exc), started)
            return report
        report.timings["stack_start_s"] = time.monotonic() - started
        recorder.record(START_STACK, True, f"framegate up ready at {stack.url}", started)
        endpoint = Endpoint(stack.url, options.pipeline, options.token)
        asyncio.run(make_drill(endpoint, stack, options, recorder).run())
    except KeyboardInterrupt:
        report.failure = report.failure or f"interrupted after {len(report.steps)} steps"
        raise
    finally:
        stopping = time.monotonic()
        outcome = stack.stop()
        if outcome is not None:
            killed = f", SIGKILLed leftovers {list(outcome.killed)}" if outcome.killed else ""
            how = "stopped" if outcome.graceful else "did not stop on SIGINT, killed"
            recorder.record(STOP_STACK, True, f"{how} in {outcome.seconds:.1f}s{killed}", stopping)
        report.timings["total_s"] = time.monotonic() - started
        if temporary and report.ok:
            shutil.rmtree(directory, ignore_errors=True)
    return report


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _restore(path: Path, original: bytes | None) -> None:
    """Put the flag file back as found (atomically: a flag provider may be reading it)."""
    if original is None:
        path.unlink(missing_ok=True)
    elif _read_bytes(path) != original:
        write_document(path, parse_document(original, str(path)))
