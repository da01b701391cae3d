"""Wire schemas of the /v1/video endpoints (internal records never reach a client)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from api.jobs.store import JobRecord, JobStatus


class FrameResult(BaseModel):
    frame_index: int  # source frame number
    result: dict[str, Any]


class VideoResults(BaseModel):
    results: list[FrameResult]


class JobAccepted(BaseModel):
    job_id: str


class Progress(BaseModel):
    frames_done: int
    frames_total: int


class JobView(BaseModel):
    job_id: str
    pipeline_id: str
    status: JobStatus
    progress: Progress
    created_at: datetime
    updated_at: datetime
    error: str | None
    attempts: int

    @classmethod
    def of(cls, job: JobRecord) -> JobView:
        return cls(
            job_id=job.job_id,
            pipeline_id=job.pipeline_id,
            status=job.status,
            progress=Progress(frames_done=job.frames_done, frames_total=job.frames_total),
            created_at=job.created_at.replace(tzinfo=UTC),
            updated_at=job.updated_at.replace(tzinfo=UTC),
            error=job.error,
            attempts=job.attempts,
        )


class JobResults(VideoResults):
    job_id: str
    pipeline_id: str


class JobList(BaseModel):
    jobs: list[JobView]
    total: int
    limit: int
    offset: int
