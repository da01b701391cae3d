"""The job store: one DuckDB file, one connection, one thread.

Every call runs on a single dedicated worker thread (so the event loop never calls DuckDB) and
under a lock (so the connection is never used by two threads at once). The `jobs` table is the
queue: a job is claimed by one atomic UPDATE ... RETURNING, and a chunk of frame results is stored
in the same transaction as the progress it implies, so the two never disagree.
"""

from __future__ import annotations

import asyncio
import functools
import json
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from api.core.loop_audit import blocking
from api.jobs.migrations import migrate

DB_FILE_NAME = "framegate.duckdb"
PING_TIMEOUT_S = 2.0

T = TypeVar("T")


class JobStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


TERMINAL = frozenset({JobStatus.COMPLETED, JobStatus.FAILED})

_COLUMNS = (
    "job_id, pipeline_id, status, upload_name, frame_stride, max_frames, frames_total, "
    "frames_done, attempts, error, created_at, updated_at"
)


@dataclass(frozen=True)
class NewJob:
    job_id: str
    pipeline_id: str
    upload_name: str  # file name under <data dir>/uploads
    frame_stride: int
    max_frames: int | None
    frames_total: int


@dataclass(frozen=True)
class JobRecord:
    job_id: str
    pipeline_id: str
    status: JobStatus
    upload_name: str
    frame_stride: int
    max_frames: int | None
    frames_total: int
    frames_done: int
    attempts: int
    error: str | None
    created_at: datetime  # naive UTC
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> JobRecord:
        job_id, pipeline_id, status, *rest = row
        return cls(job_id, pipeline_id, JobStatus(status), *rest)


@dataclass(frozen=True)
class Recovery:
    requeued: list[str]
    failed: list[str]


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class JobStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: duckdb.DuckDBPyConnection | None = None
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="duckdb")

    # -- plumbing -----------------------------------------------------------------------------

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, functools.partial(self._locked, fn, *args)
        )

    @blocking  # every query goes through here, on the store's own thread
    def _locked(self, fn: Callable[..., T], *args: Any) -> T:
        with self._lock:
            if self._conn is None:
                raise RuntimeError("job store is not open")
            return fn(self._conn, *args)

    @blocking
    def _connect(self) -> list[int]:
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = duckdb.connect(str(self.path))
            try:
                applied = migrate(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
            return applied

    @blocking
    def _disconnect(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.execute("CHECKPOINT")
                conn.close()

    async def open(self) -> list[int]:
        """Open (creating if needed) the database file and apply pending migrations."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._connect)

    async def close(self) -> None:
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._disconnect)
        finally:
            self._executor.shutdown(wait=False)  # its last job, the close, has finished

    async def ping(self) -> bool:
        try:
            return await asyncio.wait_for(self._run(_ping), PING_TIMEOUT_S)
        except (TimeoutError, duckdb.Error, RuntimeError):
            return False

    # -- queue --------------------------------------------------------------------------------

    async def create(self, job: NewJob) -> JobRecord:
        return await self._run(_create, job)

    async def claim(self) -> JobRecord | None:
        """The oldest pending job, now running with one more attempt; None when idle."""
        return await self._run(_claim)

    async def recover(self, max_attempts: int) -> Recovery:
        """Jobs left `running` by a process that died: back to pending (resumed from their
        stored frames by the next claim), or failed once they have used every attempt."""
        return await self._run(_recover, max_attempts)

    async def requeue(self, job_id: str) -> JobStatus | None:
        """A clean shutdown interrupted the job: pending again, its attempt given back. Returns
        the job's status afterwards (None: no such job): a job that is no longer running (its
        final write ran before the shutdown reached its worker) is left as it is."""
        return await self._run(_requeue, job_id)

    async def fail(self, job_id: str, error: str) -> None:
        await self._run(_fail, job_id, error)

    async def save_chunk(
        self, job_id: str, results: Sequence[tuple[int, dict]], complete: bool
    ) -> int:
        """Store frame results and the progress they imply in one transaction; returns
        frames_done. Re-storing a frame is a no-op, so each frame is stored exactly once."""
        return await self._run(_save_chunk, job_id, results, complete)

    # -- reads --------------------------------------------------------------------------------

    async def get(self, job_id: str) -> JobRecord | None:
        return await self._run(_get, job_id)

    async def stored_frames(self, job_id: str) -> set[int]:
        return await self._run(_stored_frames, job_id)

    async def results_json(self, job_id: str) -> str:
        """`[{"frame_index": n, "result": {...}}, ...]` ordered by frame_index, assembled from the
        stored JSON text without parsing it again."""
        return await self._run(_results_json, job_id)

    async def list_jobs(
        self, limit: int, offset: int, status: JobStatus | None = None
    ) -> tuple[list[JobRecord], int]:
        return await self._run(_list, limit, offset, status)

    async def active_uploads(self) -> set[str]:
        return await self._run(_active_uploads)


# Statements, run on the store thread with the lock held.


def _in_transaction(conn: duckdb.DuckDBPyConnection, body: Callable[[], T]) -> T:
    conn.execute("BEGIN TRANSACTION")
    try:
        result = body()
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


def _ping(conn: duckdb.DuckDBPyConnection) -> bool:
    return conn.execute("SELECT 1").fetchone() == (1,)


def _fetch_job(conn: duckdb.DuckDBPyConnection) -> JobRecord | None:
    row = conn.fetchone()
    return JobRecord.from_row(row) if row else None


def _create(conn: duckdb.DuckDBPyConnection, job: NewJob) -> JobRecord:
    now = _now()
    conn.execute(
        f"INSERT INTO jobs ({_COLUMNS}) VALUES (?, ?, 'pending', ?, ?, ?, ?, 0, 0, NULL, ?, ?) "
        f"RETURNING {_COLUMNS}",
        [
            job.job_id,
            job.pipeline_id,
            job.upload_name,
            job.frame_stride,
            job.max_frames,
            job.frames_total,
            now,
            now,
        ],
    )
    record = _fetch_job(conn)
    assert record is not None
    return record


def _claim(conn: duckdb.DuckDBPyConnection) -> JobRecord | None:
    conn.execute(
        "UPDATE jobs SET status = 'running', attempts = attempts + 1, "
        "updated_at = greatest(updated_at, ?) "
        "WHERE job_id = (SELECT job_id FROM jobs WHERE status = 'pending' "
        "ORDER BY created_at, job_id LIMIT 1) "
        f"RETURNING {_COLUMNS}",
        [_now()],
    )
    return _fetch_job(conn)


def _recover(conn: duckdb.DuckDBPyConnection, max_attempts: int) -> Recovery:
    def body() -> Recovery:
        now = _now()
        conn.execute(
            "UPDATE jobs SET status = 'failed', updated_at = greatest(updated_at, ?), "
            "error = 'gave up after ' || attempts || ' attempts: the process stopped while "
            "running this job each time' "
            "WHERE status = 'running' AND attempts >= ? RETURNING job_id",
            [now, max_attempts],
        )
        failed = [r[0] for r in conn.fetchall()]
        conn.execute(
            "UPDATE jobs SET status = 'pending', updated_at = greatest(updated_at, ?) "
            "WHERE status = 'running' RETURNING job_id",
            [now],
        )
        return Recovery(requeued=[r[0] for r in conn.fetchall()], failed=failed)

    return _in_transaction(conn, body)


def _requeue(conn: duckdb.DuckDBPyConnection, job_id: str) -> JobStatus | None:
    conn.execute(
        "UPDATE jobs SET status = 'pending', attempts = greatest(attempts - 1, 0), "
        "updated_at = greatest(updated_at, ?) WHERE job_id = ? AND status = 'running'",
        [_now(), job_id],
    )
    row = conn.execute("SELECT status FROM jobs WHERE job_id = ?", [job_id]).fetchone()
    return JobStatus(row[0]) if row else None


def _fail(conn: duckdb.DuckDBPyConnection, job_id: str, error: str) -> None:
    conn.execute(
        "UPDATE jobs SET status = 'failed', error = ?, updated_at = greatest(updated_at, ?) "
        "WHERE job_id = ?",
        [error, _now(), job_id],
    )


def _save_chunk(
    conn: duckdb.DuckDBPyConnection,
    job_id: str,
    results: Sequence[tuple[int, dict]],
    complete: bool,
) -> int:
    rows = [(job_id, i, json.dumps(result, separators=(",", ":"))) for i, result in results]

    def body() -> int:
        if rows:
            conn.executemany(
                "INSERT INTO job_results (job_id, frame_index, result) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                rows,
            )
        conn.execute(
            "UPDATE jobs SET "
            "frames_done = (SELECT count(*) FROM job_results WHERE job_id = ?), "
            "status = CASE WHEN ? THEN 'completed' ELSE status END, "
            "updated_at = greatest(updated_at, ?) "
            "WHERE job_id = ? RETURNING frames_done",
            [job_id, complete, _now(), job_id],
        )
        row = conn.fetchone()
        if row is None:
            raise KeyError(job_id)
        return int(row[0])

    return _in_transaction(conn, body)


def _get(conn: duckdb.DuckDBPyConnection, job_id: str) -> JobRecord | None:
    conn.execute(f"SELECT {_COLUMNS} FROM jobs WHERE job_id = ?", [job_id])
    return _fetch_job(conn)


def _stored_frames(conn: duckdb.DuckDBPyConnection, job_id: str) -> set[int]:
    rows = conn.execute("SELECT frame_index FROM job_results WHERE job_id = ?", [job_id]).fetchall()
    return {r[0] for r in rows}


def _results_json(conn: duckdb.DuckDBPyConnection, job_id: str) -> str:
    rows = conn.execute(
        "SELECT frame_index, result FROM job_results WHERE job_id = ? ORDER BY frame_index",
        [job_id],
    ).fetchall()
    items = ",".join(f'{{"frame_index":{index},"result":{result}}}' for index, result in rows)
    return f"[{items}]"


def _list(
    conn: duckdb.DuckDBPyConnection, limit: int, offset: int, status: JobStatus | None
) -> tuple[list[JobRecord], int]:
    where, params = ("WHERE status = ?", [status.value]) if status else ("", [])
    row = conn.execute(f"SELECT count(*) FROM jobs {where}", params).fetchone()
    total = int(row[0]) if row else 0
    conn.execute(
        f"SELECT {_COLUMNS} FROM jobs {where} ORDER BY created_at DESC, job_id LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    return [JobRecord.from_row(r) for r in conn.fetchall()], total


def _active_uploads(conn: duckdb.DuckDBPyConnection) -> set[str]:
    rows = conn.execute(
        "SELECT upload_name FROM jobs WHERE status IN ('pending', 'running')"
    ).fetchall()
    return {r[0] for r in rows}
