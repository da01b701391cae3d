"""The flag tests' fake Kubernetes API plus what the guard needs: EndpointSlices (list by the
`kubernetes.io/service-name` label) and core/v1 Events (create, read back by the test)."""

from __future__ import annotations

import copy
import json
import threading
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.flags.fake_kube import FakeKube, _Handler, _Server

SERVICE_LABEL = "kubernetes.io/service-name"


class GuardKube(FakeKube):
    def __init__(self) -> None:
        super().__init__()
        self.slices: dict[tuple[str, str], dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def start(self) -> None:
        server = _Server(("127.0.0.1", self.port), _GuardHandler)
        server.state = self.state
        server.kube = self  # type: ignore[attr-defined]
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-kube-api"
        )
        self._thread.start()

    def put_endpoint_slice(
        self,
        namespace: str,
        service: str,
        name: str,
        port: int,
        endpoints: list[tuple[str, str, bool]],  # (address, pod name, serving)
        port_name: str = "http",
    ) -> None:
        body = {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {SERVICE_LABEL: service},
                "resourceVersion": str(self.state.bump()),
            },
            "addressType": "IPv4",
            "ports": [{"name": port_name, "port": port, "protocol": "TCP"}],
            "endpoints": [
                {
                    "addresses": [address],
                    "conditions": {"ready": serving, "serving": serving, "terminating": False},
                    "targetRef": {"kind": "Pod", "name": pod, "namespace": namespace},
                }
                for address, pod, serving in endpoints
            ],
        }
        with self.lock:
            self.slices[(namespace, name)] = body

    def recorded_events(self) -> list[dict[str, Any]]:
        with self.lock:
            return copy.deepcopy(self.events)


class _GuardHandler(_Handler):
    def do_POST(self) -> None:
        self._dispatch("POST")

    @property
    def kube(self) -> GuardKube:
        return self.server.kube  # type: ignore[attr-defined]

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        parts = url.path.strip("/").split("/")
        query = {name: values[-1] for name, values in parse_qs(url.query).items()}
        match method, parts:
            case "GET", ["apis", "discovery.k8s.io", "v1", "namespaces", ns, "endpointslices"]:
                self.close_connection = True
                self._list_slices(ns, query.get("labelSelector", ""))
            case "POST", ["api", "v1", "namespaces", ns, "events"]:
                self.close_connection = True
                self._create_event(ns)
            case _:
                super()._dispatch(method)

    def _list_slices(self, ns: str, selector: str) -> None:
        wanted = dict(part.split("=", 1) for part in selector.split(",") if "=" in part)
        with self.kube.lock:
            items = [
                copy.deepcopy(s)
                for (s_ns, _), s in self.kube.slices.items()
                if s_ns == ns and wanted.items() <= s["metadata"]["labels"].items()
            ]
        body = {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSliceList",
            "metadata": {"resourceVersion": str(self.state.resource_version)},
            "items": items,
        }
        self._json(HTTPStatus.OK, body)

    def _create_event(self, ns: str) -> None:
        event = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        with self.kube.lock:
            meta = event.setdefault("metadata", {})
            meta["name"] = f"{meta.get('generateName', 'event.')}{len(self.kube.events)}"
            meta["namespace"] = ns
            meta["resourceVersion"] = str(self.state.bump())
            self.kube.events.append(copy.deepcopy(event))
        self._json(HTTPStatus.CREATED, event)
