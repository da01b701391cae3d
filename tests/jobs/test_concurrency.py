"""Many jobs at once: never more than JOBS_CONCURRENCY running, progress only moves forward."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.triton  # a real API process against the shared Triton

JOBS = 20
CONCURRENCY = 2
FRAMES = 8


async def test_twenty_jobs_respect_concurrency_and_move_forward(launch, short_video: Path) -> None:
    server = launch(JOBS_CONCURRENCY=str(CONCURRENCY))
    data = short_video.read_bytes()
    async with httpx.AsyncClient(base_url=server.http, timeout=60) as client:

        async def submit() -> str:
            response = await client.post(
                "/v1/video/submit",
                params={"pipeline_id": "yolo", "max_frames": FRAMES},
                files={"file": (short_video.name, data)},
            )
            assert response.status_code == 202, response.text
            return response.json()["job_id"]

        job_ids = set(await asyncio.gather(*(submit() for _ in range(JOBS))))
        assert len(job_ids) == JOBS

        most_running = 0
        progress: dict[str, list[int]] = defaultdict(list)
        updated: dict[str, list[datetime]] = defaultdict(list)
        deadline = time.monotonic() + 120
        while True:
            listing = (await client.get("/v1/video/jobs", params={"limit": 100})).json()
            mine = [j for j in listing["jobs"] if j["job_id"] in job_ids]
            assert len(mine) == JOBS
            running = sum(j["status"] == "running" for j in mine)
            assert running <= CONCURRENCY, mine
            most_running = max(most_running, running)
            for job in mine:
                assert job["status"] != "failed", job
                progress[job["job_id"]].append(job["progress"]["frames_done"])
                updated[job["job_id"]].append(datetime.fromisoformat(job["updated_at"]))
            if all(j["status"] == "completed" for j in mine):
                break
            assert time.monotonic() < deadline, "jobs did not complete in time"
            await asyncio.sleep(0.02)  # polling interval

    assert most_running == CONCURRENCY
    for job_id in job_ids:
        assert progress[job_id] == sorted(progress[job_id]), progress[job_id]
        assert progress[job_id][-1] == FRAMES
        assert updated[job_id] == sorted(updated[job_id]), updated[job_id]
