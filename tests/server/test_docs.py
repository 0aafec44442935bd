"""``/docs`` and ``/redoc`` work offline: every asset they load comes from the server."""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

import httpx
import pytest

_CONTENT_TYPES = {
    ".js": "javascript",
    ".css": "text/css",
    ".png": "image/png",
}


def _asset_urls(html: str) -> list[str]:
    """Every URL the page loads: scripts, style sheets, icons (and anything else linked)."""
    return re.findall(r"""(?:src|href)\s*=\s*['"]([^'"]+)['"]|url:\s*['"]([^'"]+)['"]""", html)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_load_only_same_origin_assets(live_server: Any, page: str) -> None:
    response = httpx.get(f"{live_server.url}{page}", timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "cdn" not in html.lower()
    assert "fonts.googleapis" not in html
    urls = [a or b for a, b in _asset_urls(html)]
    assets = [u for u in urls if u != "/openapi.json"]
    assert assets, html
    for url in urls:
        assert re.match(r"/(?!/)", url), f"{url} is not same-origin"
    for url in assets:
        answer = httpx.get(f"{live_server.url}{url}", timeout=30)
        assert answer.status_code == 200, url
        suffix = url[url.rindex(".") :]
        assert _CONTENT_TYPES[suffix] in answer.headers["content-type"], url
        assert len(answer.content) > 1000, url
    assert "/openapi.json" in html


def test_the_docs_assets_are_not_in_the_openapi_document(live_server: Any) -> None:
    paths = httpx.get(f"{live_server.url}/openapi.json", timeout=30).json()["paths"]
    assert not [p for p in paths if p.startswith(("/docs", "/redoc"))]


@pytest.mark.skipif(not shutil.which("chromium"), reason="chromium is not installed")
def test_the_docs_page_renders_the_operations_offline(live_server: Any) -> None:
    done = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=15000",
         "--dump-dom", f"{live_server.url}/docs"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "opblock" in done.stdout  # Swagger UI rendered the operation list
    assert "/api/v1/" in done.stdout
