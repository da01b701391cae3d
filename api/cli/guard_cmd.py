"""`framegate guard`: watch the gateways' SLO signals, trip video-streaming off on a breach.

Exit codes: 0 stopped by SIGINT/SIGTERM; 2 bad usage.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path
from typing import Annotated

import typer
from kubernetes.client import ApiClient
from kubernetes.config import ConfigException
from prometheus_client import start_http_server

from api.core.logging import configure_logging
from api.flags.cluster import ConfigMapRef, FeatureFlagRef
from api.flags.kube_client import make_api_client
from api.guard.loop import Guard, GuardOptions
from api.guard.metrics import GuardMetrics
from api.guard.signals import Thresholds
from api.guard.sources import (
    PrometheusSource,
    ScrapeSource,
    Source,
    endpoint_slice_targets,
    static_targets,
)
from api.guard.trip import ClusterFlag, FileFlag, FlagTarget

DEFAULTS = Thresholds()


def guard(
    metrics_url: Annotated[
        list[str] | None,
        typer.Option(help="A gateway's /metrics, scraped directly (repeat for several)."),
    ] = None,
    kube_endpoints: Annotated[
        str | None,
        typer.Option(
            metavar="SERVICE",
            help="Scrape every gateway pod behind this Service (EndpointSlice API).",
        ),
    ] = None,
    kube_port: Annotated[
        str, typer.Option(help="With --kube-endpoints: the metrics port's name or number.")
    ] = "http",
    prometheus_url: Annotated[
        str | None, typer.Option(help="Prometheus base URL: PromQL instant queries instead.")
    ] = None,
    prometheus_selector: Annotated[
        str, typer.Option(help='Label matchers for the gateways\' series, e.g. job="fg-gw".')
    ] = "",
    flag_file: Annotated[
        Path | None, typer.Option(help="Trip by writing this flagd file (file provider).")
    ] = None,
    configmap: Annotated[
        str | None, typer.Option(help="Trip by patching this ConfigMap's flags.json.")
    ] = None,
    featureflag: Annotated[
        str | None, typer.Option(help="Trip by patching this OpenFeature Operator FeatureFlag.")
    ] = None,
    namespace: Annotated[
        str,
        typer.Option(
            "--namespace", "-n", envvar="FLAG_NAMESPACE", help="Namespace of the cluster objects."
        ),
    ] = "default",
    api_server: Annotated[
        str | None,
        typer.Option(help="Kubernetes API URL without credentials (kubectl proxy, a test)."),
    ] = None,
    max_error_ratio: Annotated[
        float, typer.Option(min=0, help="Server-side failures over frames received.")
    ] = DEFAULTS.max_error_ratio,
    max_expiry_ratio: Annotated[
        float, typer.Option(min=0, help="Frames expired by the latency budget over received.")
    ] = DEFAULTS.max_expiry_ratio,
    max_p99_ms: Annotated[
        float, typer.Option(min=0, help="p99 frame receipt → result, from the histogram.")
    ] = DEFAULTS.max_p99_ms,
    stall_s: Annotated[
        float, typer.Option(min=0.1, help="Frames arrive but no result goes out this long.")
    ] = DEFAULTS.stall_s,
    window_s: Annotated[
        float, typer.Option(min=0.1, help="Sliding window the ratios and p99 are taken over.")
    ] = DEFAULTS.window_s,
    for_s: Annotated[
        float, typer.Option(min=0, help="A ratio or p99 breach must last this long to trip.")
    ] = DEFAULTS.for_s,
    min_frames: Annotated[
        int, typer.Option(min=1, help="Frames received in the window before anything is judged.")
    ] = DEFAULTS.min_frames,
    interval_s: Annotated[float, typer.Option(min=0.05, help="Seconds between rounds.")] = 2.0,
    scrape_timeout_s: Annotated[float, typer.Option(min=0.1, help="Per scrape/query.")] = 3.0,
    host: Annotated[str, typer.Option(help="Address of the guard's own /metrics.")] = ("127.0.0.1"),
    port: Annotated[int, typer.Option(min=0, help="Port of the guard's /metrics (0: none).")] = (
        9108
    ),
    dry_run: Annotated[
        bool, typer.Option(help="Log what it would do; never write the flag.")
    ] = False,
    auto_reenable: Annotated[
        float | None,
        typer.Option(
            metavar="AFTER_S",
            min=1,
            help="Turn the flag back on AFTER_S after a trip once a whole window was healthy "
            "(doubles with each trip). Default: never.",
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="Log level of the JSON log lines.")] = "INFO",
) -> None:
    """Trip video-streaming off when the gateways' own SLO signals breach for long enough.

    Sources: --metrics-url (repeatable) | --kube-endpoints SERVICE | --prometheus-url.
    Flag: --flag-file | --configmap | --featureflag (the writers of `framegate flag set`).
    It never turns the flag back on unless --auto-reenable is given.
    """
    sources = [bool(metrics_url), kube_endpoints is not None, prometheus_url is not None]
    if sum(sources) != 1:
        raise typer.BadParameter("give one of --metrics-url, --kube-endpoints, --prometheus-url")
    if sum(x is not None for x in (flag_file, configmap, featureflag)) != 1:
        raise typer.BadParameter("give one of --flag-file, --configmap, --featureflag")
    if stall_s > window_s:
        raise typer.BadParameter("--stall-s must not exceed --window-s")
    thresholds = Thresholds(
        max_error_ratio=max_error_ratio,
        max_expiry_ratio=max_expiry_ratio,
        max_p99_ms=max_p99_ms,
        stall_s=stall_s,
        min_frames=min_frames,
        window_s=window_s,
        for_s=for_s,
    )
    options = GuardOptions(thresholds, interval_s, dry_run, auto_reenable)
    configure_logging(log_level)
    # Only the cluster sources and writers talk to the API server.
    needs_api = kube_endpoints is not None or flag_file is None
    api = _api_client(api_server) if needs_api else None
    metrics = GuardMetrics(thresholds)
    server = start_http_server(port, addr=host, registry=metrics.registry) if port else None
    try:
        target = _flag_target(flag_file, configmap, featureflag, namespace, api)
        source: Source
        if prometheus_url is not None:
            source = PrometheusSource(
                prometheus_url, window_s, stall_s, prometheus_selector, scrape_timeout_s
            )
        else:
            if metrics_url:
                discover = static_targets(metrics_url)
            else:
                assert api is not None and kube_endpoints is not None
                discover = endpoint_slice_targets(api, kube_endpoints, namespace, kube_port)
            source = ScrapeSource(discover, window_s, stall_s, scrape_timeout_s, metrics.scraped)
        asyncio.run(_run(Guard(source, target, options, metrics)))
    finally:
        if server is not None:
            server[0].shutdown()
            server[0].server_close()
        if api is not None:
            api.close()


def _api_client(api_server: str | None) -> ApiClient:
    try:
        return make_api_client(api_server)
    except ConfigException as exc:
        raise typer.BadParameter(f"no Kubernetes configuration: {exc}") from None


def _flag_target(
    flag_file: Path | None,
    configmap: str | None,
    featureflag: str | None,
    namespace: str,
    api: ApiClient | None,
) -> FlagTarget:
    """The flag writer that was asked for (exactly one of the three, checked by the caller)."""
    if flag_file is not None:
        return FileFlag(flag_file)
    assert api is not None
    ref = ConfigMapRef(namespace, configmap) if configmap else None
    return ClusterFlag(ref or FeatureFlagRef(namespace, featureflag or ""), api)


async def _run(guard: Guard) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await guard.run(stop)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):
                loop.remove_signal_handler(sig)
        await guard.source.aclose()
