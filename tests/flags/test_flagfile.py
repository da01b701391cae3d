from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from api.core.config import Settings
from api.flags.flagfile import (
    FlagFileError,
    default_document,
    describe,
    flag_file_path,
    read_document,
    set_streaming,
    with_streaming,
    write_default,
    write_document,
)
from api.flags.keys import FLAG_SCHEMA_URL, STREAMING_FLAG

ROLLOUT = {"fractional": [["on", 50], ["off", 50]]}


def flag_of(path: Path) -> dict:
    return json.loads(path.read_text())["flags"][STREAMING_FLAG]


def test_default_document_is_the_documented_flagd_json() -> None:
    assert default_document() == {
        "$schema": FLAG_SCHEMA_URL,
        "flags": {
            STREAMING_FLAG: {
                "state": "ENABLED",
                "variants": {"on": True, "off": False},
                "defaultVariant": "on",
            }
        },
    }


def test_write_default_creates_file_and_parents(tmp_path: Path) -> None:
    path = tmp_path / "data" / "flags.json"
    assert write_default(path) is True
    assert read_document(path) == default_document()


def test_write_default_keeps_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    set_streaming(path, on=False)
    assert write_default(path) is False
    assert describe(read_document(path)).label == "off"


def test_set_streaming_replaces_atomically(tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    write_default(path)
    before = path.stat().st_ino
    set_streaming(path, on=False)
    assert path.stat().st_ino != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flags.json"]


def test_set_streaming_off_removes_targeting(tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    document = default_document()
    document["flags"][STREAMING_FLAG]["targeting"] = ROLLOUT
    write_document(path, document)
    result = set_streaming(path, on=False)
    assert "targeting" not in flag_of(path)
    assert (result.label, result.has_targeting) == ("off", False)


def test_set_streaming_on_keeps_targeting(tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    document = default_document(on=False)
    document["flags"][STREAMING_FLAG]["targeting"] = ROLLOUT
    write_document(path, document)
    assert set_streaming(path, on=True).has_targeting
    assert flag_of(path)["targeting"] == ROLLOUT


def test_set_streaming_enables_a_disabled_flag(tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    document = default_document(on=False)
    document["flags"][STREAMING_FLAG]["state"] = "DISABLED"
    write_document(path, document)
    assert describe(read_document(path)).label == "disabled"
    set_streaming(path, on=True)
    assert flag_of(path)["state"] == "ENABLED"
    assert describe(read_document(path)).label == "on"


def test_set_streaming_keeps_other_flags_and_variant_names(tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    other = {"state": "ENABLED", "variants": {"a": "x"}, "defaultVariant": "a"}
    mine = {"state": "ENABLED", "variants": {"yes": True, "no": False}, "defaultVariant": "yes"}
    write_document(path, {"flags": {"other": other, STREAMING_FLAG: mine}})
    set_streaming(path, on=False)
    flags = json.loads(path.read_text())["flags"]
    assert flags["other"] == other
    assert flags[STREAMING_FLAG]["defaultVariant"] == "no"


def test_set_streaming_creates_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "new" / "flags.json"
    assert set_streaming(path, on=False).label == "off"
    assert flag_of(path)["defaultVariant"] == "off"


def test_set_streaming_refuses_malformed_file(tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    path.write_text("{not json")
    with pytest.raises(FlagFileError, match="malformed JSON"):
        set_streaming(path, on=False)
    assert path.read_text() == "{not json"


def test_non_boolean_variants_are_rejected() -> None:
    document = {"flags": {STREAMING_FLAG: {"state": "ENABLED", "variants": {"on": "yes"}}}}
    with pytest.raises(FlagFileError, match="variants must be booleans"):
        with_streaming(document, on=True)


def test_read_document_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FlagFileError, match="flag file not found"):
        read_document(tmp_path / "absent.json")


def test_read_document_without_flags_object(tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    path.write_text("[]")
    with pytest.raises(FlagFileError, match="not a flagd document"):
        read_document(path)


def test_write_document_keeps_symlink_and_mode(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    write_default(real)
    os.chmod(real, 0o640)
    link = tmp_path / "flags.json"
    link.symlink_to(real)
    set_streaming(link, on=False)
    assert link.is_symlink()
    assert (real.stat().st_mode & 0o777) == 0o640
    assert describe(read_document(real)).label == "off"


def test_flag_file_path_defaults_under_data_dir(tmp_path: Path) -> None:
    assert flag_file_path(Settings(data_dir=tmp_path)) == tmp_path / "flags.json"
    explicit = tmp_path / "x.json"
    assert flag_file_path(Settings(flagd_offline_flag_source_path=explicit)) == explicit
