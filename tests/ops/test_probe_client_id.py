"""`framegate verify --client-id`: the targeting key reaches the gateway on every upgrade, so a
flag targeting rule can name the check (the chart's `helm test` pods send one)."""

from __future__ import annotations

import asyncio

from api.ops.probe import Endpoint, upgrade_status

NOT_FOUND = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"


async def upgrade_request_headers(**fields: str) -> dict[str, str]:
    """Headers of the raw upgrade request that upgrade_status sends to a one-shot server."""
    seen: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")[1:]
        seen.set_result({k.lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines if ln)})
        writer.write(NOT_FOUND)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        status = await upgrade_status(Endpoint(f"http://127.0.0.1:{port}", **fields), 5)
    assert status == 404
    return await seen


def test_upgrade_carries_the_client_id() -> None:
    headers = asyncio.run(upgrade_request_headers(client_id="framegate-helm-test"))

    assert headers["x-client-id"] == "framegate-helm-test"


def test_no_client_id_header_by_default() -> None:
    headers = asyncio.run(upgrade_request_headers())

    assert "x-client-id" not in headers
