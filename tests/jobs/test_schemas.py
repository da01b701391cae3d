"""Wire schemas of /v1/video (api/jobs/schemas.py): a job record from a real DuckDB store becomes
exactly the status body the API documents, with UTC timestamps; malformed values are refused
with the field named."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from api.jobs.schemas import FrameResult, JobList, JobResults, JobView
from api.jobs.store import JobRecord, JobStatus, JobStore, NewJob

STATUS_FIELDS = {
    "job_id",
    "pipeline_id",
    "status",
    "progress",
    "created_at",
    "updated_at",
    "error",
    "attempts",
}


async def stored_job(tmp_path: Path) -> tuple[JobStore, str]:
    store = JobStore(tmp_path / "framegate.duckdb")
    await store.open()
    await store.create(NewJob("job-1", "yolo_ocr", "job-1.mp4", 2, 10, 5))
    return store, "job-1"


async def test_a_stored_job_becomes_the_documented_status_body(tmp_path: Path) -> None:
    store, job_id = await stored_job(tmp_path)
    try:
        record = await store.get(job_id)
    finally:
        await store.close()
    assert record is not None

    body = JobView.of(record).model_dump(mode="json")

    assert set(body) == STATUS_FIELDS
    assert body["status"] == "pending" and body["error"] is None and body["attempts"] == 0
    assert body["progress"] == {"frames_done": 0, "frames_total": 5}
    created = datetime.fromisoformat(body["created_at"])
    assert created.utcoffset() == timedelta(0)  # the store's naive UTC, said to be UTC
    assert created.replace(tzinfo=None) == record.created_at
    updated = datetime.fromisoformat(body["updated_at"])
    assert updated.utcoffset() == timedelta(0)
    assert updated.replace(tzinfo=None) == record.updated_at  # the stored time, said as UTC


def test_naive_store_times_are_read_as_utc_not_local_time() -> None:
    naive = datetime(2026, 3, 1, 12, 30)  # how DuckDB returns a TIMESTAMP
    record = JobRecord(
        "j", "yolo", JobStatus.RUNNING, "j.mp4", 1, None, 2, 1, 1, None, naive, naive
    )

    body = JobView.of(record).model_dump(mode="json")

    assert (body["created_at"], body["updated_at"]) == ("2026-03-01T12:30:00Z",) * 2


def test_an_unknown_status_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError) as refused:
        JobView.model_validate(
            {
                "job_id": "j",
                "pipeline_id": "yolo",
                "status": "paused",
                "progress": {"frames_done": 0, "frames_total": 1},
                "created_at": "2026-03-01T12:30:00Z",
                "updated_at": "2026-03-01T12:30:00Z",
                "error": None,
                "attempts": 0,
            }
        )
    (problem,) = refused.value.errors()
    assert problem["loc"] == ("status",) and problem["type"] == "enum"


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        ({"frame_index": "first", "result": {}}, ("frame_index",)),
        ({"frame_index": 1.5, "result": {}}, ("frame_index",)),
        ({"frame_index": 1, "result": ["detections"]}, ("result",)),
        ({"result": {}}, ("frame_index",)),
    ],
)
def test_a_malformed_frame_result_is_refused(payload: dict, where: tuple[str, ...]) -> None:
    with pytest.raises(ValidationError) as refused:
        FrameResult.model_validate(payload)
    assert [e["loc"] for e in refused.value.errors()] == [where]


def test_job_results_are_a_flat_list_of_frame_results() -> None:
    # The seed nested them as results.results; a client reads results[i].result directly.
    body = JobResults(
        job_id="j",
        pipeline_id="yolo",
        results=[{"frame_index": 4, "result": {"detections": []}}],
    ).model_dump(mode="json")
    assert body == {
        "results": [{"frame_index": 4, "result": {"detections": []}}],
        "job_id": "j",
        "pipeline_id": "yolo",
    }


def test_a_job_list_needs_its_paging_fields() -> None:
    with pytest.raises(ValidationError) as refused:
        JobList.model_validate({"jobs": []})
    assert sorted(e["loc"][0] for e in refused.value.errors()) == ["limit", "offset", "total"]
