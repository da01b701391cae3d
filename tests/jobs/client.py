"""HTTP helpers for the /v1/video endpoints of a test API server."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import duckdb
import httpx

from api.core.polling import poll_until
from tests.support.api_server import ApiServer

TIMEOUT_S = 120


def upload(
    server: ApiServer, endpoint: str, path: Path, name: str | None = None, **params: object
) -> httpx.Response:
    files = {"file": (name or path.name, path.read_bytes(), "application/octet-stream")}
    return httpx.post(
        f"{server.http}/v1/video/{endpoint}", params=params, files=files, timeout=TIMEOUT_S
    )


def submit(server: ApiServer, path: Path, **params: object) -> str:
    response = upload(server, "submit", path, **params)
    assert response.status_code == 202, response.text
    return response.json()["job_id"]


def status(server: ApiServer, job_id: str) -> dict:
    response = httpx.get(f"{server.http}/v1/video/status/{job_id}", timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def jobs(server: ApiServer, **params: object) -> dict:
    response = httpx.get(f"{server.http}/v1/video/jobs", params=params, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def wait_completed(server: ApiServer, job_ids: list[str], timeout_s: float = 120) -> None:
    def done() -> bool:
        states = [status(server, job_id) for job_id in job_ids]
        failed = [s for s in states if s["status"] == "failed"]
        assert not failed, failed
        return all(s["status"] == "completed" for s in states)

    poll_until(done, timeout_s, interval_s=0.1, what=f"jobs {job_ids} to complete")


def results(server: ApiServer, job_id: str) -> list[dict]:
    response = httpx.get(f"{server.http}/v1/video/results/{job_id}", timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["job_id"] == job_id
    return body["results"]


@contextlib.contextmanager
def database(server: ApiServer) -> Iterator[duckdb.DuckDBPyConnection]:
    """The server's DuckDB file, read-only; only while the server is stopped (DuckDB locks it)."""
    assert server.process.poll() is not None, "stop the server before opening its database"
    conn = duckdb.connect(str(server.data_dir / "framegate.duckdb"), read_only=True)
    try:
        yield conn
    finally:
        conn.close()
