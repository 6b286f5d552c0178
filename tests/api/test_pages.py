"""The pages (`/`, `/docs`, `/redoc`) in process: open without a key, local assets only, a strict CSP.

The browser-level checks (what a page actually requests, renders and logs) are in
tests/e2e/test_dashboard_browser.py; these are the fast structural ones, on both stores.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from fastapi.testclient import TestClient

from api.routes.pages import STATIC_DIR
from api.settings import Settings
from storage.base import EventStore

PAGES = ("/", "/docs", "/redoc")
READ_KEY = "pages-read-key-0123456789"
VENDOR = STATIC_DIR / "vendor"


class _Assets(HTMLParser):
    """Every URL a page loads (script src, link href, img src) and the text of its inline scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline: list[str] = []
        self._in_inline_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        url = found.get("src") if tag in ("script", "img") else found.get("href") if tag == "link" else None
        if url is not None:
            self.urls.append(url)
        self._in_inline_script = tag == "script" and "src" not in found

    def handle_endtag(self, tag: str) -> None:
        self._in_inline_script = False

    def handle_data(self, data: str) -> None:
        if self._in_inline_script:
            self.inline.append(data)


def assets(html: str) -> _Assets:
    parser = _Assets()
    parser.feed(html)
    return parser


def directives(csp: str) -> dict[str, list[str]]:
    return {d.split()[0]: d.split()[1:] for d in (p.strip() for p in csp.split(";")) if d}


@pytest.fixture
def keyed_client(store: EventStore, tmp_path: Path) -> Iterator[TestClient]:
    from api.app import create_app

    settings = Settings(
        store_url=f"parquet://{tmp_path / 'unused-store'}",
        spool_dir=tmp_path / "spool",
        archive_url=str(tmp_path / "archive"),
        api_keys=f"{READ_KEY}:read",
    )
    with TestClient(create_app(settings, store=store)) as client:
        yield client


def test_pages_and_assets_load_without_a_key_while_the_data_needs_one(keyed_client: TestClient) -> None:
    for page in PAGES:
        resp = keyed_client.get(page)
        assert resp.status_code == 200, (page, resp.text)
        assert resp.headers["content-type"].startswith("text/html")
        for url in assets(resp.text).urls:
            asset = keyed_client.get(urljoin(f"http://testserver{page}", url))
            assert asset.status_code == 200, (page, url)
    assert keyed_client.get("/api/stats").status_code == 401
    assert keyed_client.get("/api/stats", headers={"X-API-Key": READ_KEY}).status_code == 200


def test_pages_load_only_local_assets_of_the_right_type(client: TestClient) -> None:
    kinds = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".png": "image/png"}
    seen = set()
    for page in PAGES:
        found = assets(client.get(page).text)
        assert found.urls, page
        for url in found.urls:
            parts = urlsplit(url)
            assert not parts.scheme, f"{page} loads {url} from elsewhere"
            assert not parts.netloc, f"{page} loads {url} from elsewhere"
            path = urlsplit(urljoin(f"http://testserver{page}", url)).path
            assert path.startswith("/static/"), (page, url)
            resp = client.get(path)
            assert resp.headers["content-type"].startswith(kinds[Path(path).suffix]), (path, resp.headers)
            seen.add(path)
    assert {
        "/static/vendor/swagger-ui/swagger-ui-bundle.js",
        "/static/vendor/swagger-ui/swagger-ui.css",
        "/static/vendor/redoc/redoc.standalone.js",
        "/static/vendor/uplot/uPlot.iife.min.js",
        "/static/dashboard.js",
    } <= seen


def test_each_page_forbids_remote_content_and_unlisted_inline_scripts(client: TestClient) -> None:
    for page in PAGES:
        resp = client.get(page)
        policy = directives(resp.headers["content-security-policy"])
        assert policy["default-src"] == ["'self'"]
        for name in ("script-src", "style-src", "img-src", "connect-src", "worker-src"):
            sources = policy[name]
            assert "*" not in sources, (page, name)
            assert not [s for s in sources if re.match(r"https?:", s)], (page, name)
        scripts = policy["script-src"]
        assert "'unsafe-inline'" not in scripts, page
        assert "'unsafe-eval'" not in scripts, page
        inline = [s for s in assets(resp.text).inline if s.strip()]
        allowed = {
            f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'" for s in inline
        }
        assert set(scripts) == {"'self'"} | allowed, page
        assert policy["frame-ancestors"] == ["'none'"]
        assert resp.headers["x-content-type-options"] == "nosniff"
    dashboard = directives(client.get("/").headers["content-security-policy"])
    assert dashboard["script-src"] == ["'self'"]
    assert dashboard["style-src"] == ["'self'"]
    assert len(assets(client.get("/docs").text).inline) == 1  # Swagger UI's start, allowed by its hash


def test_pages_are_not_part_of_the_api_schema(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert not {"/", "/docs", "/redoc"} & set(paths)
    assert not [p for p in paths if p.startswith("/static")]


def test_dashboard_scripts_never_write_markup() -> None:
    """Values from add-ins are rendered with textContent/setAttribute; no API to parse HTML is used."""
    sources = {p.name: p.read_text(encoding="utf-8") for p in STATIC_DIR.glob("*.js")}
    assert {"dashboard.js", "api.js", "tail.js"} <= set(sources)
    for name, text in sources.items():
        found = re.findall(
            r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function", text
        )
        assert not found, (name, found)
        assert "X-API-Key" not in text or name == "api.js", name  # one place sends the key


def test_every_vendored_file_is_recorded_with_its_checksum_and_licence() -> None:
    readme = (VENDOR / "README.md").read_text(encoding="utf-8")
    recorded = dict(re.findall(r"`([\w./-]+)`\s*\|\s*`([0-9a-f]{64})`", readme))
    files = {
        p.relative_to(VENDOR).as_posix(): p
        for p in VENDOR.rglob("*")
        if p.is_file() and p.name != "README.md"
    }
    assert set(recorded) == set(files)
    for name, path in files.items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == recorded[name], name
    for package in {p.parent for p in files.values()}:
        assert (package / "LICENSE").is_file(), package
