#!/usr/bin/env bash
# The whole test suite: setup, lint, then every test (embedded Triton included).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/ruff check api tests scripts
.venv/bin/ruff format --check api tests scripts
exec .venv/bin/python -m pytest -p no:cacheprovider -ra "$@"
