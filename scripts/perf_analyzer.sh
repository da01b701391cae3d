#!/usr/bin/env bash
# NVIDIA perf_analyzer on this CPU-only setup, reproducibly; all arguments go to perf_analyzer.
#
#   scripts/perf_analyzer.sh -m pipeline_yolo_ocr -u 127.0.0.1:8001 -i grpc \
#       --input-data build/perf_input.json -b 8 --concurrency-range 1:4
#
# perf_analyzer is no longer on PyPI on its own; the old tritonclient 2.41.1 wheel still carries
# the binary (tritonclient-2.41.1.data/data/bin/perf_analyzer). It is linked against Debian's
# libb64-0d and CUDA's libcudart.so.12. No CUDA is installed here, but the nvidia-pytriton wheel
# ships a libcudart 12 (nvidia_pytriton.libs/libcudart-*.so.*), which loads fine without a GPU:
# a private lib dir with a `libcudart.so.12` symlink to it is put on LD_LIBRARY_PATH for the
# binary only. Everything lives under build/perf_analyzer/ (git-ignored); setup runs once.
# Setup messages go to stderr, so stdout is perf_analyzer's alone.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PA_VERSION="2.41.1"
DIR="$ROOT/build/perf_analyzer"
BIN="$DIR/bin/perf_analyzer"
LIBDIR="$DIR/lib"

log() { echo "perf_analyzer.sh: $*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if [ ! -x "$BIN" ]; then
  mkdir -p "$DIR/bin"
  wheel="$(find "$DIR" -maxdepth 1 -name "tritonclient-$PA_VERSION-*.whl" | head -n 1)"
  if [ -z "$wheel" ]; then
    log "downloading tritonclient[all]==$PA_VERSION (for its perf_analyzer binary)"
    "$VENV/bin/python" -m pip download --quiet --disable-pip-version-check --no-deps \
      "tritonclient[all]==$PA_VERSION" -d "$DIR" >&2
    wheel="$(find "$DIR" -maxdepth 1 -name "tritonclient-$PA_VERSION-*.whl" | head -n 1)"
  fi
  [ -n "$wheel" ] || { log "no tritonclient $PA_VERSION wheel in $DIR"; exit 1; }
  log "extracting perf_analyzer from $(basename "$wheel")"
  "$VENV/bin/python" - "$wheel" "$BIN" "$PA_VERSION" <<'EOF'
import shutil, sys, zipfile
wheel, dest, version = sys.argv[1:]
with zipfile.ZipFile(wheel) as zf, zf.open(f"tritonclient-{version}.data/data/bin/perf_analyzer") as src, open(dest + ".tmp", "wb") as out:
    shutil.copyfileobj(src, out)
EOF
  chmod +x "$BIN.tmp"
  mv "$BIN.tmp" "$BIN"
fi

if ! dpkg-query -W -f='${Status}' libb64-0d 2>/dev/null | grep -q "install ok installed"; then
  log "installing Debian's libb64-0d"
  if ! as_root apt-get install -y libb64-0d >&2; then
    as_root apt-get update >&2
    as_root apt-get install -y libb64-0d >&2
  fi
fi

if [ ! -e "$LIBDIR/libcudart.so.12" ]; then
  site="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  cudart="$(find "$site/nvidia_pytriton.libs" -maxdepth 1 -name 'libcudart-*.so.*' 2>/dev/null \
    | head -n 1)"
  [ -n "$cudart" ] || { log "no libcudart in $site/nvidia_pytriton.libs (nvidia-pytriton?)"; exit 1; }
  mkdir -p "$LIBDIR"
  ln -sfn "$cudart" "$LIBDIR/libcudart.so.12"
fi

export LD_LIBRARY_PATH="$LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
exec "$BIN" "$@"
