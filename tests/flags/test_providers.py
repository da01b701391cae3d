"""Which provider FLAG_PROVIDER builds. `flagd` has no server here (no flagd binary): it is
checked by construction and against a closed port (default served, loop never blocked)."""

from __future__ import annotations

from pathlib import Path

from kubernetes.client import ApiClient
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import ResolverType

from api.core.config import FlagProviderName
from api.core.loop_audit import LoopAudit
from api.flags import build_provider
from api.flags.env_provider import EnvFlagProvider
from api.flags.file_provider import ContentFileWatcher, FlagdFileProvider
from api.flags.kube_provider import ConfigMapFlagProvider
from tests.flags.conftest import StartService, ctx, make_settings
from tests.support.ports import free_port


def test_build_file_provider_uses_flagd_file_resolver(tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    spec = build_provider(
        make_settings(flag_provider=FlagProviderName.FILE, flagd_offline_flag_source_path=path)
    )
    assert isinstance(spec.provider, FlagdFileProvider)
    assert spec.provider.config.resolver is ResolverType.FILE
    assert spec.provider.config.deadline_ms == 500  # the FILE poll interval
    assert isinstance(spec.provider.watcher, ContentFileWatcher)
    assert (spec.name, spec.source, spec.blocking) == ("file", str(path), False)


def test_build_file_provider_defaults_under_data_dir(tmp_path: Path) -> None:
    spec = build_provider(make_settings(flag_provider=FlagProviderName.FILE, data_dir=tmp_path))
    assert spec.source == str(tmp_path / "flags.json")


def test_build_flagd_provider_is_rpc_and_blocking() -> None:
    settings = make_settings(
        flag_provider=FlagProviderName.FLAGD, flagd_host="flagd.test", flagd_port=9999
    )
    spec = build_provider(settings)
    try:
        assert isinstance(spec.provider, FlagdProvider)
        config = spec.provider.config
        assert (config.resolver, config.host, config.port) == (ResolverType.RPC, "flagd.test", 9999)
        assert spec.blocking is True
        assert spec.source == "flagd flagd.test:9999"
    finally:
        spec.provider.shutdown()  # closes the gRPC channel made at construction


def test_build_kubernetes_provider_names_the_configmap() -> None:
    settings = make_settings(
        flag_provider=FlagProviderName.KUBERNETES, flag_configmap="cm", flag_namespace="ns"
    )
    with ApiClient() as api:
        spec = build_provider(settings, api_client=api)
        assert isinstance(spec.provider, ConfigMapFlagProvider)
        assert spec.source == "configmap ns/cm key flags.json"


def test_build_env_provider() -> None:
    spec = build_provider(make_settings(flag_provider=FlagProviderName.ENV))
    assert isinstance(spec.provider, EnvFlagProvider)
    assert spec.source == "env STREAMING_ENABLED"


async def test_flagd_unreachable_gives_default_off_the_loop(start_service: StartService) -> None:
    settings = make_settings(
        flag_provider=FlagProviderName.FLAGD,
        flagd_host="127.0.0.1",
        flagd_port=free_port(),
        streaming_enabled=False,
    )
    service = await start_service(settings, poll_interval_s=None)
    assert service.status()["state"] == "error"
    audit = LoopAudit()  # this thread runs the event loop
    audit.install()
    try:
        details = await service.evaluate(ctx())
    finally:
        audit.uninstall()
    assert (details.value, details.error_code is not None) == (False, True)
    assert audit.caught == {}  # the RPC (up to 500 ms) ran on a worker thread, not the loop
