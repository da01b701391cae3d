"""The replica set: TRITON_URL forms, spreading, retry on another replica, recovery."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from api.inference.errors import InferenceUnavailable, PipelineFailure
from api.inference.replicas import BACKOFF_MAX_S, Replica, ReplicaSet, parse_url


class FakeServer:
    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.down = False
        self.failing = False
        self.calls = 0
        self.closed = False

    async def infer_frames(self, model: str, frames: Sequence[bytes]) -> list[dict]:
        self.calls += 1
        await asyncio.sleep(0)
        if self.down:
            raise InferenceUnavailable(f"{self.endpoint} refused")
        if self.failing:
            raise PipelineFailure("bad frame")
        return [{"served_by": self.endpoint} for _ in frames]

    async def is_ready(self) -> bool:
        return not self.down

    async def models_ready(self, models: Sequence[str]) -> dict[str, bool]:
        return dict.fromkeys(models, not self.down)

    async def close(self) -> None:
        self.closed = True


def replica_set(*endpoints: str) -> tuple[ReplicaSet, dict[str, FakeServer]]:
    servers: dict[str, FakeServer] = {}

    def factory(endpoint: str) -> FakeServer:
        servers[endpoint] = FakeServer(endpoint)
        return servers[endpoint]

    return ReplicaSet(endpoints, factory), servers


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("triton:8001", (["triton:8001"], None)),
        ("a:8001, b:8001", (["a:8001", "b:8001"], None)),
        ("dns:///triton-headless:8001", ([], "triton-headless:8001")),
        ("dns://10.0.0.10/triton-headless:8001", ([], "triton-headless:8001")),
        ("[::1]:8001", (["[::1]:8001"], None)),
    ],
)
def test_url_forms(url: str, expected: tuple) -> None:
    assert parse_url(url) == expected


@pytest.mark.parametrize("url", ["", "triton", "a:8001,b", "dns:///nohost", "host:port"])
def test_bad_urls_are_rejected_with_the_address(url: str) -> None:
    with pytest.raises(ValueError, match=r"TRITON_URL|host:port"):
        parse_url(url)


async def test_requests_are_spread_over_replicas() -> None:
    replicas, servers = replica_set("a:1", "b:1")
    await asyncio.gather(*(replicas.infer_frames("m", [b"x"]) for _ in range(10)))
    assert servers["a:1"].calls > 0 and servers["b:1"].calls > 0
    assert servers["a:1"].calls + servers["b:1"].calls == 10


async def test_a_dead_replica_is_retried_on_the_other_and_then_skipped() -> None:
    replicas, servers = replica_set("a:1", "b:1")
    servers["a:1"].down = True
    results = [await replicas.infer_frames("m", [b"x"]) for _ in range(6)]
    assert all(r == [{"served_by": "b:1"}] for r in results)  # no request lost
    assert servers["a:1"].calls < 6  # in backoff after its first failure


async def test_all_down_raises_unavailable_and_a_returning_replica_serves_again() -> None:
    replicas, servers = replica_set("a:1", "b:1")
    servers["a:1"].down = servers["b:1"].down = True
    with pytest.raises(InferenceUnavailable):
        await replicas.infer_frames("m", [b"x"])
    assert await replicas.is_ready() is False
    servers["b:1"].down = False
    # With every replica in backoff, requests still probe the one whose backoff ends first.
    results = [await replicas.infer_frames("m", [b"x"]) for _ in range(3)]
    assert [{"served_by": "b:1"}] in results
    assert await replicas.is_ready() is True


async def test_pipeline_failures_are_not_retried_elsewhere() -> None:
    replicas, servers = replica_set("a:1", "b:1")
    servers["a:1"].failing = servers["b:1"].failing = True
    with pytest.raises(PipelineFailure):
        await replicas.infer_frames("m", [b"x"])
    assert servers["a:1"].calls + servers["b:1"].calls == 1  # the frame's fault, not the server's


async def test_dns_name_is_resolved_into_replicas() -> None:
    servers: list[str] = []

    def factory(endpoint: str) -> FakeServer:
        servers.append(endpoint)
        return FakeServer(endpoint)

    replicas = ReplicaSet([], factory, dns_target="localhost:8001", resolve_interval_s=60)
    result = await replicas.infer_frames("m", [b"x"])
    assert result[0]["served_by"] in replicas.endpoints
    assert {e.rsplit(":", 1)[1] for e in replicas.endpoints} == {"8001"}
    await replicas.close()


async def test_models_ready_when_some_replica_serves_them() -> None:
    replicas, servers = replica_set("a:1", "b:1")
    servers["a:1"].down = True
    assert await replicas.models_ready(["m"]) == {"m": True}
    await replicas.close()
    assert all(s.closed for s in servers.values())


async def test_a_replica_added_behind_the_dns_name_gets_traffic() -> None:
    """Scaling Triton up: the name is re-resolved every resolve interval (15 s by default, 0
    here), so an address that appears is served by existing gateways without a reconnect."""
    answer = ["10.0.0.1"]

    async def resolver(host: str, port: int) -> list[str]:
        assert (host, port) == ("triton-headless", 8001)
        return list(answer)

    servers: dict[str, FakeServer] = {}

    def factory(endpoint: str) -> FakeServer:
        servers[endpoint] = FakeServer(endpoint)
        return servers[endpoint]

    replicas = ReplicaSet(
        [], factory, dns_target="triton-headless:8001", resolve_interval_s=0, resolver=resolver
    )
    assert (await replicas.infer_frames("m", [b"x"]))[0]["served_by"] == "10.0.0.1:8001"
    answer.append("10.0.0.2")
    for _ in range(100):  # each request may start a background re-resolve; poll, bounded
        await replicas.infer_frames("m", [b"x"])
        if servers.get("10.0.0.2:8001") and servers["10.0.0.2:8001"].calls:
            break
    assert servers["10.0.0.2:8001"].calls > 0
    answer.remove("10.0.0.1")  # scaled down: the replica that left is closed
    for _ in range(100):
        await replicas.infer_frames("m", [b"x"])
        if servers["10.0.0.1:8001"].closed:
            break
    assert servers["10.0.0.1:8001"].closed and replicas.endpoints == ["10.0.0.2:8001"]
    await replicas.close()


def test_backoff_stays_capped_however_long_a_replica_keeps_failing() -> None:
    """A Triton down for long fails thousands of requests in a row; the backoff stays at its cap
    (2 ** failures overflowed a float after 1,024: every frame then got internal_error instead of
    inference_unavailable, seen in a CI run beside a busy process)."""
    replica = Replica("127.0.0.1:1", server=None)  # type: ignore[arg-type]  # never called
    for _ in range(5000):
        replica.failed(now=0.0)
    assert replica.failures == 5000
    assert replica.down_until == BACKOFF_MAX_S
