"""receive_video on a tiny Starlette app: the `file` part is streamed to disk under its stem and
suffix; bad input is refused with its status and a short detail, and leaves no file behind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from api.jobs.upload import MULTIPART_OVERHEAD, UploadError, receive_video

MAX_BYTES = 1000
LIMIT = "upload exceeds the limit of 0.000953674 MB"
BOUNDARY = "framegate-test-boundary"
VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 2


@pytest.fixture
def uploads(tmp_path: Path) -> Path:
    return tmp_path / "uploads"


@pytest.fixture
def client(uploads: Path) -> Iterator[TestClient]:
    async def upload(request: Request) -> JSONResponse:
        try:
            path = await receive_video(request, uploads, "job-1", MAX_BYTES)
        except UploadError as exc:
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
        return JSONResponse({"name": path.name})

    with TestClient(Starlette(routes=[Route("/upload", upload, methods=["POST"])])) as made:
        yield made


def files_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def multipart(*parts: tuple[str, str | None, bytes], closed: bool = True) -> bytes:
    """A multipart/form-data body by hand: (field name, filename or None, content) parts."""
    body = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        body += content + b"\r\n"
    return body + (f"--{BOUNDARY}--\r\n".encode() if closed else b"")


def post(client: TestClient, body: bytes | Iterator[bytes]) -> tuple[int, dict]:
    headers = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
    response = client.post("/upload", content=body, headers=headers)
    return response.status_code, response.json()


def test_the_file_part_is_written_under_the_stem_with_its_suffix(
    client: TestClient, uploads: Path
) -> None:
    body = multipart(("note", None, b"ignored"), ("file", "Holiday.MOV", VIDEO))

    assert post(client, body) == (200, {"name": "job-1.mov"})
    assert (uploads / "job-1.mov").read_bytes() == VIDEO
    assert files_in(uploads) == ["job-1.mov"]  # other fields are read past, never kept


def test_an_unsupported_file_type_is_400(client: TestClient, uploads: Path) -> None:
    status, body = post(client, multipart(("file", "notes.txt", b"hello")))

    assert status == 400
    assert body == {"detail": "unsupported file type '.txt'; expected .avi, .mov, .mp4"}
    assert files_in(uploads) == []


def test_a_file_part_over_the_limit_is_413_and_removed(client: TestClient, uploads: Path) -> None:
    # The body is well within the Content-Length allowance: the part's own size decides.
    status, body = post(client, multipart(("file", "big.mp4", b"x" * (MAX_BYTES + 1))))

    assert (status, body) == (413, {"detail": LIMIT})
    assert files_in(uploads) == []


def test_a_file_part_exactly_at_the_limit_is_accepted(client: TestClient, uploads: Path) -> None:
    assert post(client, multipart(("file", "edge.mp4", b"x" * MAX_BYTES)))[0] == 200
    assert (uploads / "job-1.mp4").stat().st_size == MAX_BYTES


def test_a_declared_length_over_the_limit_is_413_before_anything_is_read(
    client: TestClient, uploads: Path
) -> None:
    huge = multipart(("note", None, b"n" * (MAX_BYTES + MULTIPART_OVERHEAD)))

    assert post(client, huge) == (413, {"detail": LIMIT})
    assert not uploads.exists()  # refused before even the directory was made


def test_a_chunked_body_over_the_allowance_is_413_whatever_the_parts(
    client: TestClient, uploads: Path
) -> None:
    # No Content-Length: the running byte count stops it, here in a field that is not the file.
    body = multipart(("file", "a.mp4", b"v"), ("note", None, b"n" * (2 * MULTIPART_OVERHEAD)))
    chunks = iter([body[i : i + 4096] for i in range(0, len(body), 4096)])

    assert post(client, chunks) == (413, {"detail": LIMIT})
    assert files_in(uploads) == []  # the file part it had already written is gone


def test_an_empty_file_is_400_and_removed(client: TestClient, uploads: Path) -> None:
    assert post(client, multipart(("file", "empty.mp4", b""))) == (
        400,
        {"detail": "uploaded file is empty"},
    )
    assert files_in(uploads) == []


def test_a_body_cut_off_inside_the_file_is_400_and_removed(
    client: TestClient, uploads: Path
) -> None:
    cut = multipart(("file", "cut.mp4", VIDEO), closed=False)[: -len(b"\r\n") - 10]

    status, body = post(client, cut)

    assert status == 400 and body["detail"].startswith("malformed multipart body")
    assert files_in(uploads) == []


def test_no_file_part_is_422(client: TestClient) -> None:
    assert post(client, multipart(("video", None, VIDEO))) == (
        422,
        {"detail": "multipart field 'file' (a video file) is required"},
    )


@pytest.mark.parametrize(
    "content_type", ["application/json", "multipart/form-data", "text/plain; boundary=x"]
)
def test_a_body_that_is_not_multipart_with_a_boundary_is_422(
    client: TestClient, uploads: Path, content_type: str
) -> None:
    response = client.post("/upload", content=b"{}", headers={"content-type": content_type})

    assert response.status_code == 422
    assert response.json() == {"detail": "expected a multipart/form-data body with a 'file' field"}
    assert not uploads.exists()


def test_an_upload_never_deletes_a_file_it_did_not_create(
    client: TestClient, uploads: Path
) -> None:
    # Stems are fresh uuids in the product; if one ever named an existing file, the refused
    # upload must leave that file alone.
    uploads.mkdir(parents=True)
    (uploads / "job-1.mp4").write_bytes(b"someone else's video")
    status, _ = post(client, multipart(("file", "clip.mp4", VIDEO)))
    assert status >= 400
    assert (uploads / "job-1.mp4").read_bytes() == b"someone else's video"
