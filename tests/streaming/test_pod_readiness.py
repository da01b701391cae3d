"""The readiness probe with Triton down or hung (issue 12), on the real API and the real
tritonserver: `/ready?scope=pod` (the chart's readinessProbe) stays 200, so a Triton restart no
longer takes every gateway out of its Service, while `/ready` and `framegate_triton_ready` show
Triton not ready."""

from __future__ import annotations

import httpx
import pytest

from api.core.polling import poll_until
from tests.streaming.hung import frozen
from tests.support.api_server import ApiServer
from tests.support.ports import free_port

pytestmark = pytest.mark.triton

# A hung Triton costs /ready its 2 s readiness call; the probe must not wait on it at all.
TIMEOUT_S = 10.0


def ready(server: ApiServer, **params: str) -> httpx.Response:
    return httpx.get(f"{server.http}/ready", params=params, timeout=TIMEOUT_S)


def last_seen(server: ApiServer) -> dict:
    return ready(server, scope="pod").json()["triton"]


def triton_ready_metric(server: ApiServer) -> float:
    return server.metrics()["framegate_triton_ready"]


def test_pod_probe_ready_while_triton_is_hung(api_factory, triton) -> None:
    server = api_factory()
    poll_until(lambda: ready(server).status_code == 200, 60, what="Triton ready through /ready")
    with frozen(triton):
        pod = ready(server, scope="pod")
        service = ready(server)
        metric = triton_ready_metric(server)  # /ready just checked Triton
    assert pod.status_code == 200, pod.text
    assert pod.json()["ready"] is True and pod.json()["checks"] == {"duckdb": True, "flags": True}
    assert service.status_code == 503
    assert service.json()["checks"]["triton"] is False
    assert service.json()["checks"]["flags"] is True and service.json()["checks"]["duckdb"]
    assert metric == 0
    # Triton back: /ready follows it again
    poll_until(lambda: ready(server).status_code == 200, 60, what="/ready once Triton answers")
    assert triton_ready_metric(server) == 1


def test_pod_probe_ready_while_triton_is_down(api_factory) -> None:
    server = api_factory(triton_url=f"127.0.0.1:{free_port()}")  # nothing listens there

    pod = ready(server, scope="pod")
    service = ready(server)

    assert pod.status_code == 200, pod.text
    assert pod.json()["draining"] is False
    # what the background watch saw, without the probe asking Triton itself
    poll_until(lambda: last_seen(server)["checked_at"] is not None, 30, what="the Triton watch")
    assert last_seen(server)["ready"] is False
    assert service.status_code == 503
    assert service.json()["ready"] is False and service.json()["checks"]["triton"] is False
    assert triton_ready_metric(server) == 0
