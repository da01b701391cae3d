"""flagd JSON documents holding `video-streaming`: read, describe, edit, write atomically.

The same document lives in a local file (FILE provider, `framegate up`), in a ConfigMap key
(`kubernetes` provider, mounted file) or, flag by flag, in an OpenFeature Operator `FeatureFlag`.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from api.core.config import Settings
from api.flags.keys import FLAG_SCHEMA_URL, STREAMING_FLAG

STATE_ENABLED = "ENABLED"
STATE_DISABLED = "DISABLED"
ON_VARIANT = "on"
OFF_VARIANT = "off"
DEFAULT_FILE_NAME = "flags.json"
NEW_FILE_MODE = 0o644

FlagDocument = dict[str, Any]


class FlagFileError(Exception):
    """A flag file or document that cannot be used; the message names it and the problem."""


@dataclass(frozen=True, slots=True)
class StreamingFlag:
    """What a document says about `video-streaming`, without an evaluation context."""

    state: str | None  # None: the flag is absent
    default_variant: str | None
    value: bool | None  # the default variant's value; None when it has none
    has_targeting: bool

    @property
    def label(self) -> str:
        if self.state is None:
            return "absent"
        if self.state == STATE_DISABLED:
            return "disabled"
        if self.value is None:
            return "no default"
        return ON_VARIANT if self.value else OFF_VARIANT


def flag_file_path(settings: Settings) -> Path:
    """FLAGD_OFFLINE_FLAG_SOURCE_PATH, else `<data dir>/flags.json` (what `framegate up` writes)."""
    return settings.flagd_offline_flag_source_path or settings.data_dir / DEFAULT_FILE_NAME


def default_document(on: bool = True) -> FlagDocument:
    return {"$schema": FLAG_SCHEMA_URL, "flags": {STREAMING_FLAG: streaming_flag_spec(None, on)}}


def parse_document(text: str | bytes, source: str) -> FlagDocument:
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise FlagFileError(f"{source}: malformed JSON: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("flags"), dict):
        raise FlagFileError(f"{source}: not a flagd document (no 'flags' object)")
    return document


def dump_document(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2) + "\n"


def read_document(path: Path) -> FlagDocument:
    try:
        text = path.read_bytes()
    except FileNotFoundError as exc:
        raise FlagFileError(f"flag file not found: {path}") from exc
    except OSError as exc:
        raise FlagFileError(f"cannot read flag file {path}: {exc.strerror}") from exc
    return parse_document(text, str(path))


def write_document(path: Path, document: Mapping[str, Any]) -> None:
    """Replace `path` atomically: temp file in the same directory, fsync, `os.replace`.

    A reader sees the old or the new document, never a partial one; the new file is a new inode.
    A symlink is followed, so the file it points to is replaced and the link kept.
    """
    target = Path(os.path.realpath(path))
    mode = _mode_of(target)
    fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(dump_document(document))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_name, mode)
        os.replace(temp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    _fsync_directory(target.parent)


def write_default(path: Path) -> bool:
    """Create `path` (streaming on) unless it exists; True when written. Never overwrites, so a
    flag an operator turned off before `framegate up` stays off."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    write_document(path, default_document(on=True))
    return True


def set_streaming(path: Path, on: bool) -> StreamingFlag:
    """Turn `video-streaming` on or off in the file at `path` (created when missing).

    Other flags are kept. A malformed file is an error, not overwritten.
    """
    try:
        document = read_document(path)
    except FlagFileError:
        if path.exists():
            raise
        path.parent.mkdir(parents=True, exist_ok=True)
        document = default_document(on)
    updated = with_streaming(document, on)
    write_document(path, updated)
    return describe(updated)


def with_streaming(document: Mapping[str, Any], on: bool) -> FlagDocument:
    """A copy of `document` with `video-streaming` on or off (see `streaming_flag_spec`)."""
    updated = copy.deepcopy(dict(document))
    flags = updated.setdefault("flags", {})
    if not isinstance(flags, dict):
        raise FlagFileError("not a flagd document (no 'flags' object)")
    flags[STREAMING_FLAG] = streaming_flag_spec(flags.get(STREAMING_FLAG), on)
    return updated


def streaming_flag_spec(flag: Mapping[str, Any] | None, on: bool) -> dict[str, Any]:
    """The flag spec turned on or off: state ENABLED (DISABLED would make every evaluation return
    the code default), boolean variants, `defaultVariant` pointing at the wanted value. Turning
    off drops `targeting`: a matching rule would override `defaultVariant`. Turning on keeps it,
    so a percentage rollout or a pipeline rule stays in force."""
    spec = copy.deepcopy(dict(flag)) if isinstance(flag, Mapping) else {}
    variants = spec.get("variants")
    variants = dict(variants) if isinstance(variants, Mapping) else {}
    bad = sorted(name for name, value in variants.items() if not isinstance(value, bool))
    if bad:
        raise FlagFileError(f"{STREAMING_FLAG}: variants must be booleans, not {', '.join(bad)}")
    on_name = _variant_for(variants, True, ON_VARIANT)
    off_name = _variant_for(variants, False, OFF_VARIANT)
    spec["state"] = STATE_ENABLED
    spec["variants"] = variants
    spec["defaultVariant"] = on_name if on else off_name
    if not on:
        spec.pop("targeting", None)
    return spec


def describe(document: Mapping[str, Any]) -> StreamingFlag:
    flags = document.get("flags")
    flag = flags.get(STREAMING_FLAG) if isinstance(flags, Mapping) else None
    if not isinstance(flag, Mapping):
        return StreamingFlag(state=None, default_variant=None, value=None, has_targeting=False)
    variants = flag.get("variants")
    variants = variants if isinstance(variants, Mapping) else {}
    default_variant = flag.get("defaultVariant")
    if isinstance(default_variant, bool):  # flagd accepts `true`/`false` as variant names
        default_variant = str(default_variant).lower()
    value = variants.get(default_variant) if isinstance(default_variant, str) else None
    return StreamingFlag(
        state=str(flag.get("state")),
        default_variant=default_variant if isinstance(default_variant, str) else None,
        value=value if isinstance(value, bool) else None,
        has_targeting=bool(flag.get("targeting")),
    )


def _variant_for(variants: dict[str, Any], value: bool, preferred: str) -> str:
    if variants.get(preferred) is value:
        return preferred
    for name, candidate in variants.items():
        if candidate is value:
            return name
    if preferred in variants:
        raise FlagFileError(f"{STREAMING_FLAG}: variant {preferred!r} must be {value}")
    variants[preferred] = value
    return preferred


def _mode_of(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        return NEW_FILE_MODE


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
