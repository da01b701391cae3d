# syntax=docker/dockerfile:1
# Triton Inference Server with the Framegate model repository at /models. Build from the repository root:
#   docker build -f docker/triton.Dockerfile -t ghcr.io/framegate/framegate-triton:0.1.0 .
# The chart passes `tritonserver --model-repository=/models ...` as args to the NGC entrypoint, adds
# --model-config-name=cpu when triton.gpu.enabled=false, and runs it read-only as uid 1000 with
# emptyDirs on /tmp and /dev/shm.
FROM nvcr.io/nvidia/tritonserver:24.10-py3

ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Python backend dependencies of the pipeline models (the image's system Python runs the stub).
RUN pip install "numpy<2" opencv-python-headless onnxruntime-gpu pyclipper

# The project package, for the helpers the Python models import. The image's Python is 3.10, older
# than the project's requires-python, hence --ignore-requires-python: the modules the models import
# must stay 3.10-compatible.
COPY pyproject.toml README.md /tmp/framegate-src/
COPY api /tmp/framegate-src/api
RUN pip install --no-deps --ignore-requires-python /tmp/framegate-src \
    && rm -rf /tmp/framegate-src

COPY triton_models /models

# triton-server (uid 1000) is the non-root user of the NGC image.
USER 1000:1000
