#!/usr/bin/env bash
# The whole test suite: setup, lint, type check, then every test (embedded Triton included).
# With arguments, they go to one pytest run instead (scripts/test.sh -m "not triton" -x, say).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/ruff check --no-cache api tests scripts
.venv/bin/ruff format --no-cache --check api tests scripts
# Types of api/ ([tool.mypy] in pyproject.toml); any error fails the run before the tests start.
.venv/bin/mypy
PYTEST=(.venv/bin/python -m pytest -p no:cacheprovider -ra)
if [ "$#" -gt 0 ]; then
  exec "${PYTEST[@]}" "$@"  # a selection of one's own: one pytest run, as asked
fi
# The whole suite in two runs: the fast layer in cores + 1 processes (pytest-xdist, see
# tests/conftest.py), then the slow layer in one process, where its tests share one tritonserver.
# Both always run; the first failure's status is the script's (5, no tests collected, included).
status=0
"${PYTEST[@]}" -m "not triton" || status=$?
"${PYTEST[@]}" -m triton || { rc=$?; [ "$status" -ne 0 ] || status=$rc; }
exit "$status"
