"""The `framegate guard` Deployment, its least-privilege RBAC, the optional analysis templates."""

from __future__ import annotations

import copy

import helm_python
import jsonschema
import pytest

from tests.chart.test_chart_render import BUILTIN_API_GROUPS
from tests.support import kube_schema

GUARD = {"guard": {"enabled": True}}
PROMETHEUS = {
    "guard": {
        "enabled": True,
        "prometheus": {"url": "http://prometheus.monitoring:9090"},
        "analysis": {"argoRollouts": True, "flagger": True},
    }
}
SELECTOR = 'namespace="vision",job="fg-framegate-gateway"'
SERVER_CODES = 'code=~"inference_unavailable|internal_error|pipeline_failure"'
# The guard's Prometheus mode (api/guard/sources.py PrometheusSource.queries, signals.error_ratio):
# server-side failures over frames received, over the guard's window.
ERROR_RATIO = (
    f"((sum(increase(framegate_stream_errors_total{{{SELECTOR},{SERVER_CODES}}}[30s]))"
    " or vector(0))"
    f" + (sum(increase(framegate_stream_frame_failures_total{{{SELECTOR}}}[30s])) or vector(0)))"
    f' / sum(increase(framegate_stream_frames_total{{{SELECTOR},outcome="received"}}[30s]))'
)
GUARD_CASES = {
    "file": GUARD,
    "kubernetes": {**GUARD, "flags": {"provider": "kubernetes"}},
    "ofo": {**GUARD, "openFeatureOperator": {"enabled": True}},
    "prometheus": PROMETHEUS,
    "restricted": {**GUARD, "networkPolicy": {"ingressFrom": [{"podSelector": {}}]}},
}


def guard_args(rendered) -> list[str]:
    container = rendered.container("guard")
    assert container["command"][:2] == ["framegate", "guard"]
    return container["command"][2:]


def options(args: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    i = 0
    while i < len(args):
        name = args[i]
        assert name.startswith("--"), args
        if i + 1 < len(args) and not args[i + 1].startswith("--"):
            found.setdefault(name, []).append(args[i + 1])
            i += 2
        else:
            found.setdefault(name, []).append("")
            i += 1
    return found


def test_guard_is_off_by_default(render):
    rendered = render("defaults")

    assert rendered.find("Deployment", "guard") is None
    assert rendered.find("Role", "guard") is None
    assert rendered.find("ServiceAccount", "guard") is None


def test_guard_runs_framegate_guard_against_the_gateway_endpoints(render):
    args = options(guard_args(render(overrides=GUARD)))

    assert args == {
        "--kube-endpoints": ["fg-framegate-gateway"],
        "--kube-port": ["http"],
        "--configmap": ["fg-framegate-flags"],
        "--namespace": ["vision"],
        "--max-error-ratio": ["0.05"],
        "--max-expiry-ratio": ["0.98"],
        "--max-p99-ms": ["5000"],
        "--stall-s": ["25"],
        "--window-s": ["30"],
        "--for-s": ["15"],
        "--min-frames": ["50"],
        "--host": ["0.0.0.0"],
        "--port": ["9108"],
        "--log-level": ["INFO"],
    }


def test_guard_options_follow_values(render):
    values = {
        "guard": {
            "enabled": True,
            "dryRun": True,
            "autoReenableS": 600,
            "metricsUrls": ["http://10.0.0.1:8000/metrics", "http://10.0.0.2:8000/metrics"],
            "thresholds": {"maxErrorRatio": 0.2, "maxP99Ms": 500, "minFrames": 10},
        },
        "openFeatureOperator": {"enabled": True},
    }
    args = options(guard_args(render(overrides=values)))

    assert args["--metrics-url"] == values["guard"]["metricsUrls"]
    assert "--kube-endpoints" not in args
    assert args["--featureflag"] == ["fg-framegate-flags"]
    assert "--configmap" not in args
    assert (args["--max-error-ratio"], args["--max-p99-ms"], args["--min-frames"]) == (
        ["0.2"],
        ["500"],
        ["10"],
    )
    assert args["--dry-run"] == [""]
    assert args["--auto-reenable"] == ["600"]


def test_guard_prometheus_mode(render):
    args = options(guard_args(render(overrides=PROMETHEUS)))

    assert args["--prometheus-url"] == ["http://prometheus.monitoring:9090"]
    assert args["--prometheus-selector"] == [SELECTOR]
    assert "--kube-endpoints" not in args


@pytest.mark.parametrize(
    ("values", "flag_rule"),
    [
        (
            GUARD,
            {
                "apiGroups": [""],
                "resources": ["configmaps"],
                "resourceNames": ["fg-framegate-flags"],
            },
        ),
        (
            {**GUARD, "openFeatureOperator": {"enabled": True}},
            {
                "apiGroups": ["core.openfeature.dev"],
                "resources": ["featureflags"],
                "resourceNames": ["fg-framegate-flags"],
            },
        ),
    ],
    ids=["configmap", "featureflag"],
)
def test_guard_rbac_is_least_privilege(render, namespace, values, flag_rule):
    rendered = render(overrides=values)
    role = rendered.named("Role", "guard")
    binding = rendered.named("RoleBinding", "guard")
    pod = rendered.workload("guard")["spec"]["template"]["spec"]

    assert role["rules"] == [
        {**flag_rule, "verbs": ["get", "patch"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
        {
            "apiGroups": ["discovery.k8s.io"],
            "resources": ["endpointslices"],
            "verbs": ["list", "watch"],
        },
    ]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "fg-framegate-guard", "namespace": namespace}
    ]
    assert pod["serviceAccountName"] == "fg-framegate-guard"
    assert pod["automountServiceAccountToken"] is True
    assert rendered.named("ServiceAccount", "guard")["automountServiceAccountToken"] is False


def test_guard_without_discovery_cannot_list_endpoints(render):
    rendered = render(overrides=PROMETHEUS)
    resources = [r for rule in rendered.named("Role", "guard")["rules"] for r in rule["resources"]]

    assert resources == ["configmaps", "events"]


def test_release_pods_get_no_guard_token(render):
    """Only the guard's own ServiceAccount is bound to the guard Role."""
    rendered = render(overrides=GUARD)

    for component in ("gateway", "jobs", "triton"):
        pod = rendered.workload(component)["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] != "fg-framegate-guard", component


@pytest.mark.parametrize("provider", ["env", "flagd"])
def test_guard_needs_a_flag_object_it_can_patch(chart, provider):
    values = {
        "guard": {"enabled": True},
        "flags": {"provider": provider, "flagd": {"host": "flagd"}},
    }

    with pytest.raises(helm_python.HelmError, match="guard needs"):
        chart.render(values, name="fg")


def test_guard_rejects_stall_longer_than_window(chart):
    values = {"guard": {"enabled": True, "thresholds": {"stallS": 60, "windowS": 30}}}

    with pytest.raises(helm_python.HelmError, match="stallS"):
        chart.render(values, name="fg")


@pytest.mark.parametrize(
    "values",
    [
        {"guard": {"enabled": True, "thresholds": {"maxErrorRatio": -1}}},
        {"guard": {"enabled": True, "thresholds": {"minFrames": 0}}},
        {"guard": {"enabled": True, "autoReenableS": 0.5}},
        {"guard": {"enabled": True, "metricsUrls": ["gateway:8000"]}},
        {"guard": {"enabled": "yes"}},
        {"guard": {"thresholds": {"maxP99": 1}}},
    ],
    ids=["ratio", "min-frames", "reenable", "url", "bool", "unknown"],
)
def test_schema_rejects_bad_guard_values(chart, values):
    with pytest.raises(helm_python.HelmValuesError):
        chart.render(values, name="fg")


def test_analysis_templates_need_prometheus(chart):
    values = {"guard": {"analysis": {"argoRollouts": True}}}

    with pytest.raises(helm_python.HelmError, match=r"guard\.prometheus\.url"):
        chart.render(values, name="fg")


def test_guard_pod_is_locked_down(render):
    pod = render(overrides=GUARD).workload("guard")["spec"]["template"]["spec"]
    container = pod["containers"][0]

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert rendered_replicas(render(overrides=GUARD)) == (1, {"type": "Recreate"})


def rendered_replicas(rendered) -> tuple[int, dict]:
    spec = rendered.workload("guard")["spec"]
    return spec["replicas"], spec["strategy"]


@pytest.mark.parametrize("case_name", sorted(GUARD_CASES))
@pytest.mark.parametrize("k8s", ["1.29.0", "1.34.0"])
def test_guard_objects_validate(chart_dir, render, custom_schemas, case_name, k8s):
    values = GUARD_CASES[case_name]
    report = helm_python.lint(chart_dir, values, strict=True, kube_version=f"v{k8s}")
    assert [m for m in report["messages"] if m["severity"] >= 2] == []

    for obj in render(overrides=values).objects:
        if obj["apiVersion"] in BUILTIN_API_GROUPS:
            kube_schema.validate(obj, k8s, strict=True)
        else:
            jsonschema.Draft7Validator(
                custom_schemas[f"{obj['apiVersion']}/{obj['kind']}"]
            ).validate(obj)


# --- analysis templates ------------------------------------------------------------------------


def test_analysis_templates_are_off_by_default(render):
    rendered = render(overrides=GUARD)

    assert rendered.of_kind("AnalysisTemplate") == []
    assert rendered.of_kind("MetricTemplate") == []


def test_argo_analysis_template_uses_the_guard_promql(render):
    template = render(overrides=PROMETHEUS).named("AnalysisTemplate", "guard")
    metric = template["spec"]["metrics"][0]

    assert template["apiVersion"] == "argoproj.io/v1alpha1"
    assert metric["name"] == "error-ratio"
    assert metric["provider"]["prometheus"]["address"] == "http://prometheus.monitoring:9090"
    assert " ".join(metric["provider"]["prometheus"]["query"].split()) == ERROR_RATIO
    assert metric["successCondition"] == "len(result) == 0 || isNaN(result[0]) || result[0] <= 0.05"


def test_flagger_metric_template_uses_the_guard_promql(render):
    template = render(overrides=PROMETHEUS).named("MetricTemplate", "guard")

    assert template["apiVersion"] == "flagger.app/v1beta1"
    assert template["spec"]["provider"] == {
        "type": "prometheus",
        "address": "http://prometheus.monitoring:9090",
    }
    assert " ".join(template["spec"]["query"].split()) == ERROR_RATIO


@pytest.mark.parametrize(
    ("kind", "path"),
    [
        ("AnalysisTemplate", ("spec", "metrics", 0, "provider", "prometheus")),
        ("MetricTemplate", ("spec", "provider")),
    ],
)
def test_crd_schemas_reject_unknown_fields(render, custom_schemas, kind, path):
    obj = copy.deepcopy(render(overrides=PROMETHEUS).named(kind, "guard"))
    node = obj
    for key in path:
        node = node[key]
    node["adress"] = "typo"
    schema = custom_schemas[f"{obj['apiVersion']}/{kind}"]

    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(schema).validate(obj)


def test_chart_defaults_are_the_guards_measured_defaults(render):
    """The chart passes every threshold explicitly, so its defaults must be the CLI's (measured
    not to trip on a healthy saturated service, api/guard/signals.py), not an older guess."""
    from api.guard.signals import Thresholds

    args = options(guard_args(render(overrides=GUARD)))
    defaults = Thresholds()
    flags = {
        "--max-error-ratio": defaults.max_error_ratio,
        "--max-expiry-ratio": defaults.max_expiry_ratio,
        "--max-p99-ms": defaults.max_p99_ms,
        "--stall-s": defaults.stall_s,
        "--window-s": defaults.window_s,
        "--for-s": defaults.for_s,
        "--min-frames": defaults.min_frames,
    }
    assert {flag: float(args[flag][0]) for flag in flags} == {
        flag: float(value) for flag, value in flags.items()
    }
