"""Render the Helm chart offline with helm-python-sdk (Helm's Go SDK, no helm binary)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml

CHART_DIR = Path(__file__).resolve().parents[2] / "helm" / "framegate"
VALUES_DIR = Path(__file__).resolve().parent / "values"
SCHEMAS_DIR = Path(__file__).resolve().parent / "schemas"
RELEASE = "fg"
NAMESPACE = "vision"

# The feature matrix: one small values file per feature.
MATRIX = (
    "defaults",
    "gpu-off",
    "ofo",
    "hpa",
    "streaming-disabled",
    "jobs-disabled",
    "kubernetes-provider",
    "flagd-provider",
    "env-provider",
    "targeting",
    "observability",
    "long-names",
)
KUBE_VERSIONS = ("1.29.0", "1.34.0")  # the oldest and newest Kubernetes the chart supports
# libyaml's parser with PyYAML's safe constructor: the same objects, and several times faster
# than the pure-Python parser over the thousands of rendered documents.
YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Rendered:
    """The objects of one `helm template`, keyed for lookup."""

    objects: list[Manifest]
    notes: str
    by_template: dict[str, str] = field(repr=False)

    def of_kind(self, kind: str) -> list[Manifest]:
        return [o for o in self.objects if o["kind"] == kind]

    def named(self, kind: str, suffix: str) -> Manifest:
        """The one object of `kind` whose name ends with `-suffix`."""
        found = [o for o in self.of_kind(kind) if o["metadata"]["name"].endswith(f"-{suffix}")]
        assert len(found) == 1, f"expected one {kind} named *-{suffix}, got {len(found)}"
        return found[0]

    def find(self, kind: str, suffix: str) -> Manifest | None:
        found = [o for o in self.of_kind(kind) if o["metadata"]["name"].endswith(f"-{suffix}")]
        return found[0] if found else None

    def workload(self, component: str) -> Manifest:
        return self.named("Deployment", component)

    def container(self, component: str) -> Manifest:
        return self.workload(component)["spec"]["template"]["spec"]["containers"][0]

    def env(self, component: str) -> dict[str, Any]:
        """Explicit env of a workload's container: name -> value (or valueFrom)."""
        return {
            e["name"]: e.get("value", e.get("valueFrom")) for e in self.container(component)["env"]
        }


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_values(case: str) -> dict[str, Any]:
    loaded = yaml.load((VALUES_DIR / f"{case}.yaml").read_text(), Loader=YamlLoader)
    assert isinstance(loaded, dict), f"{case}.yaml must hold a mapping"
    return loaded


def parse_manifests(by_template: dict[str, str]) -> tuple[list[Manifest], str]:
    objects: list[Manifest] = []
    notes = ""
    for path, text in sorted(by_template.items()):
        if path.endswith("NOTES.txt"):
            notes = text
            continue
        objects.extend(doc for doc in yaml.load_all(text, Loader=YamlLoader) if doc)
    return objects, notes


@pytest.fixture(scope="session")
def chart() -> Iterator[helm_python.Chart]:
    with helm_python.Chart.load(CHART_DIR) as loaded:
        yield loaded


RenderFn = Callable[..., Rendered]


@pytest.fixture(scope="session")
def render(chart: helm_python.Chart) -> RenderFn:
    """render(case=None, **overrides) -> Rendered; values = file of `case` merged with overrides."""
    cache: dict[str, Rendered] = {}

    def _render(case: str | None = None, overrides: dict[str, Any] | None = None) -> Rendered:
        values = deep_merge(load_values(case) if case else {}, overrides or {})
        key = json.dumps(values, sort_keys=True)
        if key not in cache:
            by_template = chart.render(values, name=RELEASE, namespace=NAMESPACE)
            objects, notes = parse_manifests(by_template)
            cache[key] = Rendered(objects=objects, notes=notes, by_template=by_template)
        return cache[key]

    return _render


@pytest.fixture(scope="session")
def custom_schemas() -> dict[str, dict[str, Any]]:
    """JSON schemas of the custom resources, keyed by 'apiVersion/kind'."""
    openfeature = json.loads((SCHEMAS_DIR / "openfeature-v1beta1.schema.json").read_text())
    servicemonitor = json.loads((SCHEMAS_DIR / "servicemonitor-v1.schema.json").read_text())
    defs = openfeature["definitions"]
    return {
        f"core.openfeature.dev/v1beta1/{kind}": {
            "$schema": openfeature["$schema"],
            "definitions": defs,
            "$ref": f"#/definitions/{kind}",
        }
        for kind in ("FeatureFlag", "FeatureFlagSource")
    } | {
        "monitoring.coreos.com/v1/ServiceMonitor": servicemonitor,
        "argoproj.io/v1alpha1/AnalysisTemplate": json.loads(
            (SCHEMAS_DIR / "analysistemplate-v1alpha1.schema.json").read_text()
        ),
        "flagger.app/v1beta1/MetricTemplate": json.loads(
            (SCHEMAS_DIR / "metrictemplate-v1beta1.schema.json").read_text()
        ),
    }


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests that take `case` run over the feature matrix, `kube_version` over both ends of the
    supported range."""
    if "case" in metafunc.fixturenames:
        metafunc.parametrize("case", MATRIX)
    if "kube_version" in metafunc.fixturenames:
        metafunc.parametrize("kube_version", KUBE_VERSIONS)


@pytest.fixture(scope="session")
def chart_dir() -> Path:
    return CHART_DIR


@pytest.fixture(scope="session")
def namespace() -> str:
    return NAMESPACE


@pytest.fixture(scope="session")
def values_of() -> Callable[[str], dict[str, Any]]:
    return load_values
