"""make_api_client: a given API server as it is (no credentials), else the pod's service account,
else the current kubeconfig context, else ConfigException. The service account and kubeconfig
are files in tmp_path; the client library reads their locations from module constants fixed at
import (KUBECONFIG included), so those are pointed at tmp_path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes.client import ApiClient
from kubernetes.config import ConfigException, incluster_config, kube_config

from api.flags.kube_client import make_api_client

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: dev
  cluster: {server: "https://kube.example:6443"}
users:
- name: dev-user
  user: {token: kubeconfig-token}
contexts:
- name: dev
  context: {cluster: dev, user: dev-user}
current-context: dev
"""


@pytest.fixture
def clients() -> Iterator[list[ApiClient]]:
    made: list[ApiClient] = []
    yield made
    for client in made:
        client.close()


@pytest.fixture
def no_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside any cluster and without a kubeconfig (until a test writes one)."""
    for name in (incluster_config.SERVICE_HOST_ENV_NAME, incluster_config.SERVICE_PORT_ENV_NAME):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(tmp_path / "sa" / "token"))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(tmp_path / "sa" / "ca.crt"))
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(tmp_path / "kubeconfig"))


def write_kubeconfig(tmp_path: Path) -> None:
    (tmp_path / "kubeconfig").write_text(KUBECONFIG)


def enter_pod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the kubelet gives a pod: the service's address and a service-account token."""
    account = tmp_path / "sa"
    account.mkdir()
    (account / "token").write_text("pod-token")
    (account / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setenv(incluster_config.SERVICE_HOST_ENV_NAME, "10.96.0.1")
    monkeypatch.setenv(incluster_config.SERVICE_PORT_ENV_NAME, "443")


@pytest.mark.usefixtures("no_cluster")
def test_a_given_api_server_is_used_as_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clients: list[ApiClient]
) -> None:
    enter_pod(tmp_path, monkeypatch)  # even inside a pod, with a kubeconfig too
    write_kubeconfig(tmp_path)

    client = make_api_client("http://127.0.0.1:8001/")
    clients.append(client)

    assert client.configuration.host == "http://127.0.0.1:8001"  # trailing slash cut
    assert client.configuration.api_key == {}  # `kubectl proxy` holds the credentials
    assert client.configuration.ssl_ca_cert is None


@pytest.mark.usefixtures("no_cluster")
def test_in_a_pod_the_service_account_wins_over_a_kubeconfig(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clients: list[ApiClient]
) -> None:
    enter_pod(tmp_path, monkeypatch)
    write_kubeconfig(tmp_path)

    client = make_api_client()
    clients.append(client)

    assert client.configuration.host == "https://10.96.0.1:443"
    assert client.configuration.api_key["BearerToken"] == "bearer pod-token"
    assert client.configuration.ssl_ca_cert == str(tmp_path / "sa" / "ca.crt")


@pytest.mark.usefixtures("no_cluster")
def test_outside_a_cluster_the_current_kubeconfig_context_is_used(
    tmp_path: Path, clients: list[ApiClient]
) -> None:
    write_kubeconfig(tmp_path)

    client = make_api_client()
    clients.append(client)

    assert client.configuration.host == "https://kube.example:6443"
    assert client.configuration.api_key["BearerToken"] == "Bearer kubeconfig-token"


@pytest.mark.usefixtures("no_cluster")
def test_with_neither_it_raises_config_exception() -> None:
    with pytest.raises(ConfigException):
        make_api_client()


@pytest.mark.usefixtures("no_cluster")
def test_an_empty_api_server_means_none_given(tmp_path: Path, clients: list[ApiClient]) -> None:
    write_kubeconfig(tmp_path)  # `--api-server ""` from a script falls back like no option

    client = make_api_client("")
    clients.append(client)

    assert client.configuration.host == "https://kube.example:6443"
