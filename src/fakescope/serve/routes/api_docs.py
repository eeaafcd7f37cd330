"""GET /docs: Swagger UI over /openapi.json, with its script and style served from here.

The files come from the installed swagger-ui-bundle-v2 package, so the docs work on a machine
without internet access and the page loads nothing from a third party (its CSP says so). Only
the three files the page needs are served, never the package's demo page.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from swagger_ui_bundle import swagger_ui_path

router = APIRouter(include_in_schema=False)

ASSETS_DIR = Path(str(swagger_ui_path))
ASSETS = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css", "favicon-32x32.png": "image/png"}
# Swagger UI's page starts it with an inline script; everything else must come from this server.
DOCS_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
}


@router.get("/docs")
def docs(request: Request) -> HTMLResponse:
    """The interactive API documentation ("Authorize" takes an API key)."""
    root = request.scope.get("root_path", "").rstrip("/")
    page = get_swagger_ui_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} API",
        swagger_js_url=f"{root}/docs/assets/swagger-ui-bundle.js",
        swagger_css_url=f"{root}/docs/assets/swagger-ui.css",
        swagger_favicon_url=f"{root}/docs/assets/favicon-32x32.png",
        # null: no badge fetched from the public online validator
        swagger_ui_parameters={"validatorUrl": None},
    )
    page.headers.update(DOCS_HEADERS)
    return page


@router.get("/docs/assets/{name}")
def docs_asset(name: str) -> FileResponse:
    """One of Swagger UI's files, from the installed package."""
    if name not in ASSETS:
        raise HTTPException(404, "Not Found")
    return FileResponse(ASSETS_DIR / name, media_type=ASSETS[name], headers={"Cache-Control": "public, max-age=86400"})
