"""The `kubernetes` provider through the real `kubernetes` client against a fake API server."""

from __future__ import annotations

import threading

from kubernetes.client import ApiClient

from api.core.polling import apoll_until
from api.flags import FlagService, ProviderSpec
from api.flags.flagfile import default_document, dump_document
from api.flags.keys import STREAMING_FLAG
from api.flags.kube_provider import ConfigMapFlagProvider
from tests.flags.conftest import (
    CONFIGMAP,
    FLIP_DEADLINE_S,
    NAMESPACE,
    WAIT_S,
    StartService,
    ctx,
    make_settings,
    wait_for_value,
)
from tests.flags.fake_kube import FakeKube
from tests.support.polling import seconds_until

LIST = "GET plain /api/v1/namespaces/default/configmaps"
WATCH = "GET watch /api/v1/namespaces/default/configmaps"


def flags_json(on: bool, **fields: object) -> dict[str, str]:
    document = default_document(on)
    document["flags"][STREAMING_FLAG].update(fields)
    return {"flags.json": dump_document(document)}


def put(kube: FakeKube, on: bool, **fields: object) -> None:
    kube.put_configmap(NAMESPACE, CONFIGMAP, flags_json(on, **fields))


def state_is(service: FlagService, state: str) -> bool:
    return service.status()["state"] == state


async def test_kube_reads_configmap(kube_service: FlagService) -> None:
    assert await kube_service.streaming_enabled(ctx()) is False  # the default is True
    status = kube_service.status()
    assert (status["state"], status["source"]) == (
        "ready",
        f"configmap {NAMESPACE}/{CONFIGMAP} key flags.json",
    )


async def test_kube_patch_flips_within_the_kill_switch_deadline(
    fake_kube: FakeKube, kube_service: FlagService
) -> None:
    await apoll_until(lambda: fake_kube.count(WATCH) == 1, WAIT_S, what="watch open")
    put(fake_kube, on=True)
    on_s = await wait_for_value(kube_service, True)
    put(fake_kube, on=False)
    off_s = await wait_for_value(kube_service, False)
    print(f"configmap flip latency: on {on_s:.3f} s, off {off_s:.3f} s")
    assert on_s < FLIP_DEADLINE_S
    assert off_s < FLIP_DEADLINE_S


async def test_kube_change_callback_on_loop_thread(
    fake_kube: FakeKube, kube_service: FlagService
) -> None:
    await apoll_until(lambda: fake_kube.count(WATCH) == 1, WAIT_S, what="watch open")
    threads: list[int] = []
    kube_service.subscribe(lambda: threads.append(threading.get_ident()))
    put(fake_kube, on=True)
    elapsed = await seconds_until(lambda: bool(threads), WAIT_S, what="change callback")
    print(f"configmap patch to change callback: {elapsed:.3f} s")
    assert elapsed < FLIP_DEADLINE_S
    assert set(threads) == {threading.get_ident()}


async def test_kube_closed_watch_is_reopened_without_relist(
    fake_kube: FakeKube, kube_service: FlagService
) -> None:
    await apoll_until(lambda: fake_kube.count(WATCH) == 1, WAIT_S, what="watch open")
    fake_kube.close_watches()
    await apoll_until(lambda: fake_kube.count(WATCH) == 2, WAIT_S, what="watch reopened")
    put(fake_kube, on=True)
    assert await wait_for_value(kube_service, True) < FLIP_DEADLINE_S
    assert fake_kube.count(LIST) == 1


async def test_kube_gone_event_triggers_relist(
    fake_kube: FakeKube, kube_service: FlagService
) -> None:
    await apoll_until(lambda: fake_kube.count(WATCH) == 1, WAIT_S, what="watch open")
    fake_kube.expire("event", data=flags_json(on=True))  # the change's event is compacted away
    await wait_for_value(kube_service, True)
    assert fake_kube.count(LIST) == 2
    put(fake_kube, on=False)
    assert await wait_for_value(kube_service, False) < FLIP_DEADLINE_S
    assert kube_service.status()["state"] == "ready"


async def test_kube_http_gone_triggers_relist(
    fake_kube: FakeKube, kube_service: FlagService
) -> None:
    await apoll_until(lambda: fake_kube.count(WATCH) == 1, WAIT_S, what="watch open")
    fake_kube.expire("http", data=flags_json(on=True))
    await wait_for_value(kube_service, True)
    assert fake_kube.count(LIST) == 2
    put(fake_kube, on=False)
    assert await wait_for_value(kube_service, False) < FLIP_DEADLINE_S


async def test_kube_unreachable_keeps_last_value_then_recovers(
    fake_kube: FakeKube, kube_service: FlagService
) -> None:
    await apoll_until(lambda: fake_kube.count(WATCH) == 1, WAIT_S, what="watch open")
    fake_kube.stop()
    await apoll_until(lambda: state_is(kube_service, "stale"), WAIT_S, what="stale")
    assert await kube_service.streaming_enabled(ctx()) is False  # last value, not the default
    assert "Kubernetes API unavailable" in kube_service.status()["error"]
    put(fake_kube, on=True)  # changed while we could not see it
    fake_kube.start()
    await wait_for_value(kube_service, True)
    await apoll_until(lambda: state_is(kube_service, "ready"), WAIT_S, what="ready again")
    assert kube_service.status()["error"] is None


async def test_kube_invalid_json_keeps_last_value(
    fake_kube: FakeKube, kube_service: FlagService
) -> None:
    fake_kube.put_configmap(NAMESPACE, CONFIGMAP, {"flags.json": "{broken"})
    await apoll_until(lambda: state_is(kube_service, "error"), WAIT_S, what="error")
    assert await kube_service.streaming_enabled(ctx()) is False
    assert "invalid flagd JSON" in kube_service.status()["error"]
    put(fake_kube, on=True)
    await wait_for_value(kube_service, True)
    await apoll_until(lambda: state_is(kube_service, "ready"), WAIT_S, what="ready again")


async def test_kube_deleted_configmap_keeps_last_value(
    fake_kube: FakeKube, kube_service: FlagService
) -> None:
    fake_kube.delete_configmap(NAMESPACE, CONFIGMAP)
    await apoll_until(lambda: state_is(kube_service, "error"), WAIT_S, what="error")
    assert await kube_service.streaming_enabled(ctx()) is False
    assert "deleted" in kube_service.status()["error"]


async def test_kube_fractional_targeting(fake_kube: FakeKube, kube_service: FlagService) -> None:
    put(fake_kube, on=True, targeting={"fractional": [["on", 50], ["off", 50]]})
    await apoll_until(lambda: kube_service.status()["last_change"] is not None, WAIT_S)

    async def split() -> bool:
        values = [await kube_service.streaming_enabled(ctx(f"c-{n}")) for n in range(200)]
        return 0.35 < sum(values) / len(values) < 0.65

    await apoll_until(split, WAIT_S, what="50/50 split")


async def test_kube_missing_configmap_at_start_then_created(
    fake_kube: FakeKube, kube_api: ApiClient, start_service: StartService
) -> None:
    provider = ConfigMapFlagProvider("later", NAMESPACE, api_client=kube_api)
    spec = ProviderSpec("kubernetes", provider.source, provider)
    service = await start_service(make_settings(streaming_enabled=True), spec)
    assert await service.streaming_enabled(ctx()) is True
    assert "not found" in service.status()["error"]
    fake_kube.put_configmap(NAMESPACE, "later", flags_json(on=False))
    assert await wait_for_value(service, False) < FLIP_DEADLINE_S
    await apoll_until(lambda: state_is(service, "ready"), WAIT_S, what="ready")


async def test_kube_api_down_at_start_then_up(
    fake_kube: FakeKube, kube_api: ApiClient, start_service: StartService
) -> None:
    fake_kube.stop()
    provider = ConfigMapFlagProvider(
        CONFIGMAP, NAMESPACE, api_client=kube_api, backoff_initial_s=0.05, backoff_max_s=0.2
    )
    spec = ProviderSpec("kubernetes", provider.source, provider)
    service = await start_service(make_settings(streaming_enabled=True), spec)
    assert await service.streaming_enabled(ctx()) is True
    assert service.status()["state"] == "error"
    fake_kube.start()
    await wait_for_value(service, False)
    await apoll_until(lambda: state_is(service, "ready"), WAIT_S, what="ready")
