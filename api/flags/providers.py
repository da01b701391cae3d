"""The OpenFeature provider that FLAG_PROVIDER names, with what the service needs to know of it."""

from __future__ import annotations

from dataclasses import dataclass

from kubernetes.client import ApiClient
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import ResolverType
from openfeature.provider import FeatureProvider

from api.core.config import FlagProviderName, Settings
from api.flags.env_provider import EnvFlagProvider
from api.flags.file_provider import FlagdFileProvider
from api.flags.flagfile import flag_file_path
from api.flags.keys import STREAMING_ENV_VAR
from api.flags.kube_provider import ConfigMapFlagProvider


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    name: str  # FLAG_PROVIDER value, or a label for a provider built by hand
    source: str  # where the flags come from, for status and logs
    provider: FeatureProvider
    blocking: bool = False  # evaluation does I/O (RPC): run it in a worker thread


def build_provider(settings: Settings, *, api_client: ApiClient | None = None) -> ProviderSpec:
    """Build (not start) the provider; `api_client` overrides in-cluster/kubeconfig loading."""
    name = settings.flag_provider
    if name is FlagProviderName.FILE:
        path = flag_file_path(settings)
        return ProviderSpec(name.value, str(path), FlagdFileProvider(path))
    if name is FlagProviderName.FLAGD:
        # Every evaluation is a gRPC call bounded by FLAGD_DEADLINE_MS (500 ms): blocking.
        provider = FlagdProvider(
            resolver_type=ResolverType.RPC, host=settings.flagd_host, port=settings.flagd_port
        )
        source = f"flagd {settings.flagd_host}:{settings.flagd_port}"
        return ProviderSpec(name.value, source, provider, blocking=True)
    if name is FlagProviderName.KUBERNETES:
        configmap = ConfigMapFlagProvider(
            settings.flag_configmap, settings.flag_namespace, api_client=api_client
        )
        return ProviderSpec(name.value, configmap.source, configmap)
    if name is FlagProviderName.ENV:
        return ProviderSpec(name.value, f"env {STREAMING_ENV_VAR}", EnvFlagProvider())
    raise ValueError(f"unknown FLAG_PROVIDER {name!r}")
