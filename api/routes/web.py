"""The browser client: `GET /` and its static files (`api/web/`), served by the API itself.

Mounted wherever streaming is. Files are read through Starlette's FileResponse/StaticFiles (file
system calls off the event loop). The page's Content-Security-Policy allows its own origin only,
so the browser itself refuses any request to anything else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
STATIC_PATH = "/static"

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "connect-src 'self'",  # fetch and the same-origin ws:/wss: stream
        "img-src 'self' data: blob:",
        "media-src 'self' blob: mediastream:",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class _Revalidated(StaticFiles):
    """Static files the browser revalidates (ETag) on every load, so an upgrade is seen at once."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        return response


router = APIRouter(tags=["web"])
router.mount(STATIC_PATH, _Revalidated(directory=WEB_DIR), name="web-static")


@router.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
async def index() -> FileResponse:
    return FileResponse(WEB_DIR / "index.html", media_type="text/html", headers=PAGE_HEADERS)
