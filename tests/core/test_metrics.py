"""The gateway's metrics (api/core/metrics.py) are a contract: the README, the runbook and the
chart's PromQL name them, and `framegate guard` parses them. Exposed here on a fresh registry
(the process's collectors registered into it, values shared), so nothing else in the process
shows up, and read back with the guard's own parser."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample as Sample_

from api.core import metrics
from api.guard.samples import SERVER_ERROR_CODES, Sample, parse_sample
from api.streaming.protocol import ErrorCode

COLLECTORS = [v for v in vars(metrics).values() if isinstance(v, MetricWrapperBase)]
BY_NAME = {family.name: c for c in COLLECTORS for family in c.describe()}
# Label sets the guard, the runbook and the chart's queries select on (with a value each uses).
LABELS = {
    "framegate_stream_frames": {"outcome": "received"},
    "framegate_stream_sessions": {"outcome": "client_disconnected"},
    "framegate_stream_errors": {"code": "internal_error"},
    "framegate_stream_frames_expired": {"pipeline": "yolo"},
    "framegate_stream_frame_failures": {"pipeline": "yolo"},
    "framegate_stream_latency_seconds": {"pipeline": "yolo"},
    "framegate_batch_size": {"pipeline": "yolo"},
    "framegate_batch_window_frames": {"pipeline": "yolo"},
    "framegate_triton_request_seconds": {"pipeline": "yolo"},
}
# Defined elsewhere: the guard's own registry, the loop audit, the job workers (tests/jobs).
OTHER_MODULES = ("framegate_guard_", "framegate_loop_", "framegate_job_", "framegate_jobs_")


def fresh_registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    for collector in COLLECTORS:
        registry.register(collector)  # raises on a name registered twice
    return registry


def exposed_names(registry: CollectorRegistry) -> set[str]:
    """Every sample name a scrape can show, whether or not a labelled child exists yet."""
    names: set[str] = set()
    for family in registry.collect():
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names |= {family.name, *(f"{family.name}_{s}" for s in ("bucket", "sum", "count"))}
        else:
            names.add(family.name)
    return names


def referenced_names(repo_root: Path) -> set[str]:
    texts = [
        repo_root / "README.md",
        *(repo_root / "docs").glob("*.md"),
        *(repo_root / "helm" / "framegate" / "templates").rglob("*.*"),
        *(repo_root / "api" / "guard").glob("*.py"),
    ]
    found = {name for path in texts for name in re.findall(r"framegate_[a-z_]+", path.read_text())}
    return {name for name in found if not name.startswith(OTHER_MODULES)}


def test_every_metric_the_docs_chart_and_guard_name_is_exposed(repo_root: Path) -> None:
    referenced = referenced_names(repo_root)
    missing = sorted(referenced - exposed_names(fresh_registry()))
    assert len(referenced) >= 10, f"the scan found too few names to mean anything: {referenced}"
    assert missing == [], f"named in README/docs/chart/guard but not exposed: {missing}"


def samples_of(collector: MetricWrapperBase) -> list[Sample_]:
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    return [
        sample
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.name.endswith("_created")
    ]


@pytest.mark.parametrize("name", sorted(LABELS))
def test_a_labelled_metric_has_the_labels_queries_select_on(name: str) -> None:
    labels = LABELS[name]
    BY_NAME[name].labels(**labels)  # ValueError when the label names differ

    samples = [s for s in samples_of(BY_NAME[name]) if labels.items() <= s.labels.items()]

    assert samples, f"no {name} series with {labels}"
    assert all(set(s.labels) - {"le"} == set(labels) for s in samples)


@pytest.mark.parametrize("name", sorted(set(BY_NAME) - set(LABELS)))
def test_every_other_metric_is_one_series_without_labels(name: str) -> None:
    # e.g. `framegate_stream_sessions_active` as the HPA and the runbook read it
    assert [s.labels for s in samples_of(BY_NAME[name])] == [{}]


def observed(sample: Sample) -> float:
    """Latency observations in a sample: the +Inf bucket (0 before any exists)."""
    return sample.latency_buckets[-1][1] if sample.latency_buckets else 0.0


def test_the_guard_reads_what_the_gateway_counts() -> None:
    registry = fresh_registry()
    before = parse_sample(generate_latest(registry).decode())

    metrics.STREAM_FRAMES.labels("received").inc(10)
    metrics.STREAM_FRAMES.labels("processed").inc(7)
    metrics.STREAM_FRAMES.labels("dropped").inc(3)
    metrics.STREAM_EXPIRED.labels("ocr").inc(2)
    metrics.STREAM_FRAME_FAILURES.labels("yolo").inc(1)
    metrics.STREAM_ERRORS.labels(str(ErrorCode.INTERNAL_ERROR)).inc(1)
    metrics.STREAM_ERRORS.labels(str(ErrorCode.INVALID_FRAME)).inc(4)  # the client's fault
    metrics.STREAM_LATENCY.labels("yolo").observe(0.03)

    after = parse_sample(generate_latest(registry).decode())
    moved = Sample(
        received=after.received - before.received,
        processed=after.processed - before.processed,
        expired=after.expired - before.expired,
        server_errors=after.server_errors - before.server_errors,
        frame_failures=after.frame_failures - before.frame_failures,
    )
    assert moved == Sample(received=10, processed=7, expired=2, server_errors=1, frame_failures=1)
    assert observed(after) - observed(before) == 1  # the guard's p99 sees the observation


def test_the_codes_the_guard_counts_as_server_errors_are_gateway_error_codes() -> None:
    assert SERVER_ERROR_CODES.issubset(str(code) for code in ErrorCode)
