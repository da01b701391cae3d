"""Several Tritons behind one gateway.

`TRITON_URL` names one server (`host:port`), a comma-separated list of them, or a DNS name
(`dns:///triton-headless:8001`) whose addresses are re-resolved every `resolve_interval_s`, so
replicas added by scaling get traffic without a restart (gRPC itself re-resolves only when a
connection fails). Each request goes to the healthy replica with the fewest requests in flight;
when the one it went to is unavailable, the request is retried once on another, and the failed
replica sits out a short, growing backoff (capped at 1 s, so a replica that comes back gets
traffic again within about a second).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from api.inference.errors import InferenceUnavailable
from api.inference.triton_client import TritonClient

log = logging.getLogger("framegate.inference")

DNS_SCHEME = "dns:"
BACKOFF_INITIAL_S = 0.1
BACKOFF_MAX_S = 1.0
_DOUBLINGS_TO_MAX = math.ceil(math.log2(BACKOFF_MAX_S / BACKOFF_INITIAL_S))


class Server(Protocol):
    """One Triton, as the replica set uses it (TritonClient; faked in unit tests)."""

    async def infer_frames(self, model: str, frames: Sequence[bytes]) -> list[dict]: ...

    async def is_ready(self) -> bool: ...

    async def models_ready(self, models: Sequence[str]) -> dict[str, bool]: ...

    async def close(self) -> None: ...


ServerFactory = Callable[[str], Server]


@dataclass
class Replica:
    endpoint: str
    server: Server
    inflight: int = 0
    failures: int = 0  # in a row
    down_until: float = 0.0  # time.monotonic(); skipped while healthy replicas remain
    order: int = field(default_factory=itertools.count().__next__)

    def healthy(self, now: float) -> bool:
        return now >= self.down_until

    def failed(self, now: float) -> None:
        self.failures += 1
        # The doubling stops at the cap: 2.0 ** n overflows a float after 1,024 failures in a row.
        doublings = min(self.failures - 1, _DOUBLINGS_TO_MAX)
        backoff = min(BACKOFF_INITIAL_S * 2**doublings, BACKOFF_MAX_S)
        self.down_until = now + backoff

    def succeeded(self) -> None:
        self.failures, self.down_until = 0, 0.0


def parse_url(url: str) -> tuple[list[str], str | None]:
    """(static endpoints, DNS target 'host:port' or None)."""
    url = url.strip()
    if url.startswith(DNS_SCHEME):
        # dns:///host:port or dns://authority/host:port (the authority, a DNS server, is ignored)
        target = url[len(DNS_SCHEME) :].lstrip("/")
        if "/" in target:
            target = target.split("/", 1)[1]
        _split_host_port(target)
        return [], target
    endpoints = [part.strip() for part in url.split(",") if part.strip()]
    if not endpoints:
        raise ValueError(f"TRITON_URL {url!r} names no server")
    for endpoint in endpoints:
        _split_host_port(endpoint)
    return endpoints, None


def _split_host_port(endpoint: str) -> tuple[str, int]:
    host, sep, port = endpoint.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"Triton address {endpoint!r} is not host:port")
    if not 1 <= int(port) <= 65535:
        raise ValueError(f"Triton address {endpoint!r}: port out of range 1-65535")
    return host.strip("[]"), int(port)


Resolver = Callable[[str, int], Awaitable[list[str]]]  # (host, port) -> addresses


async def _getaddrinfo(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class ReplicaSet:
    def __init__(
        self,
        endpoints: Sequence[str],
        factory: ServerFactory,
        *,
        dns_target: str | None = None,
        resolve_interval_s: float = 15.0,
        resolver: Resolver | None = None,
    ) -> None:
        self._factory = factory
        self._dns_target = dns_target
        self._resolve_interval_s = resolve_interval_s
        self._resolver = resolver or _getaddrinfo
        self._replicas: dict[str, Replica] = {}
        self._resolved_at = float("-inf")
        self._resolving: asyncio.Task[None] | None = None
        self._turn = itertools.count()
        self._set_endpoints(endpoints)

    @classmethod
    def from_url(cls, url: str, timeout_s: float, resolve_interval_s: float = 15.0) -> ReplicaSet:
        endpoints, dns_target = parse_url(url)
        return cls(
            endpoints,
            lambda endpoint: TritonClient(endpoint, timeout_s),
            dns_target=dns_target,
            resolve_interval_s=resolve_interval_s,
        )

    @property
    def endpoints(self) -> list[str]:
        return sorted(self._replicas)

    # -- inference ------------------------------------------------------------------------------

    async def infer_frames(self, model: str, frames: Sequence[bytes]) -> list[dict]:
        await self._refresh()
        tried: set[str] = set()
        last: InferenceUnavailable | None = None
        for _ in range(2):  # the chosen replica, then once more on another
            replica = self._pick(tried)
            if replica is None:
                break
            tried.add(replica.endpoint)
            replica.inflight += 1
            try:
                results = await replica.server.infer_frames(model, frames)
            except InferenceUnavailable as exc:
                replica.failed(time.monotonic())
                last = exc
                continue
            finally:
                replica.inflight -= 1
            replica.succeeded()
            return results
        if last is None:
            raise InferenceUnavailable("no Triton replica is known (DNS returned no address)")
        raise last

    def _pick(self, tried: set[str]) -> Replica | None:
        """The healthy replica with the fewest requests in flight (ties in turn); when none is
        healthy, the one whose backoff ends first: with every replica down, frames still probe
        them, so a replica that is back gets traffic at once."""
        candidates = [r for r in self._replicas.values() if r.endpoint not in tried]
        if not candidates:
            return None
        now = time.monotonic()
        healthy = [r for r in candidates if r.healthy(now)]
        if not healthy:
            return min(candidates, key=lambda r: r.down_until)
        turn = next(self._turn)
        return min(healthy, key=lambda r: (r.inflight, (r.order - turn) % len(healthy)))

    # -- readiness ------------------------------------------------------------------------------

    async def is_ready(self) -> bool:
        await self._refresh()
        answers = await asyncio.gather(*(r.server.is_ready() for r in self._replicas.values()))
        return any(answers)

    async def models_ready(self, models: Sequence[str]) -> dict[str, bool]:
        """A model is ready when some replica serves it."""
        per_replica = await asyncio.gather(
            *(r.server.models_ready(models) for r in self._replicas.values())
        )
        return {m: any(status.get(m, False) for status in per_replica) for m in models}

    async def close(self) -> None:
        if self._resolving is not None:
            self._resolving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._resolving
        replicas, self._replicas = list(self._replicas.values()), {}
        for replica in replicas:
            await replica.server.close()

    # -- membership -----------------------------------------------------------------------------

    def _set_endpoints(self, endpoints: Sequence[str]) -> list[Replica]:
        """Add new endpoints; returns the replicas that left (to be closed by the caller)."""
        wanted = set(endpoints)
        for endpoint in endpoints:
            if endpoint not in self._replicas:
                self._replicas[endpoint] = Replica(endpoint, self._factory(endpoint))
        gone = [r for e, r in self._replicas.items() if e not in wanted]
        for replica in gone:
            del self._replicas[replica.endpoint]
        return gone

    async def _refresh(self) -> None:
        """Re-resolve the DNS name when due: awaited while no replica is known, in the
        background afterwards (a frame never waits for DNS once traffic flows)."""
        if self._dns_target is None:
            return
        due = time.monotonic() - self._resolved_at >= self._resolve_interval_s
        if self._resolving is None and (due or not self._replicas):
            self._resolving = asyncio.create_task(self._resolve())
        if not self._replicas and self._resolving is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._resolving)

    async def _resolve(self) -> None:
        assert self._dns_target is not None
        host, port = _split_host_port(self._dns_target)
        try:
            addresses = sorted(set(await self._resolver(host, port)))
            endpoints = [f"[{a}]:{port}" if ":" in a else f"{a}:{port}" for a in addresses]
            gone = self._set_endpoints(endpoints)
            if gone:
                log.info("triton replicas left", extra={"endpoints": [r.endpoint for r in gone]})
            for replica in gone:
                await replica.server.close()  # its in-flight requests fail over to the others
        except OSError as exc:
            log.warning("resolving %s failed: %s", self._dns_target, exc)
        finally:
            self._resolved_at = time.monotonic()
            self._resolving = None
