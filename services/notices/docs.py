"""/docs: Swagger UI served by the front door itself, so it works offline and under a CSP.

FastAPI's own /docs loads Swagger UI from a CDN without integrity checks (and shows a blank
page offline). Its two files come from the pinned `fastapi-swagger` package (package data
only); the page and the script that starts it are ours, with no inline script.
"""

from __future__ import annotations

import functools
from importlib import resources

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.notices import errors
from services.notices.errors import ApiError

# Scripts from the front door only; Swagger UI sets inline styles and data: images itself.
DOCS_CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'")

# name -> (package, folder in it, content type)
_ASSETS = {
    "swagger-ui-bundle.js": ("fastapi_swagger", "resources", "text/javascript; charset=utf-8"),
    "swagger-ui.css": ("fastapi_swagger", "resources", "text/css; charset=utf-8"),
    "swagger-init.js": ("services.notices", "static", "text/javascript; charset=utf-8"),
}

router = APIRouter(include_in_schema=False)


@functools.cache
def _asset(name: str) -> bytes:
    package, folder, _ = _ASSETS[name]
    return (resources.files(package) / folder / name).read_bytes()


@router.get("/docs")
async def docs(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "").rstrip("/")
    page = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{request.app.title} - API</title>
<link rel="stylesheet" href="{root}/docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi="{root}{request.app.openapi_url}"></div>
<script src="{root}/docs/swagger-ui-bundle.js"></script>
<script src="{root}/docs/swagger-init.js"></script>
</body>
</html>
"""
    return HTMLResponse(page, headers={"Content-Security-Policy": DOCS_CSP})


@router.get("/docs/{name}")
async def docs_asset(name: str) -> Response:
    if name not in _ASSETS:
        raise ApiError(errors.NOT_FOUND)
    # The files change only with a new release of the package: a day in caches is safe.
    return Response(_asset(name), media_type=_ASSETS[name][2],
                    headers={"Cache-Control": "public, max-age=86400"})
