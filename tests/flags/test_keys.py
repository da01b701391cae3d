"""api/flags/keys.py names what the flag files, the Helm chart, the CLI and the docs must agree
on: the flag key, the ConfigMap key the file provider's mounted path ends in, the flagd schema
and the fallback environment variable. Read from the chart's templates as text (rendering is
tests/chart/'s job)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from api.core.config import Settings
from api.flags.cluster import ConfigMapRef
from api.flags.flagfile import default_document
from api.flags.keys import CONFIGMAP_KEY, FLAG_SCHEMA_URL, STREAMING_ENV_VAR, STREAMING_FLAG


@pytest.fixture(scope="module")
def templates(repo_root: Path) -> Path:
    return repo_root / "helm" / "framegate" / "templates"


def test_the_charts_flag_configmap_uses_the_key_schema_and_flag(templates: Path) -> None:
    text = (templates / "configmap-flags.yaml").read_text()
    assert re.search(rf"^  {re.escape(CONFIGMAP_KEY)}: \|$", text, re.MULTILINE), "data key"
    assert f'"$schema" "{FLAG_SCHEMA_URL}"' in text
    assert f'"{STREAMING_FLAG}"' in text


def test_the_file_provider_reads_the_mounted_configmap_key(templates: Path) -> None:
    text = (templates / "gateway-deployment.yaml").read_text()
    path = re.search(r"FLAGD_OFFLINE_FLAG_SOURCE_PATH\n\s+value: (\S+)", text)
    assert path is not None, "the file provider's path is not set in the gateway Deployment"
    assert Path(path.group(1)).name == CONFIGMAP_KEY  # a mounted ConfigMap key is a file


def test_the_openfeature_operator_flag_has_the_flag_key(templates: Path) -> None:
    text = (templates / "openfeature.yaml").read_text()
    assert re.search(rf"^      {re.escape(STREAMING_FLAG)}:$", text, re.MULTILINE)


def test_the_chart_sets_the_fallback_variable_the_settings_read(
    templates: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert f"  {STREAMING_ENV_VAR}: " in (templates / "_helpers.tpl").read_text()
    monkeypatch.setenv(STREAMING_ENV_VAR, "false")
    assert Settings().streaming_enabled is False
    monkeypatch.setenv(STREAMING_ENV_VAR, "true")
    assert Settings().streaming_enabled is True


def test_the_code_writes_and_reads_the_same_names() -> None:
    document = default_document(on=True)
    assert document["$schema"] == FLAG_SCHEMA_URL
    assert list(document["flags"]) == [STREAMING_FLAG]
    assert ConfigMapRef("default", "framegate-flags").key == CONFIGMAP_KEY


def test_the_docs_flip_the_flag_by_its_key(repo_root: Path) -> None:
    texts = [repo_root / "README.md", *sorted((repo_root / "docs").glob("*.md"))]
    named = {
        name
        for path in texts
        for name in re.findall(r"framegate flag (?:get|set) ([\w-]+)", path.read_text())
    }
    assert named == {STREAMING_FLAG}
