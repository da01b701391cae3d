#!/usr/bin/env bash
# Idempotent setup: project venv in .venv with the runtime and test dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test]"
# Reference OCR for tests only. --no-deps: it requires the GUI opencv-python, which would clash
# with opencv-python-headless (both install cv2); its other dependencies are in the test extra.
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps "rapidocr-onnxruntime==1.4.4"
# The browser tests (tests/web) drive Debian's Chromium through Playwright, which never downloads
# a browser of its own here.
command -v chromium >/dev/null 2>&1 \
  || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)
# matplotlib (the load test's plots) builds its font cache on its first import by running
# fc-list; built here, so the fast layer (which refuses subprocesses) never starts it on a fresh
# machine.
.venv/bin/python -c "import matplotlib; matplotlib.use('Agg'); import matplotlib.font_manager"
.venv/bin/python -c "import cv2, onnxruntime, pytriton, tritonclient.grpc.aio" \
  || { echo "setup: dependency check failed" >&2; exit 1; }
echo "setup: ok (.venv ready; run .venv/bin/framegate --help)"
