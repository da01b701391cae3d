#!/usr/bin/env bash
# The whole test suite: setup, lint, type check, then every test (embedded Triton included).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/ruff check --no-cache api tests scripts
.venv/bin/ruff format --no-cache --check api tests scripts
# Types of api/ ([tool.mypy] in pyproject.toml); any error fails the run before the tests start.
.venv/bin/mypy
exec .venv/bin/python -m pytest -p no:cacheprovider -ra "$@"
