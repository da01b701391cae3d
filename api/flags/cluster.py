"""Read and flip `video-streaming` where it lives on a cluster: a ConfigMap key holding flagd
JSON, or an OpenFeature Operator `FeatureFlag` (core.openfeature.dev/v1beta1).

Writes are JSON merge patches carrying the resourceVersion that was read, so a concurrent edit
is a 409 Conflict (retried on fresh data), never a lost update. The content type is set
explicitly: what the client picks for a dict body differs between client versions (JSON patch,
strategic merge patch), and custom resources reject strategic merge patches (415).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, TypeVar

from kubernetes.client import ApiClient, CoreV1Api, CustomObjectsApi
from kubernetes.client.exceptions import ApiException
from tenacity import Retrying, retry_if_exception, stop_after_attempt

from api.flags.flagfile import (
    FlagFileError,
    StreamingFlag,
    default_document,
    describe,
    dump_document,
    parse_document,
    streaming_flag_spec,
    with_streaming,
)
from api.flags.keys import CONFIGMAP_KEY, STREAMING_FLAG

MERGE_PATCH = "application/merge-patch+json"
FEATUREFLAG_GROUP = "core.openfeature.dev"
FEATUREFLAG_VERSION = "v1beta1"
FEATUREFLAG_PLURAL = "featureflags"
CONFLICT_RETRIES = 3
REQUEST_TIMEOUT_S = (3.0, 10.0)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ConfigMapRef:
    namespace: str
    name: str
    key: str = CONFIGMAP_KEY

    def __str__(self) -> str:
        return f"configmap {self.namespace}/{self.name} key {self.key}"


@dataclass(frozen=True, slots=True)
class FeatureFlagRef:
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"featureflag {self.namespace}/{self.name}"


def get_configmap_streaming(api: ApiClient, ref: ConfigMapRef) -> StreamingFlag:
    configmap = _read_configmap(api, ref)
    text = (configmap.data or {}).get(ref.key)
    if text is None:
        raise FlagFileError(f"{ref}: key missing")
    return describe(parse_document(text, str(ref)))


def set_configmap_streaming(api: ApiClient, ref: ConfigMapRef, on: bool) -> StreamingFlag:
    """Turn the flag on/off in the ConfigMap's flagd JSON (the key is created when missing)."""

    def attempt() -> StreamingFlag:
        configmap = _read_configmap(api, ref)
        text = (configmap.data or {}).get(ref.key)
        document = default_document(on) if text is None else parse_document(text, str(ref))
        updated = with_streaming(document, on)
        patch = {
            "metadata": {"resourceVersion": configmap.metadata.resource_version},
            "data": {ref.key: dump_document(updated)},
        }
        CoreV1Api(api).patch_namespaced_config_map(
            ref.name,
            ref.namespace,
            patch,
            _content_type=MERGE_PATCH,
            _request_timeout=REQUEST_TIMEOUT_S,
        )
        return describe(updated)

    return _retry_on_conflict(attempt)


def get_featureflag_streaming(api: ApiClient, ref: FeatureFlagRef) -> StreamingFlag:
    flag = _featureflag_flags(_read_featureflag(api, ref), ref).get(STREAMING_FLAG)
    return describe({"flags": {STREAMING_FLAG: flag}} if flag is not None else {"flags": {}})


def set_featureflag_streaming(api: ApiClient, ref: FeatureFlagRef, on: bool) -> StreamingFlag:
    """Set spec.flagSpec.flags["video-streaming"]: state, variants, defaultVariant (targeting
    removed when turning off, as for a file)."""

    def attempt() -> StreamingFlag:
        resource = _read_featureflag(api, ref)
        current = _featureflag_flags(resource, ref).get(STREAMING_FLAG)
        spec: dict[str, Any] = streaming_flag_spec(current, on)
        if isinstance(current, dict) and "targeting" in current and "targeting" not in spec:
            spec["targeting"] = None  # merge patch: null deletes the key
        patch = {
            "metadata": {"resourceVersion": resource["metadata"]["resourceVersion"]},
            "spec": {"flagSpec": {"flags": {STREAMING_FLAG: spec}}},
        }
        CustomObjectsApi(api).patch_namespaced_custom_object(
            FEATUREFLAG_GROUP,
            FEATUREFLAG_VERSION,
            ref.namespace,
            FEATUREFLAG_PLURAL,
            ref.name,
            patch,
            _content_type=MERGE_PATCH,
            _request_timeout=REQUEST_TIMEOUT_S,
        )
        return describe({"flags": {STREAMING_FLAG: streaming_flag_spec(current, on)}})

    return _retry_on_conflict(attempt)


def _read_configmap(api: ApiClient, ref: ConfigMapRef) -> Any:
    return CoreV1Api(api).read_namespaced_config_map(
        ref.name, ref.namespace, _request_timeout=REQUEST_TIMEOUT_S
    )


def _read_featureflag(api: ApiClient, ref: FeatureFlagRef) -> dict[str, Any]:
    resource = CustomObjectsApi(api).get_namespaced_custom_object(
        FEATUREFLAG_GROUP,
        FEATUREFLAG_VERSION,
        ref.namespace,
        FEATUREFLAG_PLURAL,
        ref.name,
        _request_timeout=REQUEST_TIMEOUT_S,
    )
    if not isinstance(resource, dict):  # the client declares `object`: it is the JSON body
        raise FlagFileError(f"{ref}: the API returned {type(resource).__name__}, not an object")
    return resource


def _featureflag_flags(resource: dict[str, Any], ref: FeatureFlagRef) -> dict[str, Any]:
    flags = resource.get("spec", {}).get("flagSpec", {}).get("flags", {})
    if not isinstance(flags, dict):
        raise FlagFileError(f"{ref}: spec.flagSpec.flags is not an object")
    return flags


def _retry_on_conflict(attempt: Callable[[], T]) -> T:
    """At most CONFLICT_RETRIES attempts, at once (a 409 means the data changed, not that the
    server is busy); the last conflict, or any other error, is raised as it is."""
    retrying = Retrying(
        retry=retry_if_exception(_is_conflict),
        stop=stop_after_attempt(CONFLICT_RETRIES),
        reraise=True,
    )
    return retrying(attempt)


def _is_conflict(exc: BaseException) -> bool:
    return isinstance(exc, ApiException) and exc.status == HTTPStatus.CONFLICT
