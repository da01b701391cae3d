"""Versioned schema of the job store. Append migrations; never edit one that has shipped.

`migrate` is idempotent: it applies only the versions above the one recorded in
`schema_version`, each in its own transaction, and refuses a file written by a newer build (a
`helm rollback` must not run old code against a schema it does not know).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "jobs queue and per-frame results",
        (
            """
            CREATE TABLE jobs (
                job_id       VARCHAR PRIMARY KEY,
                pipeline_id  VARCHAR NOT NULL,
                status       VARCHAR NOT NULL
                             CHECK (status IN ('pending', 'running', 'completed', 'failed')),
                upload_name  VARCHAR NOT NULL,
                frame_stride INTEGER NOT NULL CHECK (frame_stride >= 1),
                max_frames   INTEGER CHECK (max_frames IS NULL OR max_frames >= 1),
                frames_total INTEGER NOT NULL CHECK (frames_total >= 1),
                frames_done  INTEGER NOT NULL DEFAULT 0,
                attempts     INTEGER NOT NULL DEFAULT 0,
                error        VARCHAR,
                created_at   TIMESTAMP NOT NULL,
                updated_at   TIMESTAMP NOT NULL
            )
            """,
            """
            CREATE TABLE job_results (
                job_id      VARCHAR NOT NULL,
                frame_index INTEGER NOT NULL,
                result      VARCHAR NOT NULL,
                PRIMARY KEY (job_id, frame_index)
            )
            """,
        ),
    ),
)

LATEST = MIGRATIONS[-1].version

_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    version     INTEGER PRIMARY KEY,
    description VARCHAR NOT NULL,
    applied_at  TIMESTAMP NOT NULL DEFAULT current_timestamp
)
"""


class SchemaTooNew(RuntimeError):
    pass


def current_version(conn: duckdb.DuckDBPyConnection) -> int:
    conn.execute(_VERSION_TABLE)
    row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
    return int(row[0]) if row else 0


def migrate(conn: duckdb.DuckDBPyConnection) -> list[int]:
    """Bring the schema to LATEST; returns the versions applied now (empty when up to date)."""
    found = current_version(conn)
    if found > LATEST:
        raise SchemaTooNew(f"job store schema v{found} is newer than this build's v{LATEST}")
    applied = []
    for migration in MIGRATIONS:
        if migration.version <= found:
            continue
        conn.execute("BEGIN TRANSACTION")
        try:
            for statement in migration.statements:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_version (version, description) VALUES (?, ?)",
                [migration.version, migration.description],
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        applied.append(migration.version)
    return applied
