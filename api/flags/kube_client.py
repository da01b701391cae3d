"""One way to get a Kubernetes `ApiClient`, shared by the provider and the CLI."""

from __future__ import annotations

from kubernetes import config
from kubernetes.client import ApiClient, Configuration


def make_api_client(api_server: str | None = None) -> ApiClient:
    """`api_server` as given, without credentials (`kubectl proxy`, a test server); otherwise the
    in-cluster service account, otherwise the current kubeconfig context.

    Raises `kubernetes.config.ConfigException` when there is neither.
    """
    configuration = Configuration()
    if api_server:
        configuration.host = api_server.rstrip("/")
        return ApiClient(configuration)
    try:
        config.load_incluster_config(client_configuration=configuration)
    except config.ConfigException:
        config.load_kube_config(client_configuration=configuration)
    return ApiClient(configuration)
