"""`kubernetes` flag provider: flagd JSON in one ConfigMap key, kept current by list+watch.

A change reaches every gateway in well under a second (a watch event), without the kubelet's
ConfigMap volume sync delay (up to a minute or more). Evaluation is flagd's own: the flagd JSON is
loaded into `FlagdCore` (openfeature-flagd-core, what the flagd in-process resolver uses), so
state, variants, defaultVariant and json-logic targeting (`fractional`, `sem_ver`, ...) behave
exactly as with the `file` provider.

The watcher thread lists the one ConfigMap (`fieldSelector=metadata.name=<name>`), then watches
from the list's resourceVersion. A stream that ends is re-opened from the last resourceVersion; a
410 Gone (HTTP status or ERROR event) means that version is compacted away: relist. Any other
failure (API unreachable, 403, ...) marks the provider STALE, keeps serving the last good flags,
and relists with exponential backoff. A ConfigMap that is deleted, loses its key or holds invalid
JSON is an ERROR that also keeps the last good flags: deleting it must not silently switch
streaming back to the STREAMING_ENABLED default.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from enum import StrEnum
from http import HTTPStatus
from typing import Any

from kubernetes.client import ApiClient, CoreV1Api
from kubernetes.client.exceptions import ApiException
from kubernetes.watch import Watch
from openfeature.contrib.tools.flagd.core import FlagdCore
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEventDetails
from openfeature.exception import ErrorCode, OpenFeatureError, ProviderNotReadyError
from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType
from openfeature.provider import AbstractProvider, Metadata

from api.flags.keys import CONFIGMAP_KEY
from api.flags.kube_client import make_api_client

log = logging.getLogger("framegate.flags")

THREAD_NAME = "framegate-flags-configmap-watch"
WATCH_TIMEOUT_S = 240  # server-side timeoutSeconds of one watch request
CONNECT_TIMEOUT_S = 3.0
LIST_READ_TIMEOUT_S = 10.0
WATCH_READ_GRACE_S = 30.0  # silence beyond timeoutSeconds + this: the connection is dead
BACKOFF_INITIAL_S = 0.2
BACKOFF_MAX_S = 5.0
SHUTDOWN_TIMEOUT_S = 5.0


class _Health(StrEnum):
    NOT_READY = "not_ready"
    READY = "ready"
    ERROR = "error"
    STALE = "stale"


class ConfigMapFlagProvider(AbstractProvider):
    """Serves the flagd document in ConfigMap `namespace/name`, key `key`."""

    def __init__(
        self,
        name: str,
        namespace: str,
        *,
        key: str = CONFIGMAP_KEY,
        api_client: ApiClient | None = None,
        watch_timeout_s: int = WATCH_TIMEOUT_S,
        backoff_initial_s: float = BACKOFF_INITIAL_S,
        backoff_max_s: float = BACKOFF_MAX_S,
    ) -> None:
        super().__init__()
        self._name = name
        self._namespace = namespace
        self._key = key
        self._selector = f"metadata.name={name}"
        self._api = api_client
        self._owns_api = api_client is None
        self._watch_timeout_s = watch_timeout_s
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._core = FlagdCore()
        self._v1: CoreV1Api | None = None
        self._resource_version: str | None = None
        self._revision: str | None = None  # sha256 of the flags.json text in `_core`
        self._health = _Health.NOT_READY
        self._problem: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._watch: Watch | None = None

    @property
    def source(self) -> str:
        return f"configmap {self._namespace}/{self._name} key {self._key}"

    def get_metadata(self) -> Metadata:
        return Metadata(name="framegate-kubernetes-configmap")

    def revision(self) -> str | None:
        return self._revision

    def problem(self) -> str | None:
        return self._problem

    def initialize(self, evaluation_context: EvaluationContext) -> None:
        self._stop.clear()
        if self._api is None:
            self._api = make_api_client()
        self._v1 = CoreV1Api(self._api)
        try:
            self._relist()
        except Exception as exc:  # any failure: the watcher thread retries, with backoff
            self._resource_version = None
            self._health = _Health.STALE
            self._problem = f"Kubernetes API unavailable: {_describe(exc)}"
        finally:
            self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
            self._thread.start()
        if self._health is not _Health.READY:
            raise ProviderNotReadyError(self._problem or f"{self.source}: no flags yet")

    def shutdown(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            deadline = time.monotonic() + SHUTDOWN_TIMEOUT_S
            while thread.is_alive() and time.monotonic() < deadline:
                watch = self._watch
                if watch is not None:
                    watch.stop()  # shuts the socket down: unblocks the thread's read
                thread.join(0.05)
            if thread.is_alive():
                log.warning("%s: watcher thread still running after shutdown", self.source)
        if self._owns_api and self._api is not None:
            self._api.close()
            self._api = None

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        return self._core.resolve_boolean_value(flag_key, default_value, evaluation_context)

    def resolve_string_details(
        self,
        flag_key: str,
        default_value: str,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[str]:
        return self._core.resolve_string_value(flag_key, default_value, evaluation_context)

    def resolve_integer_details(
        self,
        flag_key: str,
        default_value: int,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[int]:
        return self._core.resolve_integer_value(flag_key, default_value, evaluation_context)

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        return self._core.resolve_float_value(flag_key, default_value, evaluation_context)

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Sequence[FlagValueType] | Mapping[str, FlagValueType],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[FlagValueType] | Mapping[str, FlagValueType]]:
        return self._core.resolve_object_value(flag_key, default_value, evaluation_context)

    # The watcher thread.

    def _run(self) -> None:
        backoff = self._backoff_initial_s
        gone_again = False  # a relist answered by 410 at once: back off instead of spinning
        # A failed first list was just reported by initialize(): retry after one backoff.
        delay = backoff if self._resource_version is None else 0.0
        while not self._stop.wait(delay):
            delay = 0.0
            try:
                if self._resource_version is None:
                    self._relist()
                started = time.monotonic()
                self._watch_once()
                backoff, gone_again = self._backoff_initial_s, False
                if time.monotonic() - started < self._backoff_initial_s:
                    delay = self._backoff_initial_s  # a server closing at once: no busy loop
            except Exception as exc:  # unreachable, reset, timeout, 4xx/5xx: relist
                if self._stop.is_set():
                    return
                self._resource_version = None
                if isinstance(exc, ApiException) and exc.status == HTTPStatus.GONE:
                    log.info("%s: watch expired (410 Gone), relisting", self.source)
                    delay, gone_again = (backoff if gone_again else 0.0), True
                    continue
                self._mark_stale(_describe(exc))
                delay, backoff = backoff, min(backoff * 2, self._backoff_max_s)

    def _relist(self) -> None:
        assert self._v1 is not None
        result = self._v1.list_namespaced_config_map(
            self._namespace,
            field_selector=self._selector,
            _request_timeout=(CONNECT_TIMEOUT_S, LIST_READ_TIMEOUT_S),
        )
        assert result.metadata is not None  # always sent; the client types every field optional
        self._resource_version = result.metadata.resource_version
        if not result.items:
            self._mark_error(f"{self.source}: ConfigMap not found")
            return
        self._apply(result.items[0].data)

    def _watch_once(self) -> None:
        assert self._v1 is not None
        watch = Watch()
        self._watch = watch
        try:
            if self._stop.is_set():  # shutdown() ran before `_watch` was visible to it
                return
            stream = watch.stream(
                self._v1.list_namespaced_config_map,
                self._namespace,
                field_selector=self._selector,
                resource_version=self._resource_version,
                allow_watch_bookmarks=True,
                timeout_seconds=self._watch_timeout_s,  # also: a 410 raises instead of retrying
                _request_timeout=(CONNECT_TIMEOUT_S, self._watch_timeout_s + WATCH_READ_GRACE_S),
            )
            for event in stream:
                self._on_event(event)
                if watch.resource_version:
                    self._resource_version = watch.resource_version
        finally:
            self._watch = None

    def _on_event(self, event: Mapping[str, Any]) -> None:
        kind = event.get("type")
        if kind in ("ADDED", "MODIFIED"):
            self._apply(event["object"].data)
        elif kind == "DELETED":
            self._mark_error(f"{self.source}: ConfigMap deleted, serving the last flags")

    def _apply(self, data: Mapping[str, str] | None) -> None:
        text = (data or {}).get(self._key)
        if text is None:
            self._mark_error(f"{self.source}: key missing")
            return
        digest = hashlib.sha256(text.encode()).hexdigest()
        if digest != self._revision:
            try:
                document = json.loads(text)
                if not isinstance(document, dict) or not isinstance(document.get("flags"), dict):
                    raise ValueError("not a flagd document (no 'flags' object)")
                changed = self._core.set_flags_and_get_changed_keys(document)
            except (ValueError, TypeError, AttributeError, OpenFeatureError) as exc:
                self._mark_error(f"{self.source}: invalid flagd JSON: {_describe(exc)}")
                return
            self._revision = digest
            log.info("%s: flags loaded (sha256 %s)", self.source, digest[:12])
            self.emit_provider_configuration_changed(
                ProviderEventDetails(flags_changed=changed, message=f"{self.source} changed")
            )
        self._mark_ready()

    def _mark_ready(self) -> None:
        if self._health is _Health.READY:
            return
        recovered = self._health is not _Health.NOT_READY
        self._health, self._problem = _Health.READY, None
        if recovered:
            log.info("%s: flags current again", self.source)
            self.emit_provider_ready(ProviderEventDetails(message=f"{self.source} in sync"))

    def _mark_error(self, problem: str) -> None:
        if (self._health, self._problem) == (_Health.ERROR, problem):
            return
        self._health, self._problem = _Health.ERROR, problem
        log.warning("%s", problem)
        self.emit_provider_error(
            ProviderEventDetails(message=problem, error_code=ErrorCode.PARSE_ERROR)
        )

    def _mark_stale(self, cause: str) -> None:
        was_stale = self._health is _Health.STALE
        self._health = _Health.STALE
        self._problem = f"Kubernetes API unavailable: {cause}"
        if not was_stale:
            log.warning("%s: %s; serving the last flags", self.source, self._problem)
            self.emit_provider_stale(ProviderEventDetails(message=self._problem))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ApiException):
        return f"Kubernetes API error {exc.status} {exc.reason}".rstrip()
    message = getattr(exc, "error_message", None) or str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
