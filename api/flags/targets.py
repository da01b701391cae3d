"""Where the `video-streaming` flag lives, read and written one way by `framegate flag` and
`framegate guard`: a flagd JSON file, a ConfigMap's flags.json or an OpenFeature Operator
FeatureFlag."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from kubernetes.client import ApiClient

from api.flags.cluster import (
    ConfigMapRef,
    FeatureFlagRef,
    get_configmap_streaming,
    get_featureflag_streaming,
    set_configmap_streaming,
    set_featureflag_streaming,
)
from api.flags.flagfile import StreamingFlag, describe, read_document, set_streaming


class FlagTarget(Protocol):
    def get(self) -> StreamingFlag: ...
    def set(self, on: bool) -> StreamingFlag: ...


@dataclass(frozen=True, slots=True)
class FileFlag:
    path: Path

    def __str__(self) -> str:
        return f"file {self.path}"

    def get(self) -> StreamingFlag:
        return describe(read_document(self.path))

    def set(self, on: bool) -> StreamingFlag:
        return set_streaming(self.path, on)


@dataclass(frozen=True, slots=True)
class ClusterFlag:
    ref: ConfigMapRef | FeatureFlagRef
    api: ApiClient

    def __str__(self) -> str:
        return str(self.ref)

    def get(self) -> StreamingFlag:
        if isinstance(self.ref, ConfigMapRef):
            return get_configmap_streaming(self.api, self.ref)
        return get_featureflag_streaming(self.api, self.ref)

    def set(self, on: bool) -> StreamingFlag:
        if isinstance(self.ref, ConfigMapRef):
            return set_configmap_streaming(self.api, self.ref, on)
        return set_featureflag_streaming(self.api, self.ref, on)
