"""Where the guard writes the flag: the writers `framegate flag set` uses (a flagd file, a
ConfigMap's flags.json, an OpenFeature Operator FeatureFlag), and on a cluster a Kubernetes
Event on the flag object, so `kubectl describe` shows who turned streaming off and why."""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from kubernetes.client import CoreV1Api, CustomObjectsApi

from api.flags import targets
from api.flags.cluster import (
    FEATUREFLAG_GROUP,
    FEATUREFLAG_PLURAL,
    FEATUREFLAG_VERSION,
    REQUEST_TIMEOUT_S,
    ConfigMapRef,
)
from api.flags.flagfile import FlagFileError, StreamingFlag

log = logging.getLogger("framegate.guard")

COMPONENT = "framegate-guard"
REASON_TRIPPED = "StreamingTripped"
REASON_REENABLED = "StreamingReenabled"
EVENT_WARNING = "Warning"
EVENT_NORMAL = "Normal"


class FlagTarget(Protocol):
    def get(self) -> StreamingFlag: ...
    def set(self, on: bool) -> StreamingFlag: ...
    def record_event(self, reason: str, message: str, event_type: str) -> None: ...


@dataclass(frozen=True, slots=True)
class FileFlag(targets.FileFlag):
    def record_event(self, reason: str, message: str, event_type: str) -> None:
        pass  # no cluster object: the JSON log line is the record


@dataclass(frozen=True, slots=True)
class ClusterFlag(targets.ClusterFlag):
    def record_event(self, reason: str, message: str, event_type: str) -> None:
        """A core/v1 Event whose involvedObject is the flag object."""
        namespace = self.ref.namespace
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{self.ref.name}.", "namespace": namespace},
            "involvedObject": self._involved_object(),
            "reason": reason,
            "message": message[:1024],
            "type": event_type,
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": socket.gethostname(),
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        CoreV1Api(self.api).create_namespaced_event(
            namespace,
            body,  # type: ignore[arg-type]  # typed as CoreV1Event; the client sends dicts as JSON
            _request_timeout=REQUEST_TIMEOUT_S,
        )

    def _involved_object(self) -> dict[str, Any]:
        ref = self.ref
        if isinstance(ref, ConfigMapRef):
            configmap = CoreV1Api(self.api).read_namespaced_config_map(
                ref.name, ref.namespace, _request_timeout=REQUEST_TIMEOUT_S
            )
            meta = configmap.metadata
            if meta is None:  # always sent; the client types every field optional
                raise FlagFileError(f"{ref}: the API returned no metadata")
            uid, version = meta.uid, meta.resource_version
            api_version, kind = "v1", "ConfigMap"
        else:
            resource = CustomObjectsApi(self.api).get_namespaced_custom_object(
                FEATUREFLAG_GROUP,
                FEATUREFLAG_VERSION,
                ref.namespace,
                FEATUREFLAG_PLURAL,
                ref.name,
                _request_timeout=REQUEST_TIMEOUT_S,
            )
            if not isinstance(resource, dict):  # the client declares `object`: the JSON body
                raise FlagFileError(f"{ref}: the API returned {type(resource).__name__}")
            metadata = resource.get("metadata", {})
            uid, version = metadata.get("uid"), metadata.get("resourceVersion")
            api_version, kind = f"{FEATUREFLAG_GROUP}/{FEATUREFLAG_VERSION}", "FeatureFlag"
        involved: dict[str, str | None] = {
            "apiVersion": api_version,
            "kind": kind,
            "name": ref.name,
        }
        involved |= {"namespace": ref.namespace, "uid": uid, "resourceVersion": version}
        return {k: v for k, v in involved.items() if v is not None}
