"""Where the guard's numbers come from: gateways' `/metrics` scraped directly (a fixed list of
URLs, or every pod behind a Service found through the EndpointSlice API), or PromQL instant
queries against Prometheus, which applies its own counter-reset handling."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from kubernetes.client import ApiClient, DiscoveryV1Api

from api.guard.samples import (
    EXPIRED,
    FRAME_FAILURES,
    FRAMES,
    LATENCY_BUCKET,
    SERVER_ERROR_CODES,
    SESSION_ERRORS,
    Sample,
    parse_sample,
)
from api.guard.window import Totals, Window

log = logging.getLogger("framegate.guard")

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
METRICS_PATH = "/metrics"
KUBE_TIMEOUT_S = (3.0, 10.0)


class SourceError(Exception):
    """No numbers this round (every gateway failed, Prometheus unreachable); the message says
    why. Never a trip signal: see `Guard`."""


@dataclass(frozen=True, slots=True)
class Reading:
    window: Totals
    stall: Totals
    sources: int  # gateways that answered (Prometheus: series summed, unknown: 0)


class Source(Protocol):
    async def read(self, now: float) -> Reading: ...
    def reset(self) -> None: ...
    async def aclose(self) -> None: ...


Discover = Callable[[], Awaitable[dict[str, str]]]  # name -> /metrics URL


def static_targets(urls: Sequence[str]) -> Discover:
    targets = {url: url for url in urls}

    async def discover() -> dict[str, str]:
        return targets

    return discover


def endpoint_slice_targets(
    api: ApiClient, service: str, namespace: str, port: str = "http"
) -> Discover:
    """Every serving endpoint of `service` (terminating pods still serving their sessions
    included), its port named `port` (or numbered, when `port` is digits)."""

    def listed() -> dict[str, str]:
        slices = DiscoveryV1Api(api).list_namespaced_endpoint_slice(
            namespace,
            label_selector=f"{SERVICE_NAME_LABEL}={service}",
            _request_timeout=KUBE_TIMEOUT_S,
        )
        targets: dict[str, str] = {}
        for item in slices.items:
            number = _port_number(item.ports or [], port)
            if number is None:
                continue
            for endpoint in item.endpoints or []:
                conditions = endpoint.conditions
                if conditions is not None and conditions.serving is False:
                    continue
                for address in endpoint.addresses or []:
                    host = f"[{address}]" if ":" in address else address
                    ref = endpoint.target_ref
                    name = ref.name if ref is not None and ref.name else address
                    targets[name] = f"http://{host}:{number}{METRICS_PATH}"
        return targets

    async def discover() -> dict[str, str]:
        return await asyncio.to_thread(listed)

    return discover


def _port_number(ports: Sequence[Any], wanted: str) -> int | None:
    for p in ports:
        if p.port is not None and (p.name == wanted or str(p.port) == wanted):
            return int(p.port)
    return None


class ScrapeSource:
    """Scrapes every target each round; a target that fails is logged and skipped."""

    def __init__(
        self,
        discover: Discover,
        window_s: float,
        stall_s: float,
        timeout_s: float = 3.0,
        on_scrape: Callable[[bool], None] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._discover = discover
        self.window_s, self.stall_s = window_s, stall_s
        self._window = Window(max(window_s, stall_s))
        self._client = httpx.AsyncClient(timeout=timeout_s, transport=transport)
        self._on_scrape = on_scrape or (lambda ok: None)

    async def read(self, now: float) -> Reading:
        try:
            targets = await self._discover()
        except Exception as exc:  # the API server's errors are many types; all mean "no list"
            raise SourceError(f"cannot list the gateways: {type(exc).__name__}: {exc}") from exc
        if not targets:
            raise SourceError("no gateway to scrape")
        names = list(targets)
        results = await asyncio.gather(*(self._scrape(targets[n]) for n in names))
        samples = {name: s for name, s in zip(names, results, strict=True) if s is not None}
        if not samples:
            raise SourceError(f"every gateway failed to answer ({len(names)} tried)")
        self._window.add(now, samples)
        return Reading(
            self._window.totals(now, self.window_s),
            self._window.totals(now, self.stall_s),
            len(samples),
        )

    async def _scrape(self, url: str) -> Sample | None:
        try:
            response = await self._client.get(url)
            response.raise_for_status()
            sample = parse_sample(response.text)
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("scrape failed", extra={"target": url, "error": f"{exc!r}"})
            self._on_scrape(False)
            return None
        self._on_scrape(True)
        return sample

    def reset(self) -> None:
        self._window.clear()

    async def aclose(self) -> None:
        await self._client.aclose()


class PrometheusSource:
    """Instant queries (`/api/v1/query`) of `increase()` over the window and the stall span;
    `selector` (e.g. `job="fg-framegate-gateway"`) picks the gateways' series. The spans must
    cover at least two of Prometheus' scrape intervals."""

    def __init__(
        self,
        url: str,
        window_s: float,
        stall_s: float,
        selector: str = "",
        timeout_s: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.window_s, self.stall_s = window_s, stall_s
        self._selector = selector.strip().strip("{}").strip()
        self._client = httpx.AsyncClient(
            base_url=url.rstrip("/"), timeout=timeout_s, transport=transport
        )

    async def read(self, now: float) -> Reading:
        window, stall = await asyncio.gather(
            self._totals(self.window_s), self._totals(self.stall_s, latency=False)
        )
        return Reading(window, stall, 0)

    def queries(self, span_s: float) -> dict[str, str]:
        codes = "|".join(sorted(SERVER_ERROR_CODES))
        selectors = {
            "received": (FRAMES, 'outcome="received"'),
            "processed": (FRAMES, 'outcome="processed"'),
            "expired": (EXPIRED, ""),
            "server_errors": (SESSION_ERRORS, f'code=~"{codes}"'),
            "frame_failures": (FRAME_FAILURES, ""),
        }
        queries = {
            name: f"sum(increase({metric}{self._match(extra)}[{span_s:g}s]))"
            for name, (metric, extra) in selectors.items()
        }
        queries["latency"] = f"sum by (le) (increase({LATENCY_BUCKET}{self._match()}[{span_s:g}s]))"
        return queries

    def _match(self, extra: str = "") -> str:
        parts = [p for p in (self._selector, extra) if p]
        return "{" + ",".join(parts) + "}" if parts else ""

    async def _totals(self, span_s: float, latency: bool = True) -> Totals:
        queries = self.queries(span_s)
        if not latency:
            queries = {k: queries[k] for k in ("received", "processed")}
        names = list(queries)
        results = await asyncio.gather(*(self._query(queries[n]) for n in names))
        by_name = dict(zip(names, results, strict=True))
        scalars = {n: sum(v for _, v in by_name[n]) for n in names if n != "latency"}
        buckets = tuple(sorted((float(m["le"]), v) for m, v in by_name.get("latency", [])))
        counts = Sample(
            received=scalars.get("received", 0.0),
            processed=scalars.get("processed", 0.0),
            expired=scalars.get("expired", 0.0),
            server_errors=scalars.get("server_errors", 0.0),
            frame_failures=scalars.get("frame_failures", 0.0),
            latency_buckets=buckets,
        )
        return Totals(span_s, counts)

    async def _query(self, promql: str) -> list[tuple[dict[str, str], float]]:
        try:
            response = await self._client.get("/api/v1/query", params={"query": promql})
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise SourceError(f"Prometheus query failed: {exc!r}") from exc
        if body.get("status") != "success":
            raise SourceError(f"Prometheus answered {body.get('errorType')}: {body.get('error')}")
        data = body.get("data") or {}
        if data.get("resultType") != "vector":
            raise SourceError(f"expected an instant vector, got {data.get('resultType')}")
        return [(item["metric"], float(item["value"][1])) for item in data.get("result", [])]

    def reset(self) -> None:
        pass  # Prometheus keeps the history

    async def aclose(self) -> None:
        await self._client.aclose()
