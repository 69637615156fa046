"""The API's documentation, Swagger UI at /docs and ReDoc at /redoc, drawn from npm-installed assets."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)
TITLE = "nearcare API"


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    page = get_swagger_ui_html(
        openapi_url=request.app.openapi_url,
        title=TITLE,
        swagger_js_url="/vendor/swagger-ui/swagger-ui-bundle.js",
        swagger_css_url="/vendor/swagger-ui/swagger-ui.css",
        swagger_favicon_url="/static/nearcare-mark.svg",
        swagger_ui_parameters={"validatorUrl": None},
    )  # no call to swagger.io
    # FastAPI's page starts Swagger UI with one inline script: give it this request's CSP nonce.
    html = bytes(page.body).decode().replace("<script>", f'<script nonce="{request.state.csp_nonce}">')
    return HTMLResponse(html)


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    return get_redoc_html(
        openapi_url=request.app.openapi_url,
        title=TITLE,
        redoc_js_url="/vendor/redoc/redoc.standalone.js",
        redoc_favicon_url="/static/nearcare-mark.svg",
        with_google_fonts=False,
    )
