"""Video files as durable background jobs: a DuckDB-backed queue, workers and frame reading."""
