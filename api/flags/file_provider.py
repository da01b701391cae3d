"""`file` flag provider: openfeature-provider-flagd's in-process FILE resolver, with a sturdier
file watcher.

flagd 0.5.0's `FileWatcher` polls every `deadline_ms` (FLAGD_DEADLINE_MS, 500 ms; the
FLAGD_OFFLINE_POLL_MS setting is not used by it) and reloads only when the file's mtime is
*greater* than the last one loaded. An atomic replace (`os.replace`, how ConfigMap mounts and
`framegate flag set` write) is seen when the new file is newer, but a replacement whose mtime is
not newer is missed for good: `mv`/`cp -p` of a file prepared earlier, a symlink switched to an
older file, two writes in one timestamp tick. `ContentFileWatcher` below takes its place inside
the same resolver: it re-reads the (small) file on every poll and reloads when the bytes differ,
whatever the inode or mtime. Evaluation stays flagd's own (`FlagdCore`: state, variants,
defaultVariant, json-logic targeting with `fractional`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import yaml
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import ResolverType
from openfeature.contrib.provider.flagd.resolvers import AbstractResolver, InProcessResolver
from openfeature.contrib.provider.flagd.resolvers.process.connector.file_watcher import (
    FileWatcher,
)
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEventDetails
from openfeature.exception import ErrorCode, OpenFeatureError, ProviderNotReadyError

log = logging.getLogger("framegate.flags")

THREAD_NAME = "framegate-flags-file-watcher"
JOIN_TIMEOUT_S = 5.0
YAML_SUFFIXES = frozenset({".yaml", ".yml"})


class _FlagStore(Protocol):
    # flagd's store returns the keys that changed; the watcher has no use for them.
    def update(self, flags_data: dict[str, Any]) -> object: ...


class FlagSourceError(Exception):
    def __init__(self, key: str, message: str, code: ErrorCode) -> None:
        super().__init__(message)
        self.key = key  # the same key twice means the same failure: reported once
        self.code = code


class ContentFileWatcher:
    """A flagd `FlagStateConnector` that reloads the file whenever its bytes change."""

    def __init__(
        self,
        path: Path,
        interval_s: float,
        store: _FlagStore,
        emit_ready: Callable[[ProviderEventDetails, dict], None],
        emit_error: Callable[[ProviderEventDetails], None],
    ) -> None:
        self._path = path
        self._interval_s = interval_s
        self._store = store
        self._emit_ready = emit_ready
        self._emit_error = emit_error
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loaded: str | None = None  # sha256 of the bytes in the flag store
        self._failed: str | None = None  # key of the failure last reported
        self._problem: str | None = None

    @property
    def revision(self) -> str | None:
        return self._loaded

    @property
    def problem(self) -> str | None:
        return self._problem

    def initialize(self, evaluation_context: EvaluationContext) -> None:
        self._stop.clear()
        try:
            self._refresh()
        except FlagSourceError as err:
            self._failed, self._problem = err.key, str(err)
            raise ProviderNotReadyError(str(err)) from err
        finally:
            self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
            self._thread.start()

    def shutdown(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(JOIN_TIMEOUT_S)

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.poll()

    def poll(self) -> None:
        try:
            self._refresh()
        except FlagSourceError as err:
            if err.key != self._failed:
                self._failed, self._problem = err.key, str(err)
                log.warning("%s; keeping the flags last loaded", err)
                self._emit_error(ProviderEventDetails(message=str(err), error_code=err.code))
            return
        if self._failed is not None:
            self._failed = self._problem = None
            log.info("flag file %s usable again", self._path)
            self._emit_ready(ProviderEventDetails(message=f"flag file {self._path} reloaded"), {})

    def _refresh(self) -> None:
        try:
            raw = self._path.read_bytes()
        except FileNotFoundError as exc:
            message = f"flag file not found: {self._path}"
            raise FlagSourceError("missing", message, ErrorCode.GENERAL) from exc
        except OSError as exc:
            message = f"cannot read flag file {self._path}: {exc.strerror}"
            raise FlagSourceError(f"os:{exc.errno}", message, ErrorCode.GENERAL) from exc
        digest = hashlib.sha256(raw).hexdigest()
        if digest == self._loaded:
            return
        try:
            data = self._parse(raw)
            self._store.update(data)
        except (ValueError, TypeError, AttributeError, yaml.YAMLError, OpenFeatureError) as exc:
            message = f"invalid flag file {self._path}: {_reason(exc)}"
            raise FlagSourceError(digest, message, ErrorCode.PARSE_ERROR) from exc
        self._loaded = digest
        log.info("flags loaded from %s (sha256 %s)", self._path, digest[:12])

    def _parse(self, raw: bytes) -> dict[str, Any]:
        data = yaml.safe_load(raw) if self._path.suffix in YAML_SUFFIXES else json.loads(raw)
        if not isinstance(data, dict) or not isinstance(data.get("flags"), dict):
            raise ValueError("not a flagd document (no 'flags' object)")
        return data


class FlagdFileProvider(FlagdProvider):
    """flagd's provider in FILE mode, with `ContentFileWatcher` as its file connector."""

    def __init__(self, path: Path, poll_interval_ms: int | None = None) -> None:
        self._path = path
        # deadline_ms None: flagd reads FLAGD_DEADLINE_MS (default 500), its FILE poll interval.
        super().__init__(
            resolver_type=ResolverType.FILE,
            offline_flag_source_path=str(path),
            deadline_ms=poll_interval_ms,
        )

    @property
    def watcher(self) -> ContentFileWatcher:
        resolver = self.resolver
        assert isinstance(resolver, InProcessResolver)  # setup_resolver() made it so
        connector = resolver.connector
        assert isinstance(connector, ContentFileWatcher)
        return connector

    def revision(self) -> str | None:
        return self.watcher.revision

    def problem(self) -> str | None:
        return self.watcher.problem

    def setup_resolver(self) -> AbstractResolver:
        resolver = super().setup_resolver()
        stock = getattr(resolver, "connector", None)
        if not isinstance(resolver, InProcessResolver) or not isinstance(stock, FileWatcher):
            raise TypeError(
                "openfeature-provider-flagd changed: expected InProcessResolver with a "
                f"FileWatcher, got {type(resolver).__name__} with {type(stock).__name__}"
            )
        resolver.connector = ContentFileWatcher(
            path=self._path,
            interval_s=self.config.deadline_ms / 1000,
            store=stock.flag_store,
            emit_ready=self.emit_provider_ready_with_context,
            emit_error=self.emit_provider_error,
        )
        return resolver


def _reason(exc: Exception) -> str:
    message = getattr(exc, "error_message", None)
    return str(message or exc or type(exc).__name__)
