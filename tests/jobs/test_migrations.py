from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from api.jobs.migrations import LATEST, SchemaTooNew, migrate


def _tables(conn: duckdb.DuckDBPyConnection) -> set[str]:
    return {
        r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables").fetchall()
    }


def test_migrate_fresh_file_creates_schema(tmp_path: Path) -> None:
    with duckdb.connect(str(tmp_path / "db.duckdb")) as conn:
        assert migrate(conn) == list(range(1, LATEST + 1))
        assert _tables(conn) == {"schema_version", "jobs", "job_results"}
        assert conn.execute("SELECT max(version) FROM schema_version").fetchone() == (LATEST,)


def test_migrate_is_idempotent_across_reopen(tmp_path: Path) -> None:
    path = str(tmp_path / "db.duckdb")
    with duckdb.connect(path) as conn:
        migrate(conn)
    with duckdb.connect(path) as conn:
        assert migrate(conn) == []
        assert migrate(conn) == []
        assert conn.execute("SELECT count(*) FROM schema_version").fetchone() == (LATEST,)


def test_migrate_refuses_newer_schema(tmp_path: Path) -> None:
    with duckdb.connect(str(tmp_path / "db.duckdb")) as conn:
        migrate(conn)
        conn.execute(
            "INSERT INTO schema_version (version, description) VALUES (?, 'future')", [LATEST + 1]
        )
        with pytest.raises(
            SchemaTooNew, match=f"v{LATEST + 1} is newer than this build's v{LATEST}"
        ):
            migrate(conn)


def test_results_primary_key_rejects_duplicate_frames(tmp_path: Path) -> None:
    with duckdb.connect(str(tmp_path / "db.duckdb")) as conn:
        migrate(conn)
        conn.execute("INSERT INTO job_results VALUES ('j', 0, '{}')")
        with pytest.raises(duckdb.ConstraintException):
            conn.execute("INSERT INTO job_results VALUES ('j', 0, '{}')")
