"""`kubernetes_validate.validate` with its schemas loaded once.

kubernetes_validate re-reads and re-parses the multi-MB `_definitions.json` and builds a new
referencing Registry on every call; the chart tests validate thousands of objects. This resolves
the schema file exactly as kubernetes_validate does (same version choice, same file names, its own
helpers), caches one registry per schema directory and one Draft202012Validator per
(directory, kind, apiVersion), and raises kubernetes_validate's own error types, so callers keep
their `except kubernetes_validate.ValidationError` and its messages.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import importlib_resources
import jsonschema
from kubernetes_validate import utils
from referencing import Registry, Resource

SCHEMAS = Path(str(importlib_resources.files("kubernetes_validate") / "kubernetes-json-schema"))


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise utils.InvalidSchemaError(f"Couldn't parse schema {path}") from exc


@functools.cache
def _schema_version(desired_version: str) -> str:
    """The newest bundled schema version not newer than `desired_version` (as the library picks)."""
    if utils.major_minor(desired_version) > utils.latest_version():
        raise utils.VersionNotSupportedError(version=utils.major_minor(desired_version))
    wanted = utils.major_minor(desired_version)
    return [v for v in utils.all_versions() if utils.major_minor(v) <= wanted][-1]


@functools.cache
def _definitions(schema_dir: str) -> Registry:
    return Resource.from_contents(_load(SCHEMAS / schema_dir / "_definitions.json")) @ Registry()


@functools.cache
def _validator(schema_dir: str, kind: str, api_version: str) -> jsonschema.protocols.Validator:
    """One validator per schema file; raises FileNotFoundError when there is no such file."""
    # rbac.authorization.k8s.io/v1 -> rbac-v1, as kubernetes_validate names its files.
    group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    schema = _load(SCHEMAS / schema_dir / f"{kind.lower()}-{group}.json")
    registry = Resource.from_contents(schema) @ _definitions(schema_dir)
    return jsonschema.Draft202012Validator(schema, registry=registry)


def validate(obj: dict[str, Any], kube_version: str, strict: bool = False) -> str:
    """Validate `obj` like `kubernetes_validate.validate`; returns the schema's major.minor."""
    desired = kube_version.removeprefix("v")
    version = _schema_version(desired)
    schema_dir = f"v{version}-local" + ("-strict" if strict else "")
    try:
        validator = _validator(schema_dir, obj["kind"], obj["apiVersion"])
    except FileNotFoundError as exc:
        raise utils.SchemaNotFoundError(
            version=utils.major_minor(desired), kind=obj["kind"], api_version=obj["apiVersion"]
        ) from exc
    try:
        validator.validate(obj)
    except jsonschema.ValidationError as exc:
        raise utils.ValidationError(exc, version=utils.major_minor(version)) from exc
    return utils.major_minor(version)
