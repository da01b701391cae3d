"""Jobs survive the process: kill -9 mid-job, a clean SIGTERM, and Triton being unreachable."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest

from api.core.polling import poll_until
from tests.jobs.client import database, jobs, status, submit, wait_completed
from tests.support.api_server import ApiServer
from tests.support.ports import free_port

pytestmark = pytest.mark.triton  # real API processes killed and restarted against the shared Triton

FRAMES = 60


def mid_job(server: ApiServer, job_ids: list[str]) -> bool:
    """Some job has stored results but is not finished."""
    states = [status(server, job_id) for job_id in job_ids]
    return any(0 < s["progress"]["frames_done"] < s["progress"]["frames_total"] for s in states)


def stored_rows(server: ApiServer) -> dict[str, tuple[str, int, int, int, int, int]]:
    """job_id -> (status, attempts, frames_done, frames_total, results, distinct frames)."""
    with database(server) as conn:
        rows = conn.execute(
            """
            SELECT j.job_id, j.status, j.attempts, j.frames_done, j.frames_total,
                   count(r.frame_index), count(DISTINCT r.frame_index)
            FROM jobs j LEFT JOIN job_results r USING (job_id)
            GROUP BY ALL
            """
        ).fetchall()
    return {r[0]: r[1:] for r in rows}


def stop_cleanly(server: ApiServer) -> None:
    """SIGTERM; uvicorn re-raises the signal after a complete graceful shutdown."""
    assert server.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
    assert '"event": "job system stopped"' in server.log()


def frames_processed(server: ApiServer) -> float:
    return server.metrics().get("framegate_job_frames_total", 0.0)


def test_kill_9_mid_job_then_restart_completes_every_job_once(launch, long_video: Path) -> None:
    server = launch()
    job_ids = [submit(server, long_video, pipeline_id="yolo") for _ in range(3)]
    poll_until(lambda: mid_job(server, job_ids), 60, what="a job part-way through")
    server.stop(signal.SIGKILL)

    before = stored_rows(server)
    interrupted = [j for j, row in before.items() if row[0] == "running"]
    assert interrupted, before
    stored_before = sum(row[4] for row in before.values())

    server = launch()  # same DATA_DIR
    wait_completed(server, job_ids)
    # resumed, not restarted: only the frames missing at the crash were processed again
    assert frames_processed(server) == 3 * FRAMES - stored_before
    attempts = {j: status(server, j)["attempts"] for j in job_ids}
    assert all(attempts[j] == 2 for j in interrupted), attempts
    server.stop()

    after = stored_rows(server)
    assert set(after) == set(job_ids)
    for state, _, done, total, count, distinct in after.values():
        assert (state, done, count, distinct, total) == ("completed", FRAMES, FRAMES, FRAMES, 60)
    with database(server) as conn:
        indices = conn.execute(
            "SELECT DISTINCT list(frame_index ORDER BY frame_index) "
            "FROM job_results GROUP BY job_id"
        ).fetchall()
    assert indices == [(list(range(FRAMES)),)]


def test_job_fails_after_max_attempts(launch, long_video: Path) -> None:
    server = launch(JOBS_MAX_ATTEMPTS="1", JOBS_CONCURRENCY="1")
    job_id = submit(server, long_video, pipeline_id="yolo")
    poll_until(lambda: mid_job(server, [job_id]), 60, what="the job part-way through")
    server.stop(signal.SIGKILL)

    server = launch(JOBS_MAX_ATTEMPTS="1", JOBS_CONCURRENCY="1")
    state = status(server, job_id)
    assert state["status"] == "failed"
    assert state["error"] == (
        "gave up after 1 attempts: the process stopped while running this job each time"
    )
    response = httpx.get(f"{server.http}/v1/video/results/{job_id}", timeout=10)
    assert response.status_code == 409
    assert response.json() == {"detail": f"job '{job_id}' failed: {state['error']}"}
    assert not list((server.data_dir / "uploads").iterdir())


def test_sigterm_returns_running_job_to_queue_with_its_frames(launch, long_video: Path) -> None:
    server = launch(JOBS_CONCURRENCY="1")
    job_id = submit(server, long_video, pipeline_id="yolo")
    poll_until(lambda: mid_job(server, [job_id]), 60, what="the job part-way through")
    stop_cleanly(server)

    ((state, attempts, done, _, count, _),) = stored_rows(server).values()
    assert (state, attempts) == ("pending", 0)
    assert 0 < done == count < FRAMES

    server = launch(JOBS_CONCURRENCY="1")
    wait_completed(server, [job_id])
    assert status(server, job_id)["attempts"] == 1
    assert frames_processed(server) == FRAMES - done


def test_inference_unavailable_job_waits_then_completes(launch, short_video: Path) -> None:
    dead = f"127.0.0.1:{free_port()}"
    server = launch(triton_url=dead)
    job_id = submit(server, short_video, pipeline_id="yolo")
    response = httpx.post(
        f"{server.http}/v1/video/process",
        params={"pipeline_id": "yolo", "max_frames": 2},
        files={"file": (short_video.name, short_video.read_bytes())},
        timeout=30,
    )
    assert response.status_code == 503, response.text
    assert response.json()["detail"].startswith("inference unavailable: ")

    seen: set[str] = set()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:  # observe for a while: never failed, never progressing
        state = status(server, job_id)
        seen.add(state["status"])
        assert state["error"] is None and state["progress"]["frames_done"] == 0
        time.sleep(0.05)  # polling interval of a deadline-bounded observation
    assert seen <= {"pending", "running"} and "running" in seen
    assert server.metrics()["framegate_job_inference_retries_total"] >= 2
    assert jobs(server, status="failed")["total"] == 0
    stop_cleanly(server)

    server = launch()  # the same data dir, now with the real Triton
    wait_completed(server, [job_id])
    assert status(server, job_id)["attempts"] == 1  # waiting burned no attempt
