"""`framegate verify|drill` against the real API (subprocess) on the session's embedded Triton."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from api.cli.drill_cmd import drill
from api.cli.verify_cmd import verify
from api.core.polling import poll_until
from api.ops.probe import Endpoint, upgrade_status
from tests.support.api_server import ApiServer, start_api

FLIP_DEADLINE_S = 10.0

cli = typer.Typer()
cli.command("verify")(verify)
cli.command("drill")(drill)
runner = CliRunner()


def framegate(*args: str) -> Result:
    return runner.invoke(cli, list(args))


def upgrade(server: ApiServer) -> int:
    return asyncio.run(upgrade_status(Endpoint(server.http), timeout_s=5))


def set_streaming(server: ApiServer, on: bool) -> None:
    """Flip the server's own flag file and wait until new upgrades see it."""
    server.set_flag(on)
    want = 101 if on else 404
    poll_until(lambda: upgrade(server) == want, FLIP_DEADLINE_S, what=f"upgrade answering {want}")


def processes_mentioning(text: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # exited while we looked
        if text in args:
            found.append(f"{cmdline.parent.name}: {args[:200]}")
    return found


@pytest.fixture(scope="package")
def stream_gateway(triton, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """A ROLE=stream gateway (what the chart's `helm test` hook verifies): no jobs API."""
    server = start_api(triton.grpc_url, tmp_path_factory.mktemp("gateway"), ROLE="stream")
    yield server
    server.stop()


@pytest.fixture
def gateway(stream_gateway: ApiServer) -> ApiServer:
    """The shared gateway with streaming on, whatever the previous test left."""
    set_streaming(stream_gateway, True)
    return stream_gateway


@pytest.fixture
def api_factory_ops(triton, tmp_path: Path) -> Iterator[Callable[..., ApiServer]]:
    """Extra API processes with their own settings, stopped after the test."""
    servers: list[ApiServer] = []

    def make(**env: str) -> ApiServer:
        servers.append(start_api(triton.grpc_url, tmp_path / f"api{len(servers)}", **env))
        return servers[-1]

    yield make
    for server in servers:
        server.stop()
