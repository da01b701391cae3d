"""The guard's Kubernetes paths through the real `kubernetes` client against the in-test API
server: EndpointSlice discovery, ConfigMap and FeatureFlag trips, the Event on the flag object."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from kubernetes.client import ApiClient

from api.flags.cluster import ConfigMapRef, FeatureFlagRef
from api.flags.flagfile import default_document, describe, dump_document
from api.flags.keys import STREAMING_FLAG
from api.flags.kube_client import make_api_client
from api.guard.loop import Guard, GuardOptions
from api.guard.signals import Thresholds
from api.guard.sources import ScrapeSource, endpoint_slice_targets
from api.guard.trip import REASON_TRIPPED, ClusterFlag
from tests.guard.conftest import FakeGateway, ServedGateway
from tests.guard.fake_kube_guard import GuardKube

NS = "vision"
SERVICE = "fg-framegate-gateway"
CONFIGMAP = "fg-framegate-flags"
TH = Thresholds(window_s=10, for_s=0, stall_s=4, min_frames=10)


@pytest.fixture
def api(guard_kube: GuardKube) -> Iterator[ApiClient]:
    client = make_api_client(guard_kube.url)
    try:
        yield client
    finally:
        client.close()


def configmap_streaming(kube: GuardKube) -> bool | None:
    text = kube.configmap_data(NS, CONFIGMAP)["flags.json"]
    return describe(json.loads(text)).value


async def test_endpoint_slices_give_every_serving_pod_on_the_named_port(
    guard_kube: GuardKube, api: ApiClient
) -> None:
    guard_kube.put_endpoint_slice(
        NS, SERVICE, "gw-a", 8000, [("10.0.0.1", "gw-1", True), ("10.0.0.2", "gw-2", False)]
    )
    guard_kube.put_endpoint_slice(NS, SERVICE, "gw-b", 8000, [("10.0.0.3", "gw-3", True)])
    guard_kube.put_endpoint_slice(NS, "other", "other-a", 8000, [("10.0.0.9", "x", True)])
    guard_kube.put_endpoint_slice(
        NS, SERVICE, "gw-c", 9000, [("10.0.0.4", "gw-4", True)], port_name="grpc"
    )
    targets = await endpoint_slice_targets(api, SERVICE, NS, port="http")()
    assert targets == {
        "gw-1": "http://10.0.0.1:8000/metrics",
        "gw-3": "http://10.0.0.3:8000/metrics",
    }
    by_number = await endpoint_slice_targets(api, SERVICE, NS, port="9000")()
    assert by_number == {"gw-4": "http://10.0.0.4:9000/metrics"}


def test_configmap_trip_patches_flags_json_and_records_an_event(
    guard_kube: GuardKube, api: ApiClient
) -> None:
    guard_kube.put_configmap(NS, CONFIGMAP, {"flags.json": dump_document(default_document(True))})
    target = ClusterFlag(ConfigMapRef(NS, CONFIGMAP), api)
    assert target.set(False).value is False
    assert configmap_streaming(guard_kube) is False
    target.record_event(REASON_TRIPPED, "stall 20 breached 20", "Warning")
    [event] = guard_kube.recorded_events()
    assert event["involvedObject"] == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": CONFIGMAP,
        "namespace": NS,
        "uid": f"uid-{NS}-{CONFIGMAP}",
        "resourceVersion": guard_kube.state.configmaps[(NS, CONFIGMAP)]["metadata"][
            "resourceVersion"
        ],
    }
    assert (event["reason"], event["type"]) == (REASON_TRIPPED, "Warning")
    assert event["source"] == {"component": "framegate-guard"}
    assert event["metadata"]["namespace"] == NS


def test_featureflag_trip_patches_the_resource_and_records_an_event(
    guard_kube: GuardKube, api: ApiClient
) -> None:
    flags = default_document(True)["flags"]
    flags[STREAMING_FLAG]["targeting"] = {"fractional": [["on", 50], ["off", 50]]}
    guard_kube.put_featureflag(NS, CONFIGMAP, flags)
    target = ClusterFlag(FeatureFlagRef(NS, CONFIGMAP), api)
    target.set(False)
    spec = guard_kube.featureflag(NS, CONFIGMAP)["spec"]["flagSpec"]["flags"][STREAMING_FLAG]
    assert spec["defaultVariant"] == "off"
    assert "targeting" not in spec  # a rollout rule would override the off default
    target.record_event(REASON_TRIPPED, "error_ratio 0.2 breached 0.05", "Warning")
    [event] = guard_kube.recorded_events()
    involved = event["involvedObject"]
    assert (involved["apiVersion"], involved["kind"], involved["name"]) == (
        "core.openfeature.dev/v1beta1",
        "FeatureFlag",
        CONFIGMAP,
    )


async def test_the_guard_in_a_cluster_scrapes_the_pods_and_trips_the_configmap(
    guard_kube: GuardKube,
    api: ApiClient,
    serve_gateway: Callable[[FakeGateway], ServedGateway],
) -> None:
    guard_kube.put_configmap(NS, CONFIGMAP, {"flags.json": dump_document(default_document(True))})
    pods = [serve_gateway(FakeGateway()) for _ in range(2)]
    for i, pod in enumerate(pods):
        guard_kube.put_endpoint_slice(
            NS, SERVICE, f"gw-{i}", pod.port, [("127.0.0.1", f"gw-{i}", True)]
        )
    source = ScrapeSource(endpoint_slice_targets(api, SERVICE, NS), TH.window_s, TH.stall_s)
    clock = [0.0]
    target = ClusterFlag(ConfigMapRef(NS, CONFIGMAP), api)
    guard = Guard(source, target, GuardOptions(TH), clock=lambda: clock[0])

    async def round_at(t: float, processed: int) -> None:
        clock[0] = t
        for pod in pods:
            pod.gateway.stream(20, processed)
        await guard.tick()

    try:
        for t in (0.0, 2.0):  # healthy: both pods answer frames
            await round_at(t, processed=20)
        assert configmap_streaming(guard_kube) is True
        for t in (4.0, 6.0, 8.0):  # Triton hung: frames arrive, no result goes out
            await round_at(t, processed=0)
    finally:
        await source.aclose()
    assert configmap_streaming(guard_kube) is False
    [event] = guard_kube.recorded_events()
    assert event["involvedObject"]["kind"] == "ConfigMap"
    assert event["message"].startswith("framegate guard turned video-streaming off: stall")
    assert (
        guard.metrics.registry.get_sample_value("framegate_guard_trips_total", {"signal": "stall"})
        == 1
    )
