"""`GET /` and the static client files (api/routes/web.py), in process: no Triton needed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.core.config import Settings
from api.main import create_app
from api.routes.web import WEB_DIR

IMPORT = re.compile(r"""^import .* from "(\./[\w./-]+)";$""", re.MULTILINE)
ABSOLUTE_URL = re.compile(r"""(?:https?:|wss?:)?//[\w.-]+\.\w+""")


def client(**settings: object) -> TestClient:
    base = {"flag_provider": "env", "triton_url": "127.0.0.1:1"}
    return TestClient(create_app(Settings(**{**base, **settings})))


def test_index_is_the_client_page_with_a_same_origin_policy() -> None:
    response = client().get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert 'data-testid="status"' in response.text
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "connect-src 'self'" in policy


def test_index_answers_head() -> None:
    assert client().head("/").status_code == 200


def test_static_modules_are_served_as_javascript() -> None:
    response = client().get("/static/js/app.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.headers["cache-control"] == "no-cache"


def test_static_path_traversal_is_refused() -> None:
    assert client().get("/static/../main.py").status_code == 404
    assert client().get("/static/%2e%2e/main.py").status_code == 404


def test_unknown_static_file_is_404() -> None:
    assert client().get("/static/js/nothing.js").status_code == 404


@pytest.mark.parametrize("settings", [{"role": "jobs"}, {"streaming_router": False}])
def test_page_is_absent_where_streaming_is_not_mounted(settings: dict) -> None:
    assert client(**settings).get("/").status_code == 404


@pytest.mark.parametrize("module", sorted(WEB_DIR.glob("js/*.js")), ids=lambda p: p.name)
def test_every_relative_import_exists(module: Path) -> None:
    for target in IMPORT.findall(module.read_text()):
        assert (module.parent / target).is_file(), f"{module.name} imports missing {target}"


@pytest.mark.parametrize(
    "asset", sorted(p for p in WEB_DIR.rglob("*") if p.is_file()), ids=lambda p: p.name
)
def test_no_asset_names_another_host(asset: Path) -> None:
    """No CDN, no hard-coded server: every URL the client uses is relative to its origin."""
    assert ABSOLUTE_URL.findall(asset.read_text()) == []
