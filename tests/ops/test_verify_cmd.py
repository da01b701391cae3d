"""`framegate verify` against a live gateway: the expected streaming state, /v1, exit codes."""

from __future__ import annotations

import json

import pytest

from api.ops.verify import HEALTH, JOBS, NOT_RUN, NOT_SERVED, WEBSOCKET
from tests.ops.conftest import framegate, set_streaming
from tests.support.api_server import ApiServer
from tests.support.ports import free_port

CHECK_NAMES = ["health", "ready", "pipelines", "pipeline", "jobs", "websocket"]


def verify_json(url: str, *args: str) -> tuple[int, dict]:
    result = framegate("verify", "--url", url, "--json", *args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.stdout)


def checks(report: dict) -> dict[str, dict]:
    return {check["name"]: check for check in report["checks"]}


@pytest.mark.triton
def test_verify_streaming_on_processes_a_frame(gateway: ApiServer) -> None:
    code, report = verify_json(gateway.http, "--expect-streaming", "on")
    assert code == 0, report
    assert report["ok"] is True
    assert report["url"] == gateway.http
    assert report["streaming"] == "on"
    assert [c["name"] for c in report["checks"]] == CHECK_NAMES
    assert all(c["ok"] and c["duration_s"] >= 0 for c in report["checks"])
    assert checks(report)[WEBSOCKET]["detail"].startswith("frame 0 processed in ")


@pytest.mark.triton
def test_verify_jobs_not_served_on_a_stream_gateway_is_skipped(gateway: ApiServer) -> None:
    code, report = verify_json(gateway.http)
    jobs = checks(report)[JOBS]
    assert code == 0, report
    assert (jobs["ok"], jobs["skipped"], jobs["detail"]) == (True, True, NOT_SERVED)


@pytest.mark.triton
def test_verify_require_jobs_fails_on_a_stream_gateway(gateway: ApiServer) -> None:
    code, report = verify_json(gateway.http, "--require-jobs")
    assert code == 1
    assert [c["name"] for c in report["checks"] if not c["ok"]] == [JOBS]


@pytest.mark.triton
def test_verify_any_reports_the_state(gateway: ApiServer) -> None:
    code, report = verify_json(gateway.http, "--expect-streaming", "any")
    assert code == 0, report
    assert report["streaming"] == "on"
    assert checks(report)[WEBSOCKET]["detail"] == "upgrade accepted with HTTP 101: streaming is on"


@pytest.mark.triton
def test_verify_flag_off_expect_off_passes(gateway: ApiServer) -> None:
    set_streaming(gateway, False)
    code, report = verify_json(gateway.http, "--expect-streaming", "off")
    assert code == 0, report
    assert report["streaming"] == "off"
    assert checks(report)[WEBSOCKET]["detail"] == "upgrade refused with HTTP 404: streaming is off"


@pytest.mark.triton
def test_verify_flag_off_expect_on_fails_naming_the_check(gateway: ApiServer) -> None:
    set_streaming(gateway, False)
    code, report = verify_json(gateway.http, "--expect-streaming", "on")
    assert code == 1
    assert report["ok"] is False
    failed = [c for c in report["checks"] if not c["ok"]]
    assert [c["name"] for c in failed] == [WEBSOCKET]
    assert failed[0]["detail"] == (
        "upgrade refused with HTTP 404 (streaming is off or not mounted); expected streaming on"
    )


@pytest.mark.triton
def test_verify_flag_on_expect_off_fails(gateway: ApiServer) -> None:
    code, report = verify_json(gateway.http, "--expect-streaming", "off")
    assert code == 1
    assert [c["name"] for c in report["checks"] if not c["ok"]] == [WEBSOCKET]


@pytest.mark.triton
def test_verify_router_not_mounted_expect_off_passes(api_factory_ops) -> None:
    server = api_factory_ops(STREAMING_ROUTER="false")
    code, report = verify_json(server.http, "--expect-streaming", "off")
    assert code == 0, report
    assert report["streaming"] == "off"


@pytest.mark.triton
def test_verify_require_jobs_passes_where_jobs_are_served(api_factory_ops) -> None:
    server = api_factory_ops(ROLE="all")
    code, report = verify_json(server.http, "--require-jobs")
    assert code == 0, report
    assert checks(report)[JOBS]["detail"].startswith("0 jobs listed")


@pytest.mark.triton
def test_verify_table_output(gateway: ApiServer) -> None:
    result = framegate("verify", "--url", gateway.http, "--expect-streaming", "on")
    assert result.exit_code == 0, result.output
    assert "framegate verify" in result.stdout
    assert "OK: all 6 checks passed; streaming on" in result.stdout


def test_verify_unreachable_server_reports_and_exits_1() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, report = verify_json(url, "--timeout", "5")
    assert code == 1
    by_name = checks(report)
    assert by_name[HEALTH]["detail"].startswith(f"cannot reach {url}: ConnectError")
    assert all(c["detail"] == NOT_RUN for name, c in by_name.items() if name != HEALTH)


def test_verify_rejects_a_non_http_url() -> None:
    result = framegate("verify", "--url", "ws://127.0.0.1:8000")
    assert result.exit_code == 2
    assert "expected http(s)://host:port" in result.output


def test_verify_rejects_an_unknown_expectation() -> None:
    result = framegate("verify", "--expect-streaming", "maybe")
    assert result.exit_code == 2
