"""Streaming a multipart video upload straight to a file, stopping at the size limit.

Starlette's form parser spools the whole body before a handler runs; here the body is parsed as it
arrives (python-multipart, in a thread together with the disk writes) and the request is refused
as soon as the file part passes the limit, so an oversize upload never fills memory or disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks  # defined for type checkers only

FILE_FIELD = "file"
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".avi"})
MULTIPART_OVERHEAD = 64 * 1024  # boundaries, part headers and small fields around the file


class UploadError(Exception):
    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail


def video_suffix(filename: str) -> str:
    suffix = Path(filename).suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        allowed = ", ".join(sorted(VIDEO_SUFFIXES))
        raise UploadError(400, f"unsupported file type {suffix or '(none)'!r}; expected {allowed}")
    return suffix


@dataclass
class _Receiver:
    """python-multipart callbacks: the first `file` part with a filename goes to disk."""

    directory: Path
    stem: str
    max_bytes: int
    path: Path | None = None
    size: int = 0
    _out: BinaryIO | None = None
    _headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    _name: bytes = b""
    _value: bytes = b""
    in_file: bool = False

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def _part_begin(self) -> None:
        self._headers, self.in_file = [], False

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._name += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers.append((self._name.lower(), self._value))
        self._name = self._value = b""

    def _headers_finished(self) -> None:
        disposition = dict(self._headers).get(b"content-disposition", b"")
        _, options = parse_options_header(disposition)
        name = options.get(b"name", b"").decode("latin-1")
        filename = options.get(b"filename")
        if name != FILE_FIELD or filename is None or self.path is not None:
            return  # other fields are read past, never kept
        suffix = video_suffix(filename.decode("utf-8", "replace"))
        path = self.directory / f"{self.stem}{suffix}"
        self._out = path.open("xb")
        self.path = (
            path  # only once it is ours: discard() must never delete a file we did not create
        )
        self.in_file = True

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if not self.in_file or self._out is None:
            return
        self.size += end - start
        if self.size > self.max_bytes:
            raise UploadError(413, f"upload exceeds the limit of {_mb(self.max_bytes)}")
        self._out.write(data[start:end])

    def _part_end(self) -> None:
        if self.in_file and self._out is not None:
            self._out.flush()
            os.fsync(self._out.fileno())
            self._out.close()
            self._out = None
        self.in_file = False

    def discard(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None
        if self.path is not None:
            self.path.unlink(missing_ok=True)
            self.path = None


def _mb(size: int) -> str:
    return f"{size / 2**20:g} MB"


async def receive_video(request: Request, directory: Path, stem: str, max_bytes: int) -> Path:
    """Write the request's `file` part to `<directory>/<stem><suffix>` and return its path.

    Raises UploadError: 400 (wrong type, empty, malformed), 413 (too large), 422 (no file part).
    The file is removed on every failure.
    """
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise UploadError(422, "expected a multipart/form-data body with a 'file' field")
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > max_bytes + MULTIPART_OVERHEAD:
        raise UploadError(413, f"upload exceeds the limit of {_mb(max_bytes)}")
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    receiver = _Receiver(directory, stem, max_bytes)
    parser = MultipartParser(boundary, receiver.callbacks())
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > max_bytes + MULTIPART_OVERHEAD:
                raise UploadError(413, f"upload exceeds the limit of {_mb(max_bytes)}")
            if chunk:
                await asyncio.to_thread(parser.write, chunk)
        await asyncio.to_thread(parser.finalize)
        if receiver.path is None:
            raise UploadError(422, "multipart field 'file' (a video file) is required")
        if receiver.size == 0:
            raise UploadError(400, "uploaded file is empty")
        if receiver.in_file:
            raise UploadError(400, "malformed multipart body: the file part is not terminated")
    except ClientDisconnect as exc:
        await asyncio.to_thread(receiver.discard)
        raise UploadError(400, "client disconnected during the upload") from exc
    except UploadError:
        await asyncio.to_thread(receiver.discard)
        raise
    except Exception as exc:  # python-multipart's parse errors
        await asyncio.to_thread(receiver.discard)
        raise UploadError(400, "malformed multipart body") from exc
    except BaseException:
        with contextlib.suppress(OSError):
            receiver.discard()
        raise
    return receiver.path
