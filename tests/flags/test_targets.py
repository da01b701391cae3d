"""FlagTarget: where `framegate flag` and `framegate guard` read and flip `video-streaming`, one
way each: a flagd file (real files in tmp_path), a ConfigMap key or an OpenFeature Operator
FeatureFlag (the fake Kubernetes API over real HTTP, through the real client)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kubernetes.client import ApiClient

from api.flags.cluster import ConfigMapRef, FeatureFlagRef
from api.flags.flagfile import FlagFileError, default_document, dump_document
from api.flags.keys import CONFIGMAP_KEY, STREAMING_FLAG
from api.flags.targets import ClusterFlag, FileFlag, FlagTarget
from tests.flags.conftest import CONFIGMAP, NAMESPACE
from tests.flags.fake_kube import FakeKube

ROLLOUT = {"fractional": [{"var": "targetingKey"}, ["on", 10], ["off", 90]]}
OTHER_FLAG = {"state": "ENABLED", "variants": {"a": "x"}, "defaultVariant": "a"}


def flip(target: FlagTarget) -> list[str]:
    """Off, read, on, read: the labels a CLI user sees."""
    return [target.set(False).label, target.get().label, target.set(True).label, target.get().label]


def test_a_file_target_flips_the_flag_and_keeps_other_flags(tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    document = default_document(on=True)
    document["flags"]["other"] = OTHER_FLAG
    path.write_text(dump_document(document))
    target = FileFlag(path)

    assert flip(target) == ["off", "off", "on", "on"]
    assert json.loads(path.read_text())["flags"]["other"] == OTHER_FLAG
    assert str(target) == f"file {path}"


def test_a_file_target_creates_a_missing_file_but_cannot_read_one(tmp_path: Path) -> None:
    target = FileFlag(tmp_path / "new" / "flags.json")
    with pytest.raises(FlagFileError, match="flag file not found"):
        target.get()

    assert target.set(False).label == "off"
    assert target.get().label == "off"


def test_a_file_target_refuses_to_overwrite_a_malformed_file(tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    path.write_text("{not json")
    with pytest.raises(FlagFileError, match="malformed JSON"):
        FileFlag(path).set(True)
    assert path.read_text() == "{not json"  # an operator's broken edit is left for them to see


def test_a_configmap_target_flips_the_key(fake_kube: FakeKube, kube_api: ApiClient) -> None:
    ref = ConfigMapRef(NAMESPACE, CONFIGMAP)
    target = ClusterFlag(ref, kube_api)

    assert flip(target) == ["off", "off", "on", "on"]
    stored = json.loads(fake_kube.configmap_data(NAMESPACE, CONFIGMAP)[CONFIGMAP_KEY])
    assert stored["flags"][STREAMING_FLAG]["defaultVariant"] == "on"
    assert str(target) == f"configmap {NAMESPACE}/{CONFIGMAP} key {CONFIGMAP_KEY}"


def test_turning_a_featureflag_off_removes_its_rollout(
    fake_kube: FakeKube, kube_api: ApiClient
) -> None:
    spec = {**default_document(on=True)["flags"][STREAMING_FLAG], "targeting": ROLLOUT}
    fake_kube.put_featureflag(NAMESPACE, "framegate", {STREAMING_FLAG: spec})
    target = ClusterFlag(FeatureFlagRef(NAMESPACE, "framegate"), kube_api)
    assert target.get().has_targeting

    assert target.set(False).label == "off"

    stored = fake_kube.featureflag(NAMESPACE, "framegate")["spec"]["flagSpec"]["flags"]
    assert "targeting" not in stored[STREAMING_FLAG]  # a rollout rule would override "off"
    assert target.get().label == "off" and not target.get().has_targeting
    assert str(target) == f"featureflag {NAMESPACE}/framegate"
