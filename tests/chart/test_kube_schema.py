"""The cached validator (tests/support/kube_schema.py) agrees with kubernetes_validate itself: it
accepts what the library accepts and rejects what it rejects, with the same error, so the chart
tests that use it cannot silently pass everything."""

from __future__ import annotations

import copy

import kubernetes_validate
import pytest

from tests.support import kube_schema

KUBE = "1.34.0"


def both_raise(
    obj: dict, error: type[Exception], strict: bool = True, version: str = KUBE
) -> tuple[Exception, Exception]:
    with pytest.raises(error) as ours:
        kube_schema.validate(obj, version, strict=strict)
    with pytest.raises(error) as theirs:
        kubernetes_validate.validate(obj, version, strict=strict)
    return ours.value, theirs.value


@pytest.fixture
def deployment(render) -> dict:
    return copy.deepcopy(render("defaults").workload("gateway"))


@pytest.mark.parametrize("version", [KUBE, f"v{KUBE}", "1.29.7"])
def test_a_valid_object_passes_and_names_the_schema_version(deployment, version):
    expected = kubernetes_validate.validate(deployment, version, strict=True)

    assert kube_schema.validate(deployment, version, strict=True) == expected
    assert kube_schema.validate(deployment, version, strict=True) == expected  # cached, same


def test_a_wrong_type_is_rejected_with_the_librarys_error(deployment):
    deployment["spec"]["replicas"] = "three"

    ours, theirs = both_raise(deployment, kubernetes_validate.ValidationError)

    assert (ours.message, list(ours.path), ours.version) == (
        theirs.message,
        list(theirs.path),
        theirs.version,
    )
    assert list(ours.path) == ["spec", "replicas"]


def test_an_unknown_field_is_rejected_only_under_strict(deployment):
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"

    ours, theirs = both_raise(deployment, kubernetes_validate.ValidationError)

    assert ours.message == theirs.message
    assert "imagePullPolicyy" in ours.message
    assert kube_schema.validate(deployment, KUBE) == kubernetes_validate.validate(deployment, KUBE)


def test_an_unknown_kind_has_no_schema(deployment):
    deployment["kind"] = "Deploymint"

    ours, theirs = both_raise(deployment, kubernetes_validate.SchemaNotFoundError)

    assert ours.message == theirs.message


def test_a_kubernetes_newer_than_the_schemas_is_not_supported(deployment):
    newer = f"9.{kubernetes_validate.utils.latest_version()}"

    ours, theirs = both_raise(
        deployment, kubernetes_validate.utils.VersionNotSupportedError, version=newer
    )

    assert ours.message == theirs.message
