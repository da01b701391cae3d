#!/usr/bin/env bash
# The whole test suite: setup, lint, then every test (embedded Triton included).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/ruff check --no-cache api tests scripts
.venv/bin/ruff format --no-cache --check api tests scripts
exec .venv/bin/python -m pytest -p no:cacheprovider -ra "$@"
