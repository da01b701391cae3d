"""Behaviour the rollback plan relies on, checked on the rendered manifests."""

from __future__ import annotations

import hashlib
import json

import helm_python
import pytest

from api.core.config import Settings

SELECTOR_KEYS = {
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
}
# The application's pydantic-settings environment names.
SETTINGS_ENV = frozenset(
    [
        "ROLE",
        "TRITON_URL",
        "STREAMING_ROUTER",
        "FLAG_PROVIDER",
        "FLAGD_OFFLINE_FLAG_SOURCE_PATH",
        "FLAGD_HOST",
        "FLAGD_PORT",
        "FLAG_CONFIGMAP",
        "FLAG_NAMESPACE",
        "STREAMING_ENABLED",
        "STREAM_MAX_SESSIONS",
        "STREAM_MAX_INFLIGHT",
        "STREAM_MAX_FRAME_SIZE_MB",
        "STREAM_DROP_THRESHOLD",
        "STREAM_SLOWDOWN_THRESHOLD",
        "STREAM_IDLE_TIMEOUT_S",
        "STREAM_MAX_SESSION_S",
        "STREAM_LATENCY_BUDGET_MS",
        "STREAM_AUTH_TOKEN",
        "BATCH_MAX_SIZE",
        "BATCH_MAX_DELAY_MS",
        "DATA_DIR",
        "JOBS_CONCURRENCY",
        "VIDEO_MAX_UPLOAD_MB",
        "LOG_LEVEL",
        "SHUTDOWN_TIMEOUT_S",
    ]
)
FLAG_FLIPS = (
    {"flags": {"videoStreaming": {"enabled": False}}},
    {"flags": {"videoStreaming": {"targeting": {"fractional": [["on", 5], ["off", 95]]}}}},
)


def selectors(rendered) -> dict[str, dict[str, str]]:
    """Every immutable or routing selector, keyed by kind and component."""
    found = {}
    for obj in rendered.objects:
        kind, spec = obj["kind"], obj.get("spec", {})
        component = obj["metadata"]["labels"].get("app.kubernetes.io/component", "")
        if kind in ("Deployment", "PodDisruptionBudget"):
            found[f"{kind}/{component}"] = spec["selector"]["matchLabels"]
        elif kind == "Service":
            headless = "-headless" if spec.get("clusterIP") == "None" else ""
            found[f"Service/{component}{headless}"] = spec["selector"]
    return found


def pod_templates(rendered) -> dict[str, dict]:
    return {o["metadata"]["name"]: o["spec"]["template"] for o in rendered.of_kind("Deployment")}


def flags_document(rendered) -> dict:
    return json.loads(rendered.named("ConfigMap", "flags")["data"]["flags.json"])


# --- selectors -------------------------------------------------------------------------------


def test_selectors_identical_across_value_sets(render, case):
    baseline = selectors(render("defaults"))
    current = selectors(render(case))

    assert current
    for key, selector in current.items():
        assert selector == baseline[key], key


def test_selectors_hold_only_release_identity_and_component(render, case):
    for key, selector in selectors(render(case)).items():
        assert set(selector) == SELECTOR_KEYS, key
        assert selector["app.kubernetes.io/instance"] == "fg"


def test_pod_labels_match_their_selector(render, case):
    for obj in render(case).of_kind("Deployment"):
        assert (
            obj["spec"]["template"]["metadata"]["labels"] == obj["spec"]["selector"]["matchLabels"]
        )


# --- flags and checksums -----------------------------------------------------------------------


@pytest.mark.parametrize(("enabled", "variant"), [(True, "on"), (False, "off")])
def test_flag_configmap_default_variant_follows_values(render, enabled, variant):
    rendered = render(overrides={"flags": {"videoStreaming": {"enabled": enabled}}})

    flag = flags_document(rendered)["flags"]["video-streaming"]

    assert flag["defaultVariant"] == variant
    assert flag["state"] == "ENABLED"
    assert flag["variants"] == {"on": True, "off": False}
    assert "targeting" not in flag


def test_flag_configmap_is_flagd_format_with_targeting(render):
    document = flags_document(render("targeting"))

    assert document["$schema"] == "https://flagd.dev/schema/v0/flags.json"
    flag = document["flags"]["video-streaming"]
    assert flag["defaultVariant"] == "off"
    assert flag["targeting"] == {"fractional": [{"var": "targetingKey"}, ["on", 10], ["off", 90]]}


@pytest.mark.parametrize("base", ["defaults", "kubernetes-provider", "flagd-provider", "ofo"])
@pytest.mark.parametrize("flip", FLAG_FLIPS, ids=["disable", "targeting"])
def test_flag_change_leaves_pod_templates_untouched(render, base, flip):
    before = render(base)
    after = render(base, flip)

    assert pod_templates(after) == pod_templates(before)
    assert after.objects != before.objects  # the flag itself did change


def test_env_provider_flag_flip_is_a_rollout(render):
    before = render("env-provider")
    after = render("env-provider", FLAG_FLIPS[0])

    assert after.named("ConfigMap", "settings")["data"]["STREAMING_ENABLED"] == "false"
    assert checksum(after, "gateway") != checksum(before, "gateway")


def test_shared_setting_change_rolls_gateway_and_jobs(render):
    """Per-workload checksums: tests/chart/test_chart_workloads.py (a gateway-only setting leaves
    the jobs pod alone)."""
    before = render("defaults")
    after = render("defaults", {"logLevel": "DEBUG"})

    assert after.named("ConfigMap", "settings")["data"]["LOG_LEVEL"] == "DEBUG"
    assert checksum(after, "gateway") != checksum(before, "gateway")
    assert checksum(after, "jobs") != checksum(before, "jobs")


def test_checksum_is_a_sha256(render, case):
    rendered = render(case)

    assert len(checksum(rendered, "gateway")) == len(hashlib.sha256().hexdigest())
    debug = render("defaults", {"logLevel": "DEBUG"})
    assert checksum(rendered, "gateway") != checksum(debug, "gateway")


def test_only_settings_and_secret_are_checksummed(render, case):
    for name, template in pod_templates(render(case)).items():
        keys = {k for k in template["metadata"].get("annotations", {}) if k.startswith("checksum/")}
        assert keys <= {"checksum/config", "checksum/secret"}, name


def checksum(rendered, component: str) -> str:
    return rendered.workload(component)["spec"]["template"]["metadata"]["annotations"][
        "checksum/config"
    ]


# --- flag providers ----------------------------------------------------------------------------


def test_file_provider_mounts_flag_configmap_as_directory(render):
    rendered = render("defaults")
    pod = rendered.workload("gateway")["spec"]["template"]["spec"]
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "flags")
    volume = next(v for v in pod["volumes"] if v["name"] == "flags")

    assert mount["mountPath"] == "/etc/framegate/flags"
    assert "subPath" not in mount
    assert volume["configMap"]["name"] == rendered.named("ConfigMap", "flags")["metadata"]["name"]
    env = rendered.env("gateway")
    assert env["FLAG_PROVIDER"] == "file"
    assert env["FLAGD_OFFLINE_FLAG_SOURCE_PATH"] == "/etc/framegate/flags/flags.json"
    assert pod["automountServiceAccountToken"] is False


def test_kubernetes_provider_has_least_privilege_rbac(render, namespace):
    rendered = render("kubernetes-provider")
    env = rendered.env("gateway")
    role = rendered.named("Role", "flag-reader")
    binding = rendered.named("RoleBinding", "flag-reader")
    pod = rendered.workload("gateway")["spec"]["template"]["spec"]

    assert env["FLAG_PROVIDER"] == "kubernetes"
    assert env["FLAG_CONFIGMAP"] == "fg-framegate-flags"
    assert env["FLAG_NAMESPACE"] == namespace
    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": ["fg-framegate-flags"],
            "verbs": ["get", "list", "watch"],
        }
    ]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": pod["serviceAccountName"], "namespace": namespace}
    ]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert pod["automountServiceAccountToken"] is True
    assert all(v["name"] != "flags" for v in pod["volumes"])


@pytest.mark.parametrize("case_without_rbac", ["defaults", "flagd-provider", "env-provider", "ofo"])
def test_rbac_only_for_kubernetes_provider(render, case_without_rbac):
    rendered = render(case_without_rbac)

    assert rendered.of_kind("Role") == []
    assert rendered.of_kind("RoleBinding") == []


def test_flagd_provider_points_at_service(render):
    env = render("flagd-provider").env("gateway")

    assert env["FLAG_PROVIDER"] == "flagd"
    assert (env["FLAGD_HOST"], env["FLAGD_PORT"]) == ("flagd.flags.svc", "8013")


def test_flagd_provider_without_host_fails(chart):
    with pytest.raises(helm_python.HelmError, match=r"flags\.flagd\.host is required"):
        chart.render({"flags": {"provider": "flagd"}}, name="fg")


def test_env_provider_reads_streaming_enabled(render):
    rendered = render("env-provider")

    assert rendered.env("gateway")["FLAG_PROVIDER"] == "env"
    assert rendered.named("ConfigMap", "settings")["data"]["STREAMING_ENABLED"] == "true"
    assert rendered.find("ConfigMap", "flags") is None


def test_fallback_value_is_fail_closed_by_default(render):
    assert render("defaults").named("ConfigMap", "settings")["data"]["STREAMING_ENABLED"] == "false"


def test_openfeature_operator_annotates_pods_and_uses_sidecar(render, namespace):
    rendered = render("ofo")
    template = rendered.workload("gateway")["spec"]["template"]
    source = rendered.named("FeatureFlagSource", "flag-source")
    feature_flag = rendered.named("FeatureFlag", "flags")

    annotations = template["metadata"]["annotations"]
    assert annotations["openfeature.dev/enabled"] == "true"
    assert annotations["openfeature.dev/featureflagsource"] == source["metadata"]["name"]
    env = rendered.env("gateway")
    assert (env["FLAG_PROVIDER"], env["FLAGD_HOST"], env["FLAGD_PORT"]) == (
        "flagd",
        "localhost",
        "8013",
    )
    assert source["spec"]["sources"] == [
        {"source": f"{namespace}/{feature_flag['metadata']['name']}", "provider": "kubernetes"}
    ]
    assert source["spec"]["rolloutOnChange"] is False
    assert feature_flag["spec"]["flagSpec"]["flags"]["video-streaming"]["defaultVariant"] == "on"
    assert rendered.find("ConfigMap", "flags") is None


def test_openfeature_operator_flag_follows_values(render):
    rendered = render("ofo", {"flags": {"videoStreaming": {"enabled": False}}})
    flag = rendered.named("FeatureFlag", "flags")["spec"]["flagSpec"]["flags"]["video-streaming"]

    assert flag["defaultVariant"] == "off"
    assert flag["variants"] == {"on": True, "off": False}


# --- streaming router, hooks, workloads --------------------------------------------------------


@pytest.mark.parametrize(
    ("case_name", "router"), [("defaults", "true"), ("streaming-disabled", "false")]
)
def test_streaming_router_env_follows_values(render, case_name, router):
    assert render(case_name).env("gateway")["STREAMING_ROUTER"] == router


def test_streaming_disabled_rolls_only_the_gateway(render):
    before = pod_templates(render("defaults"))
    after = pod_templates(render("streaming-disabled"))

    assert after["fg-framegate-gateway"] != before["fg-framegate-gateway"]
    assert after["fg-framegate-jobs"] == before["fg-framegate-jobs"]
    assert after["fg-framegate-triton"] == before["fg-framegate-triton"]


def test_only_hooks_are_the_test_pods_and_the_jobs_pvc(render, case):
    """The jobs PVC is a pre-install hook so no rollback re-applies it (test_chart_workloads.py)."""
    rendered = render(case)
    hooks = sorted(
        (o["kind"], o["metadata"]["annotations"]["helm.sh/hook"])
        for o in rendered.objects
        if "helm.sh/hook" in o["metadata"].get("annotations", {})
    )

    jobs = rendered.find("Deployment", "jobs") is not None
    expected = [("PersistentVolumeClaim", "pre-install")] if jobs else []
    expected += [("Pod", "test")] * (2 if jobs else 1)
    assert hooks == expected


@pytest.mark.parametrize(
    ("case_name", "expected"),
    [("defaults", "on"), ("streaming-disabled", "off"), ("targeting", "any")],
)
def test_helm_test_runs_framegate_verify(render, case_name, expected):
    pod = render(case_name).named("Pod", "test-verify")

    assert pod["spec"]["containers"][0]["command"] == [
        "framegate",
        "verify",
        "--url",
        "http://fg-framegate-gateway:80",
        "--expect-streaming",
        expected,
        "--client-id",
        "framegate-helm-test",
    ]
    assert pod["spec"]["restartPolicy"] == "Never"


def test_triton_gpu_on(render):
    rendered = render("defaults")
    container = rendered.container("triton")

    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert not any(a.startswith("--model-config-name") for a in container["args"])


def test_triton_gpu_off(render):
    container = render("gpu-off").container("triton")

    assert "nvidia.com/gpu" not in container["resources"].get("limits", {})
    assert "nvidia.com/gpu" not in container["resources"].get("requests", {})
    assert "--model-config-name=cpu" in container["args"]


def test_triton_args_ports_and_probes(render):
    container = render("defaults").container("triton")

    assert container["args"][:2] == ["tritonserver", "--model-repository=/models"]
    assert {"--http-port=8000", "--grpc-port=8001", "--metrics-port=8002"} <= set(container["args"])
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {
        "http": 8000,
        "grpc": 8001,
        "metrics": 8002,
    }
    assert container["startupProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"


def test_triton_model_repository_from_pvc(render):
    pod = render("observability").workload("triton")["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "models")
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "models")

    assert volume["persistentVolumeClaim"] == {"claimName": "triton-models", "readOnly": True}
    assert (mount["mountPath"], mount["readOnly"]) == ("/models", True)


def test_gateway_reaches_triton_through_headless_service(render, namespace):
    rendered = render("defaults")
    headless = rendered.named("Service", "triton-headless")

    assert headless["spec"]["clusterIP"] == "None"
    assert rendered.named("ConfigMap", "settings")["data"]["TRITON_URL"] == (
        f"dns:///fg-framegate-triton-headless.{namespace}.svc:8001"
    )


def test_gateway_service_and_probes(render):
    rendered = render("defaults")
    service = rendered.named("Service", "gateway")
    container = rendered.container("gateway")

    assert service["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}
    ]
    assert container["ports"][0]["containerPort"] == 8000
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready?scope=pod"
    assert rendered.env("gateway")["ROLE"] == "stream"


@pytest.mark.parametrize(("case_name", "has_replicas"), [("defaults", True), ("hpa", False)])
def test_hpa_owns_gateway_replicas(render, case_name, has_replicas):
    rendered = render(case_name)

    assert ("replicas" in rendered.workload("gateway")["spec"]) is has_replicas
    assert bool(rendered.of_kind("HorizontalPodAutoscaler")) is not has_replicas


def test_hpa_targets_gateway(render):
    rendered = render("hpa")
    hpa = rendered.named("HorizontalPodAutoscaler", "gateway")

    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == rendered.workload("gateway")["metadata"]["name"]
    assert [m["type"] for m in hpa["spec"]["metrics"]] == ["Resource", "Pods"]


def test_jobs_is_a_single_writer_on_a_pvc(render):
    rendered = render("defaults")
    jobs = rendered.workload("jobs")
    pod = jobs["spec"]["template"]["spec"]
    claim = next(v for v in pod["volumes"] if v["name"] == "data")["persistentVolumeClaim"]

    assert jobs["spec"]["replicas"] == 1
    assert jobs["spec"]["strategy"] == {"type": "Recreate"}
    assert rendered.env("jobs")["ROLE"] == "jobs"
    assert rendered.env("jobs")["DATA_DIR"] == "/data"
    pvc = rendered.named("PersistentVolumeClaim", "data")
    assert claim["claimName"] == pvc["metadata"]["name"]
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


def test_jobs_pvc_storage_values(render):
    pvc = render("observability").named("PersistentVolumeClaim", "data")

    assert pvc["spec"]["storageClassName"] == "fast-ssd"
    assert pvc["spec"]["accessModes"] == ["ReadWriteOncePod"]


def test_jobs_disabled_renders_no_jobs_objects(render):
    rendered = render("jobs-disabled")

    components = {
        o["metadata"]["labels"].get("app.kubernetes.io/component") for o in rendered.objects
    }
    assert "jobs" not in components
    assert rendered.of_kind("PersistentVolumeClaim") == []


def test_pdbs_for_gateway_and_triton(render):
    rendered = render("observability")

    assert rendered.named("PodDisruptionBudget", "gateway")["spec"]["maxUnavailable"] == 1
    triton = rendered.named("PodDisruptionBudget", "triton")["spec"]
    assert triton["minAvailable"] == 1
    assert "maxUnavailable" not in triton


def test_stream_auth_token_from_secret(render):
    rendered = render("observability")
    secret = rendered.named("Secret", "stream-auth")

    assert rendered.env("gateway")["STREAM_AUTH_TOKEN"] == {
        "secretKeyRef": {"name": secret["metadata"]["name"], "key": "token"}
    }
    assert (
        "checksum/secret"
        in rendered.workload("gateway")["spec"]["template"]["metadata"]["annotations"]
    )


def test_settings_use_only_known_env_names(render, case):
    rendered = render(case)
    names = set(rendered.named("ConfigMap", "settings")["data"])
    for obj in rendered.of_kind("Deployment"):
        if obj["metadata"]["labels"]["app.kubernetes.io/component"] != "triton":
            names |= {e["name"] for e in obj["spec"]["template"]["spec"]["containers"][0]["env"]}

    assert names <= SETTINGS_ENV


# --- security ----------------------------------------------------------------------------------


def test_pods_are_locked_down(render, case):
    pods = [o["spec"]["template"]["spec"] for o in render(case).of_kind("Deployment")]
    pods += [o["spec"] for o in render(case).of_kind("Pod")]

    for pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        tmp = next(v for v in pod["volumes"] if v["name"] == "tmp")
        assert "emptyDir" in tmp
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]


# --- schema --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"flags": {"provider": "bogus"}}, "provider"),
        ({"logLevel": "LOUD"}, "logLevel"),
        ({"gateway": {"replicaCount": 3}}, "replicaCount"),
        ({"triton": {"gpu": {"enabled": "yes"}}}, "enabled"),
        ({"stream": {"dropThreshold": 1.5}}, "dropThreshold"),
        ({"stream": {"latencyBudgetMs": -5}}, "latencyBudgetMs"),
        ({"batch": {"maxSize": 32}}, "maxSize"),
        ({"tests": {"expectStreaming": "maybe"}}, "expectStreaming"),
    ],
    ids=[
        "provider-enum",
        "loglevel-enum",
        "unknown-key",
        "bool-type",
        "threshold-range",
        "budget-range",
        "batch-range",
        "test",
    ],
)
def test_schema_rejects_bad_values(chart, values, message):
    with pytest.raises(helm_python.HelmValuesError, match=message):
        chart.render(values, name="fg")


def test_schema_describes_every_property(chart):
    def walk(node, path):
        for key, child in node.get("properties", {}).items():
            assert "description" in child or "$ref" in child, f"{path}.{key}"
            walk(child, f"{path}.{key}")

    walk(chart.schema, "values")


def test_schema_requires_every_default_key(chart):
    def walk(node, values, path):
        if not isinstance(values, dict) or "properties" not in node:
            return
        assert set(node.get("required", [])) <= set(values), path
        assert set(values) <= set(node["properties"]), path
        for key, child in node["properties"].items():
            walk(child, values.get(key), f"{path}.{key}")

    walk(chart.schema, chart.values, "values")


def test_autoscaling_rejects_inverted_bounds(chart):
    values = {"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 2}}

    with pytest.raises(helm_python.HelmError, match="maxReplicas"):
        chart.render(values, name="fg")


# --- values.yaml documentation ------------------------------------------------------------------


def undocumented_values(text: str) -> list[str]:
    """Keys of values.yaml with no comment of their own and no `# --`-documented ancestor.

    A comment directly above a key documents it; `# -- ...` above a key documents its whole value
    (e.g. a security context object), so its children need no comment of their own.
    """
    missing: list[str] = []
    ancestors: list[tuple[int, str, bool]] = []  # (indent, key, documents its whole value)
    comment = ""  # first line of the comment block right above the current line
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            comment = ""
            continue
        if stripped.startswith("#"):
            comment = comment or stripped
            continue
        indent = len(line) - len(line.lstrip())
        if not stripped.startswith("- ") and ":" in stripped:
            key = stripped.split(":", 1)[0]
            while ancestors and ancestors[-1][0] >= indent:
                ancestors.pop()
            if not comment and not any(whole for _, _, whole in ancestors):
                missing.append(".".join([k for _, k, _ in ancestors] + [key]))
            ancestors.append((indent, key, comment.startswith("# --")))
        comment = ""
    return missing


def test_every_value_is_commented(chart_dir):
    assert undocumented_values((chart_dir / "values.yaml").read_text()) == []


@pytest.mark.parametrize("component", ["gateway", "jobs"])
def test_api_pods_run_framegate_serve(render, component):
    """`framegate serve` carries the server options (no permessage-deflate, uvloop, httptools);
    bare uvicorn, the image's old CMD, negotiates compression for every client."""
    pod = render("defaults").named("Deployment", component)["spec"]["template"]["spec"]

    assert pod["containers"][0]["command"] == [
        "framegate", "serve", "--host", "0.0.0.0", "--port", "8000",
    ]  # fmt: skip


def test_rendered_settings_pass_the_app_startup_checks(render, case):
    """Every feature's values give the gateway and jobs pods settings that `framegate serve`
    accepts (api/core/config.py): a chart default can never crash-loop on its own checks."""
    rendered = render(case)
    data = rendered.named("ConfigMap", "settings")["data"]
    for obj in rendered.of_kind("Deployment"):
        component = obj["metadata"]["labels"]["app.kubernetes.io/component"]
        if component == "triton":
            continue
        container = obj["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e["value"] for e in container["env"] if "value" in e}  # not secrets
        settings = Settings(**{name.lower(): value for name, value in {**data, **env}.items()})
        assert settings.contradictions() == [], component
