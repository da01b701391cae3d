"""The chart lints and every rendered object validates, for every values file of the matrix."""

from __future__ import annotations

import copy

import helm_python
import jsonschema
import kubernetes_validate
import pytest

from tests.support import kube_schema

BUILTIN_API_GROUPS = (
    "v1",
    "apps/v1",
    "autoscaling/v2",
    "policy/v1",
    "rbac.authorization.k8s.io/v1",
)
BUILTIN_API_GROUPS += ("networking.k8s.io/v1",)


def test_lint_strict_passes(chart_dir, values_of, case, kube_version):
    report = helm_python.lint(
        chart_dir, values_of(case), strict=True, kube_version=f"v{kube_version}"
    )

    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert problems == []
    assert report["errors"] == []


def test_objects_validate_against_kubernetes_schemas(render, case, kube_version):
    for obj in render(case).objects:
        if obj["apiVersion"] not in BUILTIN_API_GROUPS:
            continue
        try:
            kube_schema.validate(obj, kube_version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']}: {exc.message} at {exc.path}")


def test_custom_resources_validate_against_crd_schemas(render, case, custom_schemas):
    for obj in render(case).objects:
        if obj["apiVersion"] in BUILTIN_API_GROUPS:
            continue
        key = f"{obj['apiVersion']}/{obj['kind']}"
        assert key in custom_schemas, f"no schema for {key}"
        jsonschema.Draft7Validator(custom_schemas[key]).validate(obj)


def test_crd_schema_rejects_unknown_field(render, custom_schemas):
    feature_flag = copy.deepcopy(render("ofo").named("FeatureFlag", "flags"))
    feature_flag["spec"]["flagSpec"]["flags"]["video-streaming"]["stat"] = "ENABLED"
    schema = custom_schemas["core.openfeature.dev/v1beta1/FeatureFlag"]

    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(schema).validate(feature_flag)


def test_every_object_has_a_valid_name(render, case):
    for obj in render(case).objects:
        name = obj["metadata"]["name"]
        assert len(name) <= 63, name
        assert name == name.lower() and not name.endswith("-"), name


def test_namespaced_objects_carry_release_namespace(render, case, namespace):
    for obj in render(case).objects:
        assert obj["metadata"]["namespace"] == namespace, obj["metadata"]["name"]


def test_notes_render(render, case):
    notes = render(case).notes
    assert "helm test fg" in notes
    assert "helm rollback fg" in notes
