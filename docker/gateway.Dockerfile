# syntax=docker/dockerfile:1
# Framegate gateway / jobs / `helm test` image. Build from the repository root:
#   docker build -f docker/gateway.Dockerfile -t ghcr.io/framegate/framegate:0.1.0 .
# The chart runs it read-only as uid 10001 with an emptyDir on /tmp (and /data for the jobs role).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY api ./api
RUN pip install . \
    && groupadd --gid 10001 framegate \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin framegate

USER 10001:10001
EXPOSE 8000
# The `framegate` CLI is on PATH too: the chart's test pod runs `framegate verify`.
# `framegate serve`, never bare uvicorn: it refuses permessage-deflate and uses uvloop/httptools.
CMD ["framegate", "serve", "--host", "0.0.0.0", "--port", "8000"]
