"""Just enough of the Kubernetes API, over real HTTP, for the real `kubernetes` client: ConfigMaps
(list with fieldSelector, watch as chunked newline-delimited events, get, merge patch) and
OpenFeature `FeatureFlag` custom objects (get, merge patch).

Test controls: `close_watches()` ends open watch streams cleanly; `expire()` compacts history so
watches from older resourceVersions get 410 Gone (an ERROR event or an HTTP 410); `stop()` aborts
every connection and closes the port; `start()` again serves the same state on the same port.
"""

from __future__ import annotations

import contextlib
import copy
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

CONFIGMAPS = "/api/v1/namespaces/{ns}/configmaps"
FEATUREFLAGS = "/apis/core.openfeature.dev/v1beta1/namespaces/{ns}/featureflags"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
WAIT_SLICE_S = 0.02

ExpireMode = Literal["event", "http"]


@dataclass
class KubeState:
    cond: threading.Condition = field(default_factory=threading.Condition)
    resource_version: int = 100
    configmaps: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    featureflags: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    events: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)
    compacted_below: int = 0
    expire_mode: ExpireMode = "event"
    watch_generation: int = 0
    conflicts_to_inject: int = 0
    requests: list[str] = field(default_factory=list)

    def bump(self) -> int:
        self.resource_version += 1
        return self.resource_version


class FakeKube:
    def __init__(self) -> None:
        self.state = KubeState()
        self.port = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        server = _Server(("127.0.0.1", self.port), _Handler)
        server.state = self.state
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-kube-api"
        )
        self._thread.start()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.closing = True
        with self.state.cond:
            self.state.cond.notify_all()
        server.shutdown()
        server.abort_connections()
        server.server_close()  # joins the handler threads
        assert self._thread is not None
        self._thread.join()

    # State changes, as other API clients would make them.

    def put_configmap(self, namespace: str, name: str, data: dict[str, str]) -> None:
        with self.state.cond:
            key = (namespace, name)
            kind = "MODIFIED" if key in self.state.configmaps else "ADDED"
            rv = self.state.bump()
            configmap = {
                "kind": "ConfigMap",
                "apiVersion": "v1",
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "resourceVersion": str(rv),
                    "uid": f"uid-{namespace}-{name}",
                },
                "data": dict(data),
            }
            self.state.configmaps[key] = configmap
            self.state.events.append((rv, kind, copy.deepcopy(configmap)))
            self.state.cond.notify_all()

    def delete_configmap(self, namespace: str, name: str) -> None:
        with self.state.cond:
            configmap = self.state.configmaps.pop((namespace, name))
            rv = self.state.bump()
            configmap["metadata"]["resourceVersion"] = str(rv)
            self.state.events.append((rv, "DELETED", configmap))
            self.state.cond.notify_all()

    def configmap_data(self, namespace: str, name: str) -> dict[str, str]:
        with self.state.cond:
            return dict(self.state.configmaps[(namespace, name)]["data"])

    def put_featureflag(self, namespace: str, name: str, flags: dict[str, Any]) -> None:
        with self.state.cond:
            self.state.featureflags[(namespace, name)] = {
                "apiVersion": "core.openfeature.dev/v1beta1",
                "kind": "FeatureFlag",
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "resourceVersion": str(self.state.bump()),
                },
                "spec": {"flagSpec": {"flags": copy.deepcopy(flags)}},
            }

    def featureflag(self, namespace: str, name: str) -> dict[str, Any]:
        with self.state.cond:
            return copy.deepcopy(self.state.featureflags[(namespace, name)])

    def close_watches(self) -> None:
        with self.state.cond:
            self.state.watch_generation += 1
            self.state.cond.notify_all()

    def expire(self, mode: ExpireMode, data: dict[str, str] | None = None) -> None:
        """Compact history: watches from older versions get 410. `data` is written to the first
        ConfigMap first *without* an event (the event was compacted away): only a relist sees it."""
        with self.state.cond:
            if data is not None:
                configmap = next(iter(self.state.configmaps.values()))
                configmap["data"] = dict(data)
                configmap["metadata"]["resourceVersion"] = str(self.state.bump())
            self.state.compacted_below = self.state.bump()
            self.state.expire_mode = mode
            self.state.cond.notify_all()

    def count(self, prefix: str) -> int:
        with self.state.cond:
            return sum(1 for line in self.state.requests if line.startswith(prefix))


class _Server(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True
    state: KubeState
    closing = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def abort_connections(self) -> None:
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def _dispatch(self, method: str) -> None:
        self.close_connection = True
        url = urlsplit(self.path)
        query = {name: values[-1] for name, values in parse_qs(url.query).items()}
        parts = url.path.strip("/").split("/")
        is_watch = query.get("watch", "").lower() in ("true", "1")
        with self.state.cond:
            self.state.requests.append(f"{method} {'watch' if is_watch else 'plain'} {url.path}")
        match method, parts:
            case "GET", ["api", "v1", "namespaces", ns, "configmaps"] if is_watch:
                self._watch_configmaps(ns, query)
            case "GET", ["api", "v1", "namespaces", ns, "configmaps"]:
                self._list_configmaps(ns, query)
            case "GET", ["api", "v1", "namespaces", ns, "configmaps", name]:
                self._get(self.state.configmaps, ns, name, "configmaps")
            case "PATCH", ["api", "v1", "namespaces", ns, "configmaps", name]:
                self._patch_configmap(ns, name)
            case "GET", ["apis", "core.openfeature.dev", "v1beta1", "namespaces", ns, _, name]:
                self._get(self.state.featureflags, ns, name, "featureflags.core.openfeature.dev")
            case "PATCH", ["apis", "core.openfeature.dev", "v1beta1", "namespaces", ns, _, name]:
                self._patch_featureflag(ns, name)
            case _:
                self._status(HTTPStatus.NOT_FOUND, "NotFound", f"no route {url.path}")

    @property
    def state(self) -> KubeState:
        return self.server.state

    # Reads.

    def _list_configmaps(self, ns: str, query: dict[str, str]) -> None:
        with self.state.cond:
            items = [
                copy.deepcopy(cm)
                for (cm_ns, cm_name), cm in self.state.configmaps.items()
                if cm_ns == ns and _selected(cm_name, query)
            ]
            rv = self.state.resource_version
        body = {
            "kind": "ConfigMapList",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": str(rv)},
            "items": items,
        }
        self._json(HTTPStatus.OK, body)

    def _get(self, store: dict, ns: str, name: str, resource: str) -> None:
        with self.state.cond:
            found = copy.deepcopy(store.get((ns, name)))
        if found is None:
            self._status(HTTPStatus.NOT_FOUND, "NotFound", f'{resource} "{name}" not found')
        else:
            self._json(HTTPStatus.OK, found)

    def _watch_configmaps(self, ns: str, query: dict[str, str]) -> None:
        last = int(query.get("resourceVersion") or self.state.resource_version)
        timeout_s = float(query.get("timeoutSeconds", "300"))
        with self.state.cond:
            generation = self.state.watch_generation
            if last < self.state.compacted_below and self.state.expire_mode == "http":
                self._status(HTTPStatus.GONE, "Expired", f"too old resource version: {last}")
                return
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        deadline = time.monotonic() + timeout_s
        try:
            for batch in self._watch_batches(ns, query, last, generation, deadline):
                for event in batch:
                    self._chunk(json.dumps(event).encode() + b"\n")
            self._chunk(b"")  # clean end of the stream
        except _Aborted:
            return  # server stopping: drop the connection mid-stream
        except OSError:
            return  # client went away

    def _watch_batches(
        self, ns: str, query: dict[str, str], last: int, generation: int, deadline: float
    ) -> Iterator[list[dict[str, Any]]]:
        while True:
            gone = False
            with self.state.cond:
                while True:
                    if self.server.closing:
                        raise _Aborted
                    if self.state.watch_generation != generation or time.monotonic() > deadline:
                        return
                    if last < self.state.compacted_below:
                        if self.state.expire_mode == "http":
                            return  # end cleanly: the next watch request gets HTTP 410
                        gone = True
                        break
                    pending = [
                        (rv, kind, obj)
                        for rv, kind, obj in self.state.events
                        if rv > last
                        and obj["metadata"]["namespace"] == ns
                        and _selected(obj["metadata"]["name"], query)
                    ]
                    if pending:
                        break
                    self.state.cond.wait(WAIT_SLICE_S)
            if gone:
                yield [_gone_event(last)]
                return
            last = pending[-1][0]
            yield [{"type": kind, "object": obj} for _, kind, obj in pending]

    # Writes.

    def _patch_configmap(self, ns: str, name: str) -> None:
        patch = self._patch_body({MERGE_PATCH, STRATEGIC_PATCH})
        if patch is None:
            return
        with self.state.cond:
            configmap = self.state.configmaps.get((ns, name))
            if configmap is None:
                self._status(HTTPStatus.NOT_FOUND, "NotFound", f'configmaps "{name}" not found')
                return
            if not self._version_matches(configmap, patch):
                return
            data = configmap.setdefault("data", {})
            for key, value in (patch.get("data") or {}).items():
                if value is None:
                    data.pop(key, None)
                else:
                    data[key] = value
            rv = self.state.bump()
            configmap["metadata"]["resourceVersion"] = str(rv)
            self.state.events.append((rv, "MODIFIED", copy.deepcopy(configmap)))
            self.state.cond.notify_all()
            body = copy.deepcopy(configmap)
        self._json(HTTPStatus.OK, body)

    def _patch_featureflag(self, ns: str, name: str) -> None:
        patch = self._patch_body({MERGE_PATCH})  # CRDs: no strategic merge patch
        if patch is None:
            return
        with self.state.cond:
            resource = self.state.featureflags.get((ns, name))
            if resource is None:
                self._status(HTTPStatus.NOT_FOUND, "NotFound", f'featureflags "{name}" not found')
                return
            if not self._version_matches(resource, patch):
                return
            merged = _merge_patch(resource, patch)
            merged["metadata"]["resourceVersion"] = str(self.state.bump())
            self.state.featureflags[(ns, name)] = merged
            body = copy.deepcopy(merged)
        self._json(HTTPStatus.OK, body)

    def _patch_body(self, accepted: set[str]) -> dict[str, Any] | None:
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip()
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if content_type not in accepted:
            message = f"the body of the request was in an unknown format: {content_type}"
            self._status(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "UnsupportedMediaType", message)
            return None
        return json.loads(raw)

    def _version_matches(self, current: dict[str, Any], patch: dict[str, Any]) -> bool:
        wanted = (patch.get("metadata") or {}).pop("resourceVersion", None)
        if self.state.conflicts_to_inject > 0:
            self.state.conflicts_to_inject -= 1
            wanted = "stale"
        if wanted is not None and wanted != current["metadata"]["resourceVersion"]:
            message = "the object has been modified; apply your changes to the latest version"
            self._status(HTTPStatus.CONFLICT, "Conflict", message)
            return False
        return True

    # Responses.

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _json(self, code: HTTPStatus, body: dict[str, Any]) -> None:
        raw = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(raw)

    def _status(self, code: HTTPStatus, reason: str, message: str) -> None:
        self._json(code, _status_body(code, reason, message))


class _Aborted(Exception):
    pass


def _selected(name: str, query: dict[str, str]) -> bool:
    selector = query.get("fieldSelector")
    return selector is None or selector == f"metadata.name={name}"


def _status_body(code: HTTPStatus, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": int(code),
    }


def _gone_event(last: int) -> dict[str, Any]:
    message = f"too old resource version: {last}"
    return {"type": "ERROR", "object": _status_body(HTTPStatus.GONE, "Expired", message)}


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result
