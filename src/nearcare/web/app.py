"""``nearcare serve``: the store in the browser, built to the NHS.UK design system, with no internet.

Server-rendered pages (NHS.UK templates from ``nhsuk-frontend-jinja``; CSS, JS and images from the
npm package ``nhsuk-frontend``; maps with npm ``leaflet``) and a JSON API under ``/api`` with an
OpenAPI schema at ``/openapi.json``. Every asset is served by the app from ``node_modules``
(installed by ``npm ci``); nothing is fetched from elsewhere. The map draws LSOA polygons and local
authority outlines with no tile layer, so it needs no tile server; ``tiles`` (``--tiles URL``) adds
one, and the Content-Security-Policy then allows images from that host only.

The app is a thin face over ``nearcare.Project``: ``create_app`` only assembles the guard, the assets,
the templates and one router per page (``web/pages/``); each route gets the store through ``Depends``
(``web/site.py``), read-only for the request, and heavy pages are computed once per store version
(``web/state.py``), so other commands can read the store while the server runs.

Safety: inputs are validated (codes by pattern, coordinates to England, numbers to ranges) and
refused with a 4xx that says what is wrong and never repeats the input; queries are parameterised;
templates escape everything and the map builds its labels as text; ``guard.Guard`` answers only to
the allowed host names, refuses cross-site state changes, bodies over 1 MB and JSON with NaN,
Infinity or lone surrogates, and sends a Content-Security-Policy (scripts from this server only) and
other security headers; every form carries a signed CSRF token; a scenario request is bounded (at
most ``MAX_SCENARIO_SITES`` closures, evaluated from the stored travel times in well under a second).
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from nearcare._errors import InputError, StoreError
from nearcare.web.guard import DEFAULT_HOSTS, Guard, tile_source
from nearcare.web.pages import (
    atlas,
    defibrillators,
    docs,
    downloads,
    equity,
    hubs,
    neighbourhoods,
    practices,
    scenarios,
    search,
    workforce,
)
from nearcare.web.schemas import MAX_SCENARIO_SITES
from nearcare.web.site import HERE, Site

__all__ = ["MAX_SCENARIO_SITES", "create_app"]


def offline_stylesheet(path: Path) -> str:
    """The NHS.UK stylesheet without its remote web fonts (Frutiger is licensed and not in the npm
    package); the design system's own fallback, Arial, is used instead."""
    text = path.read_text(encoding="utf-8")
    return re.sub(r"@font-face\{[^}]*https?://[^}]*\}", "", text)


def offline_redoc(path: Path) -> str:
    """ReDoc's standalone bundle without its one remote resource: the sidebar's Redocly logo, fetched
    from cdn.redoc.ly. An empty data: URL fails to load, and ReDoc then hides the image."""
    return path.read_text(encoding="utf-8").replace('"https://cdn.redoc.ly/redoc/logo-mini.svg"', '"data:,"')


def find_assets() -> Path | None:
    """The ``node_modules`` folder with nhsuk-frontend and leaflet (NEARCARE_ASSETS, or up from here)."""
    if os.environ.get("NEARCARE_ASSETS"):
        path = Path(os.environ["NEARCARE_ASSETS"])
        return path if (path / "nhsuk-frontend").exists() else None
    for parent in [Path.cwd(), *HERE.parents]:
        if (parent / "node_modules" / "nhsuk-frontend" / "dist").exists():
            return parent / "node_modules"
    return None


def mount_assets(app: FastAPI, assets: Path) -> None:
    """NHS.UK frontend, Leaflet, Swagger UI and ReDoc from ``node_modules``, without their remote parts."""
    nhsuk = assets / "nhsuk-frontend" / "dist" / "nhsuk"
    stylesheet = offline_stylesheet(nhsuk / "nhsuk-frontend.min.css")
    app.add_api_route(
        "/vendor/nhsuk/nhsuk-frontend.min.css",
        lambda: Response(stylesheet, media_type="text/css"),
        include_in_schema=False,
    )
    app.mount("/assets", StaticFiles(directory=nhsuk / "assets"), name="assets")
    app.mount("/vendor/nhsuk", StaticFiles(directory=nhsuk), name="nhsuk")
    app.mount("/vendor/leaflet", StaticFiles(directory=assets / "leaflet" / "dist"), name="leaflet")
    if (assets / "swagger-ui-dist").is_dir() and (assets / "redoc").is_dir():
        app.mount("/vendor/swagger-ui", StaticFiles(directory=assets / "swagger-ui-dist"), name="swagger-ui")
        redoc_script = offline_redoc(assets / "redoc" / "bundles" / "redoc.standalone.js")
        app.add_api_route(
            "/vendor/redoc/redoc.standalone.js",
            lambda: Response(redoc_script, media_type="text/javascript"),
            include_in_schema=False,
        )
        app.include_router(docs.router)


def create_app(
    store_path: str | Path, allowed_hosts: Sequence[str] = DEFAULT_HOSTS, *, tiles: str | None = None
) -> FastAPI:
    """The app for one store; it answers only to ``allowed_hosts`` (Host header names, without port).
    ``tiles``: a map tile URL template drawn under the maps (off by default: nothing leaves the machine)."""
    store_path = Path(store_path)
    try:
        tile_origin = tile_source(tiles) if tiles else None
    except ValueError as exc:
        raise InputError(str(exc), field="--tiles") from None
    if not store_path.exists():
        raise StoreError(f"{store_path}: no such store (run `nearcare demo` or `nearcare build` first)")
    assets = find_assets()
    try:
        site = Site(store_path, assets_missing=assets is None, tiles=tiles)
    except HTTPException as exc:  # the store is held by another process, or is not a store
        raise StoreError(str(exc.detail)) from None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        site.store.release()  # let go of the store when the server stops

    app = FastAPI(
        lifespan=lifespan,
        title="nearcare",
        description="Primary care and neighbourhood services: atlas, access, equity, "
        "scenarios and defibrillators, from open data.",
        version="0.1.0",
        docs_url=None,
        redoc_url=None,
    )  # /docs and /redoc are served from local assets, not FastAPI's CDN defaults
    app.add_middleware(Guard, allowed_hosts=allowed_hosts, tile_source=tile_origin)
    app.state.site = site
    if assets is not None:
        mount_assets(app, assets)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for page in (
        atlas,
        practices,
        equity,
        scenarios,
        neighbourhoods,
        hubs,
        defibrillators,
        workforce,
        search,
        downloads,
    ):
        app.include_router(page.router)

    @app.exception_handler(HTTPException)
    def http_error(request: Request, exc: HTTPException) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
        return site.page(request, "error.html", status=exc.status_code, message=exc.detail)

    @app.exception_handler(RequestValidationError)
    def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        # Where and why, never the input itself: it may be huge, or not encodable as JSON.
        problems = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ][:20]
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": problems}, status_code=422)
        message = "; ".join(
            f"{'.'.join(str(x) for x in p['loc'][1:]) or 'request'}: {p['msg']}" for p in problems
        )
        return site.page(request, "error.html", status=422, message=message)

    return app
