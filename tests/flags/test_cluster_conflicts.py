"""Flag writes on a cluster retry a 409 Conflict on fresh data, CONFLICT_RETRIES attempts in all
(api/flags/cluster.py, tenacity), against the fake Kubernetes API."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from api.flags.cluster import CONFLICT_RETRIES, ConfigMapRef, set_configmap_streaming
from tests.flags.conftest import CONFIGMAP, NAMESPACE
from tests.flags.fake_kube import FakeKube

PATCH = f"PATCH plain /api/v1/namespaces/{NAMESPACE}/configmaps/{CONFIGMAP}"
REF = ConfigMapRef(NAMESPACE, CONFIGMAP)


def test_conflicts_short_of_the_limit_are_retried(fake_kube: FakeKube, kube_api: ApiClient) -> None:
    fake_kube.state.conflicts_to_inject = CONFLICT_RETRIES - 1
    assert set_configmap_streaming(kube_api, REF, True).label == "on"
    assert fake_kube.count(PATCH) == CONFLICT_RETRIES


def test_a_conflict_on_every_attempt_is_raised(fake_kube: FakeKube, kube_api: ApiClient) -> None:
    fake_kube.state.conflicts_to_inject = CONFLICT_RETRIES
    with pytest.raises(ApiException) as raised:
        set_configmap_streaming(kube_api, REF, True)
    assert raised.value.status == HTTPStatus.CONFLICT
    assert fake_kube.count(PATCH) == CONFLICT_RETRIES


def test_other_errors_are_not_retried(fake_kube: FakeKube, kube_api: ApiClient) -> None:
    with pytest.raises(ApiException) as raised:
        set_configmap_streaming(kube_api, ConfigMapRef(NAMESPACE, "nope"), True)
    assert raised.value.status == HTTPStatus.NOT_FOUND
    assert fake_kube.count(f"GET plain /api/v1/namespaces/{NAMESPACE}/configmaps/nope") == 1
