"""`framegate flag get|set video-streaming`: a local flagd file, a ConfigMap or a FeatureFlag."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from kubernetes.client.exceptions import ApiException
from kubernetes.config import ConfigException
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from urllib3.exceptions import HTTPError

from api.core.config import Settings, explain
from api.flags.cluster import ConfigMapRef, FeatureFlagRef
from api.flags.flagfile import (
    FlagFileError,
    StreamingFlag,
    flag_file_path,
)
from api.flags.keys import STREAMING_FLAG
from api.flags.kube_client import make_api_client
from api.flags.targets import ClusterFlag, FileFlag, FlagTarget

EXIT_FAILURE = 1

out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)

app = typer.Typer(
    name="flag",
    help="Read or flip the video-streaming feature flag in a flagd file or on a cluster.",
    no_args_is_help=True,
    add_completion=False,
)


class Switch(StrEnum):
    ON = "on"
    OFF = "off"


@dataclass(frozen=True, slots=True)
class _ClusterTarget:
    """A cluster flag with a client made per command (in-cluster account, kubeconfig or
    --api-server)."""

    ref: ConfigMapRef | FeatureFlagRef
    api_server: str | None

    def __str__(self) -> str:
        return str(self.ref)

    def get(self) -> StreamingFlag:
        with make_api_client(self.api_server) as api:
            return ClusterFlag(self.ref, api).get()

    def set(self, on: bool) -> StreamingFlag:
        with make_api_client(self.api_server) as api:
            return ClusterFlag(self.ref, api).set(on)


FlagArg = Annotated[str, typer.Argument(help=f"Flag key: {STREAMING_FLAG}.")]
FileOpt = Annotated[
    Path | None,
    typer.Option(
        "--file",
        help="flagd JSON file. Default: FLAGD_OFFLINE_FLAG_SOURCE_PATH, else <DATA_DIR>/flags.json "
        "(./data/flags.json).",
    ),
]
NamespaceOpt = Annotated[
    str | None,
    typer.Option(
        "--namespace", "-n", help="Namespace of --configmap/--featureflag (default FLAG_NAMESPACE)."
    ),
]
ConfigMapOpt = Annotated[
    str | None,
    typer.Option("--configmap", help="ConfigMap whose flags.json holds the flagd JSON."),
]
FeatureFlagOpt = Annotated[
    str | None,
    typer.Option(
        "--featureflag", help="OpenFeature Operator FeatureFlag (core.openfeature.dev/v1beta1)."
    ),
]
ApiServerOpt = Annotated[
    str | None,
    typer.Option(
        "--api-server",
        help="Kubernetes API URL used without credentials, e.g. `kubectl proxy` at "
        "http://127.0.0.1:8001. Default: in-cluster service account, else kubeconfig.",
    ),
]


@app.command("get")
def get(
    flag: FlagArg,
    file: FileOpt = None,
    namespace: NamespaceOpt = None,
    configmap: ConfigMapOpt = None,
    featureflag: FeatureFlagOpt = None,
    api_server: ApiServerOpt = None,
) -> None:
    """Print the flag's value (its default variant) and whether targeting rules apply."""
    target = _target(flag, file, namespace, configmap, featureflag, api_server)
    with _failures(target):
        result = target.get()
    out.print(f"{STREAMING_FLAG}: {result.label}")
    out.print(f"  source: {escape(str(target))}")
    if result.state is not None:
        out.print(f"  state: {result.state}, defaultVariant: {result.default_variant}")
    if result.label == "disabled":
        out.print("  DISABLED: gateways use their STREAMING_ENABLED default")
    if result.has_targeting:
        out.print("  targeting rules present: some sessions may get another value")


@app.command("set")
def set_(
    flag: FlagArg,
    value: Annotated[Switch, typer.Argument(metavar="on|off", help="New value.")],
    file: FileOpt = None,
    namespace: NamespaceOpt = None,
    configmap: ConfigMapOpt = None,
    featureflag: FeatureFlagOpt = None,
    api_server: ApiServerOpt = None,
) -> None:
    """Turn the flag on or off (off also removes targeting rules). No restart needed."""
    target = _target(flag, file, namespace, configmap, featureflag, api_server)
    with _failures(target):
        result = target.set(value is Switch.ON)
    out.print(f"{STREAMING_FLAG}: {result.label}")
    out.print(f"  source: {escape(str(target))}")
    if result.has_targeting:
        out.print("  targeting rules kept: some sessions may still get another value")


def _target(
    flag: str,
    file: Path | None,
    namespace: str | None,
    configmap: str | None,
    featureflag: str | None,
    api_server: str | None,
) -> FlagTarget:
    if flag != STREAMING_FLAG:
        raise typer.BadParameter(
            f"unknown flag {flag!r}; known: {STREAMING_FLAG}", param_hint="FLAG"
        )
    if configmap and featureflag:
        raise typer.BadParameter("give --configmap or --featureflag, not both")
    cluster = configmap or featureflag
    if file is not None and cluster:
        raise typer.BadParameter("give --file or a cluster object, not both")
    if not cluster:
        if namespace is not None or api_server is not None:
            raise typer.BadParameter("--namespace/--api-server need --configmap or --featureflag")
        return FileFlag(file or flag_file_path(_settings()))
    ns = namespace or _settings().flag_namespace
    ref = ConfigMapRef(ns, configmap) if configmap else FeatureFlagRef(ns, featureflag or "")
    return _ClusterTarget(ref, api_server)


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        _fail(f"invalid settings in the environment: {explain(exc)}")


@contextmanager
def _failures(target: FlagTarget) -> Iterator[None]:
    try:
        yield
    except FlagFileError as exc:
        _fail(str(exc))
    except ApiException as exc:
        _fail(f"{target}: Kubernetes API error {exc.status} {exc.reason}: {_api_message(exc)}")
    except ConfigException as exc:
        _fail(f"no Kubernetes configuration (in-cluster or kubeconfig): {exc}")
    except HTTPError as exc:
        _fail(f"{target}: cannot reach the Kubernetes API: {exc}")
    except OSError as exc:
        _fail(f"{target}: {exc.strerror or exc}")


def _api_message(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body or "")["message"])
    except (ValueError, KeyError, TypeError):
        return (exc.body or "").strip() or "no details"


def _fail(message: str) -> NoReturn:
    err.print(f"error: {escape(message)}")
    raise typer.Exit(EXIT_FAILURE)
