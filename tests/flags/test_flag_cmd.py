"""`framegate flag get|set` through typer's CliRunner, on files and on the fake Kubernetes API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kubernetes.client import ApiClient
from typer.testing import CliRunner, Result

from api.cli.flag_cmd import app
from api.core.polling import apoll_until
from api.flags import FlagService
from api.flags.flagfile import default_document, describe, parse_document, write_document
from api.flags.keys import FLAG_SCHEMA_URL, STREAMING_FLAG
from tests.flags.conftest import (
    CONFIGMAP,
    FLIP_DEADLINE_S,
    NAMESPACE,
    WAIT_S,
    ctx,
    wait_for_value,
)
from tests.flags.fake_kube import FakeKube

WATCH = "GET watch /api/v1/namespaces/default/configmaps"
ROLLOUT = {"fractional": [["on", 50], ["off", 50]]}

runner = CliRunner()


def flag(*args: str) -> Result:
    return runner.invoke(app, list(args))


def cluster(kube: FakeKube, *args: str) -> Result:
    return flag(*args, "--namespace", NAMESPACE, "--api-server", kube.url)


def configmap_flag(kube: FakeKube) -> dict:
    return json.loads(kube.configmap_data(NAMESPACE, CONFIGMAP)["flags.json"])


# Files.


def test_cli_set_off_then_get_prints_off(tmp_path: Path) -> None:
    path = str(tmp_path / "flags.json")
    result = flag("set", STREAMING_FLAG, "off", "--file", path)
    assert result.exit_code == 0, result.output
    result = flag("get", STREAMING_FLAG, "--file", path)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "video-streaming: off"


def test_cli_set_writes_valid_flagd_json_atomically(tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    write_document(path, default_document(on=True))
    inode = path.stat().st_ino
    assert flag("set", STREAMING_FLAG, "off", "--file", str(path)).exit_code == 0
    document = parse_document(path.read_text(), str(path))
    assert document["$schema"] == FLAG_SCHEMA_URL
    assert describe(document).label == "off"
    assert path.stat().st_ino != inode
    assert [p.name for p in tmp_path.iterdir()] == ["flags.json"]


def test_cli_set_on_reports_kept_targeting(tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    document = default_document(on=False)
    document["flags"][STREAMING_FLAG]["targeting"] = ROLLOUT
    write_document(path, document)
    result = flag("set", STREAMING_FLAG, "on", "--file", str(path))
    assert result.exit_code == 0
    assert "targeting rules kept" in result.stdout


def test_cli_file_defaults_to_flagd_env_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "env.json"
    monkeypatch.setenv("FLAGD_OFFLINE_FLAG_SOURCE_PATH", str(path))
    assert flag("set", STREAMING_FLAG, "off").exit_code == 0
    assert describe(parse_document(path.read_text(), "x")).label == "off"


def test_cli_file_defaults_to_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    assert flag("set", STREAMING_FLAG, "on").exit_code == 0
    assert (tmp_path / "flags.json").exists()


def test_cli_get_missing_file_fails(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"
    result = flag("get", STREAMING_FLAG, "--file", str(path))
    assert result.exit_code == 1
    assert result.stderr == f"error: flag file not found: {path}\n"


def test_cli_get_malformed_file_fails(tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    path.write_text("{oops")
    result = flag("get", STREAMING_FLAG, "--file", str(path))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {path}: malformed JSON")


def test_cli_set_malformed_file_fails_and_keeps_it(tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    path.write_text("{oops")
    result = flag("set", STREAMING_FLAG, "off", "--file", str(path))
    assert result.exit_code == 1
    assert path.read_text() == "{oops"


def test_cli_get_disabled_flag_explains_default(tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    document = default_document()
    document["flags"][STREAMING_FLAG]["state"] = "DISABLED"
    write_document(path, document)
    result = flag("get", STREAMING_FLAG, "--file", str(path))
    assert result.stdout.splitlines()[0] == "video-streaming: disabled"
    assert "STREAMING_ENABLED" in result.stdout


def test_cli_unknown_flag_is_a_usage_error(tmp_path: Path) -> None:
    result = flag("get", "other-flag", "--file", str(tmp_path / "f.json"))
    assert result.exit_code == 2
    assert "unknown flag 'other-flag'" in result.output


def test_cli_bad_value_is_a_usage_error(tmp_path: Path) -> None:
    result = flag("set", STREAMING_FLAG, "maybe", "--file", str(tmp_path / "f.json"))
    assert result.exit_code == 2


def test_cli_file_and_configmap_together_is_a_usage_error(tmp_path: Path) -> None:
    result = flag("get", STREAMING_FLAG, "--file", str(tmp_path / "f"), "--configmap", "x")
    assert result.exit_code == 2
    assert "not both" in result.output


# ConfigMap.


def test_cli_configmap_set_then_get(fake_kube: FakeKube) -> None:
    put_on = cluster(fake_kube, "set", STREAMING_FLAG, "on", "--configmap", CONFIGMAP)
    assert put_on.exit_code == 0, put_on.output
    assert describe(configmap_flag(fake_kube)).label == "on"
    result = cluster(fake_kube, "set", STREAMING_FLAG, "off", "--configmap", CONFIGMAP)
    assert result.exit_code == 0, result.output
    assert configmap_flag(fake_kube)["$schema"] == FLAG_SCHEMA_URL
    result = cluster(fake_kube, "get", STREAMING_FLAG, "--configmap", CONFIGMAP)
    assert result.stdout.splitlines()[0] == "video-streaming: off"


def test_cli_configmap_set_retries_a_conflict(fake_kube: FakeKube) -> None:
    fake_kube.state.conflicts_to_inject = 1
    result = cluster(fake_kube, "set", STREAMING_FLAG, "on", "--configmap", CONFIGMAP)
    assert result.exit_code == 0, result.output
    assert describe(configmap_flag(fake_kube)).label == "on"


def test_cli_configmap_not_found_fails(fake_kube: FakeKube) -> None:
    result = cluster(fake_kube, "set", STREAMING_FLAG, "off", "--configmap", "nope")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: configmap default/nope key flags.json: Kubernetes API error 404 Not Found: "
        'configmaps "nope" not found\n'
    )


def test_cli_api_unreachable_fails(fake_kube: FakeKube) -> None:
    fake_kube.stop()
    result = cluster(fake_kube, "get", STREAMING_FLAG, "--configmap", CONFIGMAP)
    assert result.exit_code == 1
    assert "cannot reach the Kubernetes API" in result.stderr


async def test_cli_configmap_set_reaches_running_gateway(
    fake_kube: FakeKube, kube_api: ApiClient, kube_service: FlagService
) -> None:
    await apoll_until(lambda: fake_kube.count(WATCH) == 1, WAIT_S, what="watch open")
    result = cluster(fake_kube, "set", STREAMING_FLAG, "on", "--configmap", CONFIGMAP)
    assert result.exit_code == 0, result.output
    assert await wait_for_value(kube_service, True, ctx()) < FLIP_DEADLINE_S


# FeatureFlag custom resource.


def test_cli_featureflag_set_off_removes_targeting(fake_kube: FakeKube) -> None:
    spec = {**default_document()["flags"][STREAMING_FLAG], "targeting": ROLLOUT}
    fake_kube.put_featureflag(NAMESPACE, "framegate", {STREAMING_FLAG: spec, "other": {"x": 1}})
    result = cluster(fake_kube, "set", STREAMING_FLAG, "off", "--featureflag", "framegate")
    assert result.exit_code == 0, result.output
    flags = fake_kube.featureflag(NAMESPACE, "framegate")["spec"]["flagSpec"]["flags"]
    assert flags[STREAMING_FLAG] == {
        "state": "ENABLED",
        "variants": {"on": True, "off": False},
        "defaultVariant": "off",
    }
    assert flags["other"] == {"x": 1}
    result = cluster(fake_kube, "get", STREAMING_FLAG, "--featureflag", "framegate")
    assert result.stdout.splitlines()[0] == "video-streaming: off"


def test_cli_featureflag_not_found_fails(fake_kube: FakeKube) -> None:
    result = cluster(fake_kube, "get", STREAMING_FLAG, "--featureflag", "nope")
    assert result.exit_code == 1
    assert "Kubernetes API error 404" in result.stderr
