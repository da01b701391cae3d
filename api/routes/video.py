"""`/v1/video`: a video file as one synchronous request, or as a durable background job.

Status codes: 400 unreadable, empty or wrong type (checked by decoding, and by extension); 404
unknown pipeline or job; 409 results of a job that has not completed; 413 upload over
VIDEO_MAX_UPLOAD_MB; 422 bad parameters; 502 Triton answered with an error for a frame (synchronous
requests only: a job stores that frame's error and carries on); 503 inference unavailable
(synchronous requests only: a job waits and retries).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse

from api.core.config import Settings
from api.deps import InferenceDep, JobsDep, SettingsDep
from api.inference.errors import InferenceUnavailable, PipelineFailure
from api.inference.pipelines import PIPELINES
from api.jobs.frames import UnreadableVideo, probe, sampled_indices
from api.jobs.processing import FrameResult, infer_chunk, open_frames
from api.jobs.schemas import JobAccepted, JobList, JobResults, JobView, VideoResults
from api.jobs.store import JobStatus, NewJob
from api.jobs.upload import UploadError, receive_video
from api.jobs.worker import JobSystem

log = logging.getLogger("framegate.video")

router = APIRouter(prefix="/v1/video", tags=["video"])

PipelineId = Annotated[str, Query(description="Pipeline to run on every sampled frame")]
FrameStride = Annotated[int, Query(ge=1, description="Process every n-th source frame")]
MaxFrames = Annotated[int | None, Query(ge=1, description="Process at most this many frames")]

UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "Video file: .mp4, .mov or .avi",
                        }
                    },
                }
            }
        },
    }
}


UPLOAD_ERRORS: dict[int | str, dict] = {
    400: {"description": "Unreadable, empty or unsupported video file"},
    404: {"description": "Unknown pipeline"},
    413: {"description": "Upload larger than VIDEO_MAX_UPLOAD_MB"},
}


def _max_bytes(settings: Settings) -> int:
    return int(settings.video_max_upload_mb * 1024 * 1024)


def _check_pipeline(pipeline_id: str) -> None:
    if pipeline_id not in PIPELINES:
        known = ", ".join(sorted(PIPELINES))
        raise HTTPException(404, f"unknown pipeline {pipeline_id!r}; available: {known}")


@contextmanager
def _http_errors() -> Iterator[None]:
    """Domain errors to status codes with a short detail; never a traceback."""
    try:
        yield
    except UploadError as exc:
        raise HTTPException(exc.status_code, exc.detail) from exc
    except UnreadableVideo as exc:
        raise HTTPException(400, str(exc)) from exc
    except InferenceUnavailable as exc:
        raise HTTPException(503, f"inference unavailable: {exc}") from exc
    except PipelineFailure as exc:
        raise HTTPException(502, f"pipeline failed: {exc}") from exc
    except HTTPException:
        raise
    except Exception as exc:
        log.exception("video request failed")
        raise HTTPException(500, "internal error") from exc


async def _remove(path: Path) -> None:
    await asyncio.to_thread(path.unlink, missing_ok=True)


@router.post(
    "/process",
    response_model=VideoResults,
    openapi_extra=UPLOAD_BODY,
    responses={
        **UPLOAD_ERRORS,
        502: {"description": "Pipeline error"},
        503: {"description": "Inference unavailable"},
    },
)
async def process_video(
    request: Request,
    settings: SettingsDep,
    jobs: JobsDep,
    inference: InferenceDep,
    pipeline_id: PipelineId = "yolo_ocr",
    frame_stride: FrameStride = 1,
    max_frames: MaxFrames = None,
) -> Response:
    """Run every sampled frame through the pipeline and answer with all results at once."""
    _check_pipeline(pipeline_id)
    tmp_dir = jobs.tmp_dir
    with _http_errors():
        path = await receive_video(request, tmp_dir, uuid.uuid4().hex, _max_bytes(settings))
        try:
            found = await asyncio.to_thread(probe, path)
            wanted = sampled_indices(found.frames, frame_stride, max_frames)
            results: list[FrameResult] = []
            async with open_frames(path, wanted) as reader:
                while frames := await asyncio.to_thread(reader.read, settings.video_chunk_frames):
                    results += await infer_chunk(
                        inference, pipeline_id, frames, failures_as_results=False
                    )
        finally:
            await _remove(path)
    return JSONResponse({"results": [{"frame_index": i, "result": r} for i, r in results]})


@router.post(
    "/submit",
    status_code=202,
    response_model=JobAccepted,
    openapi_extra=UPLOAD_BODY,
    responses=UPLOAD_ERRORS,
)
async def submit_video(
    request: Request,
    settings: SettingsDep,
    jobs: JobsDep,
    pipeline_id: PipelineId = "yolo_ocr",
    frame_stride: FrameStride = 1,
    max_frames: MaxFrames = None,
) -> JobAccepted:
    """Store the upload, validate it and queue a job; answers once the job is durable."""
    _check_pipeline(pipeline_id)
    job_id = uuid.uuid4().hex
    with _http_errors():
        path = await receive_video(request, jobs.uploads_dir, job_id, _max_bytes(settings))
        try:
            found = await asyncio.to_thread(probe, path)
            total = len(sampled_indices(found.frames, frame_stride, max_frames))
            await jobs.store.create(
                NewJob(job_id, pipeline_id, path.name, frame_stride, max_frames, total)
            )
        except BaseException:
            await _remove(path)
            raise
    jobs.runner.wake()
    log.info("job submitted", extra={"job_id": job_id, "pipeline_id": pipeline_id, "frames": total})
    return JobAccepted(job_id=job_id)


async def _job(jobs: JobSystem, job_id: str) -> JobView:
    record = await jobs.store.get(job_id)
    if record is None:
        raise HTTPException(404, f"unknown job {job_id!r}")
    return JobView.of(record)


@router.get(
    "/status/{job_id}", response_model=JobView, responses={404: {"description": "Unknown job"}}
)
async def job_status(jobs: JobsDep, job_id: str) -> JobView:
    return await _job(jobs, job_id)


@router.get(
    "/results/{job_id}",
    response_model=JobResults,
    responses={404: {"description": "Unknown job"}, 409: {"description": "Job not completed"}},
)
async def job_results(jobs: JobsDep, job_id: str) -> Response:
    job = await _job(jobs, job_id)
    if job.status is JobStatus.FAILED:
        raise HTTPException(409, f"job {job_id!r} failed: {job.error}")
    if job.status is not JobStatus.COMPLETED:
        done, total = job.progress.frames_done, job.progress.frames_total
        raise HTTPException(409, f"job {job_id!r} is {job.status} ({done}/{total} frames)")
    results = await jobs.store.results_json(job_id)
    head = f'{{"job_id":{json.dumps(job_id)},"pipeline_id":{json.dumps(job.pipeline_id)}'
    return Response(f'{head},"results":{results}}}', media_type="application/json")


@router.get("/jobs", response_model=JobList)
async def list_jobs(
    jobs: JobsDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    status: JobStatus | None = None,
) -> JobList:
    """Newest first."""
    records, total = await jobs.store.list_jobs(limit, offset, status)
    return JobList(jobs=[JobView.of(r) for r in records], total=total, limit=limit, offset=offset)
