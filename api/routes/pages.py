"""Pages for people: the dashboard at `/`, Swagger UI at `/docs` and ReDoc at `/redoc`, all offline.

Why vendored: users' networks have no internet, and FastAPI's default docs pages load their
scripts from a CDN, which there gives a blank page. Every asset is a file under api/static/
(names, versions and licences in api/static/vendor/README.md) served by this app at /static, and
each page carries a Content-Security-Policy whose `default-src 'self'` forbids scripts, styles,
images and connections from anywhere else; the browser tests list every request a page makes.

The HTML holds no data, so it needs no key. The dashboard's data calls go to the public API with
the user's key (sent as `X-API-Key`, kept in the tab's sessionStorage), under the same scope guard
as every other client. The pages stay out of the OpenAPI schema: they are not part of the API.
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import cache
from pathlib import Path
from typing import Final

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["STATIC_DIR", "content_security_policy", "install_pages", "router"]

STATIC_DIR: Final = Path(__file__).resolve().parents[1] / "static"
STATIC_PREFIX: Final = "/static"
_VENDOR: Final = f"{STATIC_PREFIX}/vendor"
_FAVICON: Final = f"{STATIC_PREFIX}/favicon.svg"
_INLINE_SCRIPT: Final = re.compile(r"<script>(.*?)</script>", re.DOTALL)

router = APIRouter(include_in_schema=False)


def content_security_policy(*, inline_scripts: tuple[str, ...] = (), docs_ui: bool = False) -> str:
    """`default-src 'self'` and nothing remote; inline scripts only by their exact SHA-256.

    `docs_ui`: Swagger UI's and ReDoc's renderers insert `<style>` elements and ReDoc searches in a
    worker made from a blob, so their pages allow inline styles and blob workers; the dashboard
    needs neither.
    """
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'" for s in inline_scripts
    )
    script_src = f"'self' {hashes}".strip()
    style_src = "'self' 'unsafe-inline'" if docs_ui else "'self'"
    worker_src = "'self' blob:" if docs_ui else "'self'"
    return (
        f"default-src 'self'; script-src {script_src}; style-src {style_src}; img-src 'self' data:; "
        f"connect-src 'self'; worker-src {worker_src}; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    )


def _page(html: str, csp: str) -> HTMLResponse:
    return HTMLResponse(
        html,
        headers={
            "Content-Security-Policy": csp,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "X-Frame-Options": "DENY",
            "Cache-Control": "no-cache",
        },
    )


def _docs_page(page: HTMLResponse) -> HTMLResponse:
    """FastAPI's Swagger UI page starts the UI from one inline `<script>`: allow exactly that one by hash."""
    html = bytes(page.body).decode()
    scripts = tuple(_INLINE_SCRIPT.findall(html))
    return _page(html, content_security_policy(inline_scripts=scripts, docs_ui=True))


@cache
def _dashboard_html() -> str:
    return (STATIC_DIR / "index.html").read_text(encoding="utf-8")


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


@router.get("/")
async def dashboard() -> HTMLResponse:
    """The dashboard; its scripts and styles are files under /static (relative URLs, so a path prefix works)."""
    return _page(_dashboard_html(), content_security_policy())


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI from the vendored swagger-ui-dist; no validator badge (it would call a remote service)."""
    root = _root(request)
    page = get_swagger_ui_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=f"{root}{_VENDOR}/swagger-ui/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{_VENDOR}/swagger-ui/swagger-ui.css",
        swagger_favicon_url=f"{root}{_FAVICON}",
        swagger_ui_parameters={"validatorUrl": None},
    )
    return _docs_page(page)


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    """ReDoc from the vendored standalone bundle, without Google Fonts."""
    root = _root(request)
    page = get_redoc_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=f"{root}{_VENDOR}/redoc/redoc.standalone.js",
        redoc_favicon_url=f"{root}{_FAVICON}",
        with_google_fonts=False,
    )
    return _docs_page(page)


def install_pages(app: FastAPI) -> None:
    """Mount the static files and the page routes (create_app builds FastAPI with docs_url=None)."""
    app.mount(STATIC_PREFIX, StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(router)
