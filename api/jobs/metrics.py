"""Job metrics (same process-wide registry as api.core.metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

JOBS_RUNNING = Gauge("framegate_jobs_running", "Jobs being processed by this process's workers")
JOBS_FINISHED = Counter(
    "framegate_jobs_finished_total", "Jobs that reached a final state", ["status"]
)
JOB_FRAMES = Counter("framegate_job_frames_total", "Frame results stored by job workers")
JOB_INFERENCE_RETRIES = Counter(
    "framegate_job_inference_retries_total", "Chunks retried because inference was unavailable"
)
