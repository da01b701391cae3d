"""Workload settings the API server or a rollback would trip over: update strategies, per-workload
checksums, image digests, Triton's GPU scheduling and engine cache, HPA toggles, the jobs PVC."""

from __future__ import annotations

import helm_python
import pytest

from tests.support import kube_schema

DIGEST = "sha256:" + "ab" * 32
RECREATE = {"type": "Recreate"}


def pod_template(rendered, component: str) -> dict:
    return rendered.workload(component)["spec"]["template"]


# --- update strategies ---------------------------------------------------------------------------


@pytest.mark.parametrize("component", ["gateway", "triton"])
def test_recreate_override_renders_no_rolling_update(render, component):
    """values.yaml recommends {type: Recreate} for Triton without a spare GPU; Helm merges it with
    the default rollingUpdate block, which the API server rejects next to Recreate."""
    rendered = render(overrides={component: {"strategy": RECREATE}})

    assert rendered.workload(component)["spec"]["strategy"] == RECREATE


def test_rolling_update_keeps_its_parameters(render):
    strategy = render("defaults").workload("triton")["spec"]["strategy"]

    assert strategy == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }


def test_every_deployment_strategy_is_valid_for_recreate_overrides(render):
    rendered = render(
        overrides={"gateway": {"strategy": RECREATE}, "triton": {"strategy": RECREATE}}
    )

    for obj in rendered.of_kind("Deployment"):
        strategy = obj["spec"]["strategy"]
        if strategy["type"] == "Recreate":
            assert "rollingUpdate" not in strategy, obj["metadata"]["name"]
        kube_schema.validate(obj, "1.32.0", strict=True)
    assert rendered.workload("jobs")["spec"]["strategy"] == RECREATE  # the single writer


# --- per-workload checksums -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "rolls"),
    [
        ({"stream": {"maxSessions": 7}}, {"gateway"}),
        ({"stream": {"latencyBudgetMs": 0}}, {"gateway"}),
        ({"flags": {"fallbackEnabled": True}}, {"gateway"}),
        ({"jobs": {"concurrency": 5}}, {"jobs"}),
        ({"video": {"maxUploadMb": 50}}, {"jobs"}),
        ({"logLevel": "DEBUG"}, {"gateway", "jobs"}),
        ({"batch": {"maxSize": 4}}, {"gateway", "jobs"}),
    ],
    ids=["max-sessions", "latency-budget", "fallback", "concurrency", "upload", "log", "batch"],
)
def test_a_setting_rolls_only_the_workloads_that_read_it(render, change, rolls):
    before = render("defaults")
    after = render("defaults", change)

    assert after.named("ConfigMap", "settings") != before.named("ConfigMap", "settings")
    changed = {
        c
        for c in ("gateway", "jobs", "triton")
        if pod_template(after, c) != pod_template(before, c)
    }
    assert changed == rolls


def test_gateway_only_setting_leaves_the_jobs_pod_template_unchanged(render):
    """The jobs worker is the single writer: a restart stops every running job."""
    before = render("defaults")
    after = render("defaults", {"stream": {"maxSessions": 7, "idleTimeoutS": 9}})

    assert pod_template(after, "jobs") == pod_template(before, "jobs")


# --- images --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "component"), [("image", "gateway"), ("triton", "triton")])
def test_image_digest_pins_the_image(render, key, component):
    overrides = (
        {"image": {"digest": DIGEST}}
        if key == "image"
        else {"triton": {"image": {"digest": DIGEST}}}
    )
    rendered = render(overrides=overrides)

    repository = (
        "ghcr.io/framegate/framegate" if key == "image" else "ghcr.io/framegate/framegate-triton"
    )
    assert rendered.container(component)["image"] == f"{repository}@{DIGEST}"


def test_image_digest_applies_to_jobs_and_test_pods(render):
    rendered = render(overrides={"image": {"digest": DIGEST}})

    images = {rendered.container("jobs")["image"]}
    images |= {p["spec"]["containers"][0]["image"] for p in rendered.of_kind("Pod")}
    assert images == {f"ghcr.io/framegate/framegate@{DIGEST}"}


def test_image_without_digest_uses_the_tag(render):
    assert render("defaults").container("gateway")["image"] == "ghcr.io/framegate/framegate:0.1.0"


@pytest.mark.parametrize("digest", ["sha256:abc", "latest", "md5:" + "ab" * 16, DIGEST.upper()])
def test_schema_rejects_a_malformed_digest(chart, digest):
    with pytest.raises(helm_python.HelmValuesError, match="digest"):
        chart.render({"image": {"digest": digest}}, name="fg")


# --- Triton scheduling and engine cache -----------------------------------------------------------

GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def test_gpu_triton_tolerates_the_gpu_taint_by_default(render):
    pod = pod_template(render("defaults"), "triton")["spec"]

    assert pod["tolerations"] == [GPU_TOLERATION]
    assert "runtimeClassName" not in pod


def test_cpu_triton_has_no_gpu_toleration(render):
    assert "tolerations" not in pod_template(render("gpu-off"), "triton")["spec"]


def test_gpu_toleration_is_not_repeated_when_given(render):
    """observability.yaml lists the same toleration itself."""
    pod = pod_template(render("observability"), "triton")["spec"]

    assert pod["tolerations"] == [GPU_TOLERATION]


def test_extra_triton_tolerations_are_kept(render):
    extra = {"key": "dedicated", "operator": "Equal", "value": "inference", "effect": "NoSchedule"}
    pod = pod_template(render(overrides={"triton": {"tolerations": [extra]}}), "triton")["spec"]

    assert pod["tolerations"] == [extra, GPU_TOLERATION]


def test_triton_runtime_class(render):
    pod = pod_template(render(overrides={"triton": {"runtimeClassName": "nvidia"}}), "triton")[
        "spec"
    ]

    assert pod["runtimeClassName"] == "nvidia"


def engine_cache(rendered) -> tuple[dict, dict]:
    pod = pod_template(rendered, "triton")["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "engine-cache")
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "engine-cache")
    return volume, mount


def test_engine_cache_has_its_own_volume_by_default(render):
    """config.pbtxt caches TensorRT engines under /tmp/trt_cache: its own emptyDir (kept across
    container restarts), not the 1Gi /tmp one."""
    volume, mount = engine_cache(render("defaults"))

    assert mount["mountPath"] == "/tmp/trt_cache"
    assert volume["emptyDir"] == {"sizeLimit": "4Gi"}


def test_engine_cache_on_a_claim_survives_pod_replacement(render):
    volume, _ = engine_cache(
        render(overrides={"triton": {"engineCache": {"existingClaim": "trt"}}})
    )

    assert volume == {"name": "engine-cache", "persistentVolumeClaim": {"claimName": "trt"}}


def test_cpu_triton_has_no_engine_cache(render):
    pod = pod_template(render("gpu-off"), "triton")["spec"]

    assert all(v["name"] != "engine-cache" for v in pod["volumes"])


# --- HPA toggles ---------------------------------------------------------------------------------


def test_hpa_toggle_off_on_off(render):
    """Off: the chart sets replicas and renders no HPA; on: replicas left to the HPA (an offline
    render has no live Deployment whose count it would repeat); back off: replicas return."""
    off = render("defaults")
    on = render("hpa")
    back = render("hpa", {"autoscaling": {"enabled": False}})

    assert off.workload("gateway")["spec"]["replicas"] == 2
    assert "replicas" not in on.workload("gateway")["spec"]
    assert on.named("HorizontalPodAutoscaler", "gateway")["spec"]["minReplicas"] == 2
    assert back.workload("gateway")["spec"]["replicas"] == 2
    assert back.of_kind("HorizontalPodAutoscaler") == []
    assert pod_template(on, "gateway") == pod_template(off, "gateway")


# --- the jobs PVC and helm rollback ---------------------------------------------------------


def release_manifest(rendered) -> list[dict]:
    """What `helm upgrade` and `helm rollback` apply: every object that is not a hook."""
    return [
        o for o in rendered.objects if "helm.sh/hook" not in o["metadata"].get("annotations", {})
    ]


def test_jobs_pvc_is_outside_the_rollback_manifest(render):
    """A rollback re-applies an old manifest; an older, smaller PVC size in it asks the API server
    to shrink the claim, which it refuses. The PVC is created once (pre-install hook, kept) and
    never re-applied, so rollbacks across a resize succeed."""
    small = render("defaults")
    large = render("defaults", {"jobs": {"persistence": {"size": "50Gi"}}})

    for rendered in (small, large):
        assert [o for o in release_manifest(rendered) if o["kind"] == "PersistentVolumeClaim"] == []
    assert release_manifest(large) == release_manifest(small)
    pvc = small.named("PersistentVolumeClaim", "data")
    assert pvc["metadata"]["annotations"]["helm.sh/hook"] == "pre-install"
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert "helm.sh/hook-delete-policy" not in pvc["metadata"]["annotations"]
