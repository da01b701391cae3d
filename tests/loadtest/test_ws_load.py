"""`framegate loadtest`: the open-loop driver against small fake servers (each a behaviour: drops,
silence, errors, refusals), then the real API on the embedded Triton. No timing assertions."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from http import HTTPStatus
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result
from websockets.asyncio.server import ServerConnection, serve

from api.cli.loadtest_cmd import app as loadtest_app
from api.loadtest.ws_load import SCHEMA, LoadConfig, WsLoad
from tests.support.api_server import ApiServer, start_api
from tests.support.ports import free_port

Handler = Callable[[ServerConnection], Awaitable[None]]
JPEGS = [b"\xff\xd8fake-jpeg-0\xff\xd9", b"\xff\xd8fake-jpeg-1\xff\xd9"]
REPORT_KEYS = {
    "schema",
    "started_utc",
    "config",
    "wall_s",
    "sessions",
    "frames",
    "errors_by_code",
    "fps",
    "latency_ms",
    "slow_down",
    "protocol_violations",
    "schedule_lag_ms",
    "timeline",
    "per_session",
    "server",
    "generator",
    "warnings",
}

cli = typer.Typer()
cli.add_typer(loadtest_app, name="loadtest")
runner = CliRunner()


def framegate(*args: str) -> Result:
    return runner.invoke(cli, ["loadtest", *args])


def plain(output: str) -> str:
    """CLI output without rich's box borders and line wrapping."""
    return " ".join(output.replace("│", " ").split())


def assert_counts_add_up(report: dict) -> None:
    f = report["frames"]
    assert f["sent"] == f["processed"] + f["dropped"] + f["errors"]
    assert f["planned"] == f["sent"] + f["not_sent"]
    assert sum(s["sent"] for s in report["per_session"]) == f["sent"]
    assert sum(s["errors"] for s in report["per_session"]) == f["errors"]


# --- fake servers -------------------------------------------------------------------------------


@asynccontextmanager
async def fake_server(handler: Handler, refuse: int | None = None) -> AsyncIterator[str]:
    def process_request(connection: ServerConnection, request):
        if refuse is not None:
            return connection.respond(HTTPStatus(refuse), "refused\n")
        return None

    async with serve(handler, "127.0.0.1", 0, process_request=process_request) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}"


def reply_each(reply: Callable[[int], dict | str], after: int | None = None) -> Handler:
    """Answer every frame; after `after` frames send an error and close instead."""

    async def handler(ws: ServerConnection) -> None:
        index = 0
        async for _ in ws:
            if after is not None and index == after:
                await ws.send(json.dumps({"error": "pipeline_failure", "detail": "boom"}))
                await ws.close(1011, "boom")
                return
            message = reply(index)
            await ws.send(message if isinstance(message, str) else json.dumps(message))
            index += 1

    return handler


async def silent(ws: ServerConnection) -> None:
    async for _ in ws:
        pass


async def run_fake(handler: Handler, sessions: int = 2, refuse: int | None = None, **kw) -> dict:
    async with fake_server(handler, refuse) as url:
        config = LoadConfig(url, "yolo", sessions, fps=20, duration_s=0.25, **kw)
        return await WsLoad(config, JPEGS).run()


async def test_every_frame_dropped_is_no_error() -> None:
    report = await run_fake(reply_each(lambda i: {"frame_index": i, "dropped": True}))
    assert report["frames"]["dropped"] == report["frames"]["sent"] == 10
    assert report["frames"]["errors"] == 0
    assert report["errors_by_code"] == {}
    assert_counts_add_up(report)


async def test_results_are_timed_per_frame() -> None:
    report = await run_fake(reply_each(lambda i: {"frame_index": i, "result": {}}))
    assert report["frames"]["processed"] == report["latency_ms"]["count"] == 10
    assert report["latency_ms"]["max"] > 0
    assert sum(b["processed"] for b in report["timeline"]) == 10
    assert_counts_add_up(report)


async def test_slow_down_warnings_are_counted() -> None:
    def reply(i: int) -> str:
        return json.dumps({"frame_index": i, "dropped": True}) if i else '{"warning": "slow_down"}'

    report = await run_fake(reply_each(reply), drain_timeout_s=0.1)
    assert report["slow_down"] == 2
    assert report["frames"]["errors"] == 2  # frame 0 of each session never got its reply
    assert_counts_add_up(report)


async def test_unanswered_frames_are_no_reply_errors() -> None:
    report = await run_fake(silent, drain_timeout_s=0.1)
    assert report["frames"]["errors"] == report["frames"]["sent"] == 10
    assert report["errors_by_code"] == {"no_reply": {"sessions": 2, "frames": 10}}
    assert_counts_add_up(report)


async def test_session_error_stops_sending_and_counts_the_frames_left() -> None:
    report = await run_fake(reply_each(lambda i: {"frame_index": i, "dropped": True}, after=2))
    assert report["errors_by_code"]["pipeline_failure"]["sessions"] == 2
    assert report["frames"]["dropped"] == 4
    assert report["frames"]["not_sent"] > 0
    assert report["sessions"]["ended_with_error"] == 2
    assert_counts_add_up(report)


@pytest.mark.parametrize("code", [1000, 1012])
async def test_close_without_error_message_is_named_by_its_code(code: int) -> None:
    async def close(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.close(code, "bye")

    report = await run_fake(close, sessions=1)
    assert report["errors_by_code"] == {f"closed_{code}": {"sessions": 1, "frames": 1}}
    assert report["per_session"][0]["detail"] == "bye"
    assert_counts_add_up(report)


async def test_connection_dropped_without_close_frame_is_connection_lost() -> None:
    async def vanish(ws: ServerConnection) -> None:
        await ws.recv()
        ws.transport.abort()

    report = await run_fake(vanish, sessions=1)
    assert list(report["errors_by_code"]) == ["connection_lost"]
    assert_counts_add_up(report)


async def test_garbage_replies_are_protocol_violations() -> None:
    report = await run_fake(reply_each(lambda i: "not json"), sessions=1, drain_timeout_s=0.1)
    assert report["protocol_violations"] == 5
    # The generator's own warnings (its CPU, its send schedule) depend on how busy this machine
    # is; the replies' warning is the one under test, and it comes after them.
    assert report["warnings"][len(report["generator"]["warnings"]) :] == [
        "5 reply(ies) broke the protocol"
    ]
    assert_counts_add_up(report)


async def test_refused_upgrade_is_an_http_error_and_nothing_is_sent() -> None:
    report = await run_fake(silent, refuse=404)
    assert report["sessions"]["connected"] == 0
    assert report["errors_by_code"] == {"http_404": {"sessions": 2, "frames": 0}}
    assert report["frames"]["not_sent"] == report["frames"]["planned"]
    assert_counts_add_up(report)


async def test_token_is_sent_as_bearer_header() -> None:
    seen: list[str | None] = []

    async def handler(ws: ServerConnection) -> None:
        seen.append(ws.request.headers.get("Authorization"))
        await silent(ws)

    await run_fake(handler, sessions=1, token="s3cret", drain_timeout_s=0)
    assert seen == ["Bearer s3cret"]


async def test_permessage_deflate_is_offered_as_browsers_do() -> None:
    offers: list[str | None] = []

    async def handler(ws: ServerConnection) -> None:
        offers.append(ws.request.headers.get("Sec-WebSocket-Extensions"))
        await silent(ws)

    await run_fake(handler, sessions=1, drain_timeout_s=0)
    assert offers and "permessage-deflate" in (offers[0] or "")


async def test_a_server_that_refuses_deflate_still_gets_frames() -> None:
    received: list[bytes] = []
    negotiated: list[list] = []

    async def handler(ws: ServerConnection) -> None:
        negotiated.append(ws.protocol.extensions)
        async for frame in ws:
            received.append(frame)

    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        config = LoadConfig(url, "yolo", 1, fps=20, duration_s=0.1, drain_timeout_s=0)
        report = await WsLoad(config, JPEGS).run()
    assert negotiated == [[]]  # nothing negotiated: frames went uncompressed
    assert report["frames"]["sent"] == len(received) > 0


async def test_missing_metrics_endpoint_is_reported_not_fatal() -> None:
    report = await run_fake(silent, sessions=1, drain_timeout_s=0)
    assert report["server"]["available"] is False
    assert report["server"]["url"].endswith("/metrics")


async def test_generator_cpu_is_reported() -> None:
    report = await run_fake(silent, sessions=1, drain_timeout_s=0)
    generator = report["generator"]
    assert generator["cpu_count"] >= 1
    assert generator["sending"]["wall_s"] > 0
    assert generator["whole_run"]["cpu_s"] >= 0
    assert set(report) == REPORT_KEYS


def test_cli_without_a_server_exits_2_and_still_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    url = f"ws://127.0.0.1:{free_port()}"
    result = framegate("--url", url, "--sessions", "2", "--duration", "0.2", "--frames", "2",
                       "--json", str(out), "--no-progress")  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "no session could connect" in plain(result.output)
    report = json.loads(out.read_text())
    assert report["errors_by_code"] == {"connect_failed": {"sessions": 2, "frames": 0}}
    assert_counts_add_up(report)


@pytest.mark.parametrize("url", ["127.0.0.1:8000", "ftp://h", "ws://"])
def test_cli_rejects_a_bad_url(url: str) -> None:
    result = framegate("--url", url)
    assert result.exit_code == 2
    assert "url must be ws://, wss://, http:// or https://HOST[:PORT]" in plain(result.output)


def test_cli_rejects_video_and_synthetic_together(tmp_path: Path) -> None:
    result = framegate("--video", str(tmp_path / "a.mp4"), "--synthetic")
    assert result.exit_code == 2
    assert "at most one of --video FILE or --synthetic" in plain(result.output)


def test_cli_rejects_an_unreadable_video(tmp_path: Path) -> None:
    (tmp_path / "a.mp4").write_bytes(b"not a video")
    result = framegate("--video", str(tmp_path / "a.mp4"))
    assert result.exit_code == 2
    assert "Invalid value: cannot open video" in plain(result.output)


# --- the real stack -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def api(triton, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    server = start_api(triton.grpc_url, tmp_path_factory.mktemp("loadtest-api"))
    yield server
    server.stop()


@pytest.mark.triton
def test_cli_against_the_real_api(api: ApiServer, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    result = framegate("--url", f"ws://127.0.0.1:{api.port}", "--pipeline", "yolo_ocr",
                       "--sessions", "4", "--fps", "5", "--duration", "3", "--synthetic",
                       "--frames", "20", "--json", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert set(report) == REPORT_KEYS
    assert report["schema"] == SCHEMA
    assert report["frames"]["sent"] == report["frames"]["planned"] == 60
    assert report["frames"]["processed"] > 0
    assert_counts_add_up(report)
    server = report["server"]
    assert server["available"] is True
    assert server["stream_frames"]["received"] == 60
    assert server["batch_size"]["frames"] == report["frames"]["processed"]
    assert server["triton_request_ms"]["count"] > 0
    for line in ("frames", "achieved fps", "latency ms", "server batch size", "generator"):
        assert line in result.output


@pytest.mark.triton
def test_unknown_pipeline_ends_every_session_with_its_code(api: ApiServer, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    result = framegate("--url", api.http, "--pipeline", "nope", "--sessions", "2",
                       "--duration", "0.5", "--frames", "2", "--json", str(out))  # fmt: skip
    assert result.exit_code == 1, result.output
    report = json.loads(out.read_text())
    assert report["errors_by_code"]["invalid_pipeline"]["sessions"] == 2
    assert report["server"]["errors_by_code"] == {"invalid_pipeline": 2}
    assert_counts_add_up(report)


@pytest.mark.triton
def test_acceptance_16_sessions_through_the_framegate_command(
    api: ApiServer, tmp_path: Path
) -> None:
    """The issue's acceptance check, shortened: 16 sessions at 5 FPS through `framegate`."""
    out = tmp_path / "report.json"
    command = [sys.executable, "-m", "api.cli.main", "loadtest",
               "--url", f"ws://127.0.0.1:{api.port}", "--pipeline", "yolo_ocr",
               "--sessions", "16", "--fps", "5", "--duration", "10", "--synthetic",
               "--json", str(out)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "loadtest yolo_ocr: 16 sessions × 5 fps × 10 s" in done.stdout
    report = json.loads(out.read_text())
    assert report["frames"]["sent"] == 16 * 5 * 10
    assert report["frames"]["processed"] > 0
    assert report["sessions"]["connected"] == 16
    assert_counts_add_up(report)


@pytest.mark.triton
def test_triton_mode_measures_each_concurrency_level(triton, tmp_path: Path) -> None:
    out = tmp_path / "triton.json"
    result = framegate("triton", "--url", triton.grpc_url, "--model", "pipeline_yolo",
                       "--concurrency", "1:2", "--duration", "1", "--frames", "4",
                       "--json", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    levels = json.loads(out.read_text())["levels"]
    assert [m["concurrency"] for m in levels] == [1, 2]
    assert all(m["frames"] > 0 and m["frame_errors"] == 0 for m in levels)
    assert all(m["objects"] > 0 for m in levels)  # the model really ran on real JPEGs


def test_triton_mode_unreachable_exits_2() -> None:
    result = framegate("triton", "--url", f"127.0.0.1:{free_port()}", "--concurrency", "1",
                       "--duration", "0.5", "--frames", "1")  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "is not reachable or not ready" in plain(result.output)
