"""`framegate verify`: the rollback plan's verification as named checks.

Health, readiness, the `/v1` endpoints (pipelines; jobs where this deployment serves them) and
the WebSocket endpoint in the expected state: off means the upgrade gets HTTP 404 (the runbook's
curl check), on means a synthetic JPEG frame is processed and its result comes back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import httpx
from websockets.exceptions import InvalidStatus, WebSocketException

from api.ops.probe import (
    HTTP_NOT_FOUND,
    HTTP_SWITCHING_PROTOCOLS,
    Endpoint,
    ProbeError,
    describe_result,
    process_one_frame,
    refused_text,
    synthetic_jpegs,
    upgrade_status,
)

HEALTH = "health"
READY = "ready"
PIPELINES = "pipelines"
PIPELINE = "pipeline"
JOBS = "jobs"
WEBSOCKET = "websocket"

REQUIRED_PIPELINES = ("yolo", "ocr", "yolo_ocr")
JOBS_PATH = "/v1/video/jobs"
NOT_SERVED = "skipped: not served here"
NOT_RUN = "not run: server unreachable"


class Expect(StrEnum):
    ON = "on"
    OFF = "off"
    ANY = "any"


class CheckFailed(Exception):
    """A check's failure; the message is the check's detail."""


class CheckSkipped(Exception):
    """A check that does not apply to this deployment; it counts as passed."""


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str
    duration_s: float
    skipped: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "skipped": self.skipped,
            "detail": self.detail,
            "duration_s": round(self.duration_s, 4),
        }


@dataclass(frozen=True, slots=True)
class VerifyOptions:
    endpoint: Endpoint
    expect: Expect = Expect.ANY
    timeout_s: float = 30.0
    require_jobs: bool = False


@dataclass
class VerifyReport:
    url: str
    expect: Expect
    checks: list[Check] = field(default_factory=list)
    streaming: str | None = None  # the state seen: "on", "off", or None when not determined

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [check for check in self.checks if not check.ok]

    def summary(self) -> str:
        if self.ok:
            return f"all {len(self.checks)} checks passed"
        return "; ".join(f"{check.name}: {check.detail}" for check in self.failed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "url": self.url,
            "expect_streaming": str(self.expect),
            "streaming": self.streaming,
            "checks": [check.to_dict() for check in self.checks],
        }


CheckFn = Callable[["_Context"], Awaitable[str]]


@dataclass
class _Context:
    options: VerifyOptions
    client: httpx.AsyncClient
    report: VerifyReport
    unreachable: bool = False


async def run_verify(options: VerifyOptions) -> VerifyReport:
    """Run every check in order. When `/health` cannot be reached at all, the other checks are
    reported as failed without being run."""
    report = VerifyReport(url=options.endpoint.http, expect=options.expect)
    async with httpx.AsyncClient(
        base_url=options.endpoint.http, timeout=options.timeout_s
    ) as client:
        context = _Context(options, client, report)
        for name, check in CHECKS:
            if context.unreachable:
                report.checks.append(Check(name, False, NOT_RUN, 0.0))
            else:
                report.checks.append(await _run(name, check, context))
    return report


async def _run(name: str, check: CheckFn, context: _Context) -> Check:
    started = time.monotonic()
    timeout_s = context.options.timeout_s
    try:
        async with asyncio.timeout(timeout_s):
            detail = await check(context)
    except CheckSkipped as skipped:
        return Check(name, True, str(skipped), time.monotonic() - started, skipped=True)
    except CheckFailed as failed:
        detail, ok = str(failed), False
    except TimeoutError:
        detail, ok = f"no answer within {timeout_s:g}s", False
        context.unreachable = name == HEALTH
    except (httpx.TransportError, OSError) as exc:
        detail, ok = f"cannot reach {context.options.endpoint.http}: {_error_text(exc)}", False
        context.unreachable = name == HEALTH
    else:
        ok = True
    return Check(name, ok, detail, time.monotonic() - started)


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def _get_json(client: httpx.AsyncClient, path: str, *ok_status: int) -> tuple[int, Any]:
    response = await client.get(path)
    if response.status_code not in (ok_status or (200,)):
        raise CheckFailed(
            f"GET {path} answered HTTP {response.status_code}: {response.text.strip()[:160]}"
        )
    try:
        return response.status_code, response.json()
    except ValueError as exc:
        raise CheckFailed(f"GET {path} answered HTTP {response.status_code} without JSON") from exc


async def _health(context: _Context) -> str:
    await _get_json(context.client, "/health")
    return "alive"


async def _ready(context: _Context) -> str:
    status, body = await _get_json(context.client, "/ready", 200, 503)
    checks = body.get("checks", {}) if isinstance(body, dict) else {}
    not_ready = sorted(name for name, ok in checks.items() if not ok)
    flags = body.get("flags") if isinstance(body, dict) else None
    flag_text = f"; flags {flags.get('provider')} {flags.get('state')}" if flags else ""
    if status != 200 or body.get("ready") is not True:
        listed = ", ".join(not_ready) or "no checks reported"
        raise CheckFailed(f"not ready (HTTP {status}): {listed}{flag_text}")
    return f"ready: {', '.join(checks)}{flag_text}"


async def _pipelines(context: _Context) -> str:
    _, body = await _get_json(context.client, "/v1/pipelines")
    listed = body.get("pipelines") if isinstance(body, dict) else None
    if not isinstance(listed, list):
        raise CheckFailed("GET /v1/pipelines: no 'pipelines' list in the answer")
    ids = sorted(str(p.get("id")) for p in listed if isinstance(p, dict))
    missing = [p for p in REQUIRED_PIPELINES if p not in ids]
    if missing:
        raise CheckFailed(f"missing pipelines: {', '.join(missing)} (listed: {', '.join(ids)})")
    return f"listed: {', '.join(ids)}"


async def _pipeline(context: _Context) -> str:
    pipeline = context.options.endpoint.pipeline
    _, body = await _get_json(context.client, f"/v1/pipelines/{pipeline}")
    if not isinstance(body, dict) or body.get("id") != pipeline:
        raise CheckFailed(f"GET /v1/pipelines/{pipeline}: the answer does not describe {pipeline}")
    return f"{pipeline}: Triton model {body.get('triton_model')}"


async def _jobs(context: _Context) -> str:
    response = await context.client.get(JOBS_PATH)
    if response.status_code == HTTP_NOT_FOUND:
        if context.options.require_jobs:
            raise CheckFailed(f"GET {JOBS_PATH} answered HTTP 404: the jobs API is not served here")
        raise CheckSkipped(NOT_SERVED)
    _, body = await _get_json(context.client, JOBS_PATH)
    jobs = body.get("jobs") if isinstance(body, dict) else body
    if not isinstance(jobs, list):
        raise CheckFailed(f"GET {JOBS_PATH}: no 'jobs' list in the answer")
    total = body.get("total") if isinstance(body, dict) else None
    return f"{len(jobs)} jobs listed" + (f" of {total}" if total is not None else "")


async def _websocket(context: _Context) -> str:
    options, report = context.options, context.report
    if options.expect is Expect.ON:
        try:
            result = await process_one_frame(
                options.endpoint, synthetic_jpegs()[0], options.timeout_s
            )
        except InvalidStatus as exc:
            if exc.response.status_code == HTTP_NOT_FOUND:
                report.streaming = "off"
            raise CheckFailed(f"{refused_text(exc)}; expected streaming on") from exc
        except WebSocketException as exc:
            raise CheckFailed(f"WebSocket handshake failed: {exc}") from exc
        except ProbeError as exc:
            report.streaming = "on"
            raise CheckFailed(f"upgrade accepted but no result: {exc}") from exc
        report.streaming = "on"
        return describe_result(result)
    status = await upgrade_status(options.endpoint, options.timeout_s)
    if status == HTTP_NOT_FOUND:
        report.streaming = "off"
        return "upgrade refused with HTTP 404: streaming is off"
    if status == HTTP_SWITCHING_PROTOCOLS:
        report.streaming = "on"
        if options.expect is Expect.OFF:
            raise CheckFailed("upgrade accepted (HTTP 101): streaming is on; expected off (404)")
        return "upgrade accepted with HTTP 101: streaming is on"
    raise CheckFailed(f"upgrade answered HTTP {status}; expected 404 (off) or 101 (on)")


CHECKS: tuple[tuple[str, CheckFn], ...] = (
    (HEALTH, _health),
    (READY, _ready),
    (PIPELINES, _pipelines),
    (PIPELINE, _pipeline),
    (JOBS, _jobs),
    (WEBSOCKET, _websocket),
)
