"""``/docs`` (Swagger UI) and ``/openapi.json`` served from this host, optionally behind login.

FastAPI's own ``/docs`` page loads Swagger UI from a CDN and starts it with an inline
script: it fails offline (the platform's promise: everything runs on the centre's own
network) and an inline script would need ``'unsafe-inline'`` in the CSP. Here the page
loads Swagger UI's files from the ``fastapi-offline`` package (Swagger UI 5, Apache-2.0,
shipped on PyPI; we use only its static files) at ``/docs/assets`` and starts it from
``/static/swagger-init.js``. ReDoc (also CDN-only in FastAPI) is not served.

``api.docs_public: false`` puts both the page and the OpenAPI document behind login, like
every other route (``api.access.authorise``): a session cookie or a Bearer token.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from api import access

#: swagger-ui-bundle.js and swagger-ui.css, as the fastapi-offline wheel ships them.
ASSETS = Path(fastapi_offline.__file__).parent / "static"

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} - API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/static/swagger-init.js"></script>
</body></html>
"""


def install(app: FastAPI, public: bool) -> None:
    """Add ``/docs``, its assets and ``/openapi.json``; create the app with ``docs_url=None,
    redoc_url=None, openapi_url=None`` so FastAPI does not add its CDN page and public document."""
    marks = access.public() if public else {}
    app.mount("/docs/assets", StaticFiles(directory=ASSETS), name="docs-assets")

    @app.get("/openapi.json", include_in_schema=False, **marks)
    async def openapi_document(request: Request) -> JSONResponse:
        return JSONResponse(request.app.openapi())

    @app.get("/docs", include_in_schema=False, **marks)
    async def swagger_ui(request: Request) -> HTMLResponse:
        return HTMLResponse(PAGE.format(title=request.app.title), headers={"Cache-Control": "no-store"})
