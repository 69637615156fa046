"""The app's shared parts, given to every route through ``Depends``: the store (read-only per request),
the page renderer with its CSRF tokens, and GeoJSON out of GeoDataFrames."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import geopandas as gpd
import shapely
from fastapi import Depends, HTTPException, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import ChainableUndefined, ChoiceLoader, FileSystemLoader, PackageLoader

from nearcare.legend import map_legend
from nearcare.project import Project
from nearcare.web.guard import CSRF_COOKIE, CsrfTokens
from nearcare.web.state import StoreAccess

HERE = Path(__file__).parent


class Site:
    """One served store: its access and cache, its templates and the area label every page shows."""

    def __init__(self, path: Path, *, assets_missing: bool, tiles: str | None = None) -> None:
        self.store = StoreAccess(path)
        self.tiles = tiles
        self.csrf = CsrfTokens()
        self.assets_missing = assets_missing
        self.templates = Jinja2Templates(directory=HERE / "templates")
        self.templates.env.loader = ChoiceLoader(
            [FileSystemLoader(HERE / "templates"), PackageLoader("nhsuk_frontend_jinja", "templates")]
        )
        self.templates.env.undefined = ChainableUndefined  # the NHS.UK macros read optional nested parameters
        with self.store.reading() as project:
            area = project.area()
        self.area_label = (
            f"{area['label'].iloc[0]} ({area['area_code'].iloc[0]})" if len(area) else "No area built"
        )

    def page(self, request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        """A page from ``templates/``, with a CSRF token for its forms (kept in a SameSite cookie)."""
        cookie = request.cookies.get(CSRF_COOKIE)
        token = cookie if cookie is not None and self.csrf.valid(cookie) else self.csrf.new()
        response = self.templates.TemplateResponse(
            request,
            name,
            {
                "area_label": self.area_label,
                "assets_missing": self.assets_missing,
                "tiles": self.tiles,
                "tiles_host": urlsplit(self.tiles).netloc if self.tiles else None,
                "csrf_token": token,
                "cspNonce": request.state.csp_nonce,
                **context,
            },
            status_code=status,
        )
        response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict")
        return response

    def check_csrf(self, request: Request, field: str) -> None:
        if not self.csrf.check(request.cookies.get(CSRF_COOKIE), field):
            raise HTTPException(
                403, "This form has expired or did not come from this site: reload the page and try again."
            )


def site(request: Request) -> Site:
    return request.app.state.site


def project(request: Request) -> Iterator[Project]:
    """The store, read-only, for one request (closed when the request ends)."""
    with request.app.state.site.store.reading() as opened:
        yield opened


SiteDep = Annotated[Site, Depends(site)]
ProjectDep = Annotated[Project, Depends(project)]


def to_geojson(frame: gpd.GeoDataFrame, properties: list[str], *, grid: float = 1e-5) -> str:
    """A FeatureCollection of ``properties`` (missing values as null), coordinates snapped to ``grid`` degrees."""
    out = frame[properties].copy()
    out = gpd.GeoDataFrame(
        out, geometry=shapely.set_precision(frame.geometry.to_numpy(), grid), crs=frame.crs
    )
    return out.to_json(na="null", drop_id=True)


def classed_geojson(frame: gpd.GeoDataFrame, properties: list[str], *, title: str, units: str = "") -> str:
    """``to_geojson`` with each feature's map ``class`` and the ``legend`` (nearcare.legend: the report's
    classes too) as a member of the FeatureCollection, so the browser only paints."""
    legend = map_legend(frame["value"], title=title, units=units)
    collection = json.loads(
        to_geojson(frame.assign(**{"class": legend.classify(frame["value"])}), [*properties, "class"])
    )
    collection["legend"] = legend.as_dict()
    return json.dumps(collection, allow_nan=False)


def geojson_response(text: str) -> Response:
    return Response(text, media_type="application/json")


def verdict_chart(
    verdict: str,
    title: str,
    bars: list[tuple[str, float]],
    *,
    digits: int = 2,
    flagged: set[str] | None = None,
    note: str | None = None,
) -> dict:
    """A page's lead: the verdict in one sentence and a bar chart (label, value), drawn as HTML by
    ``lead.html`` so that it reads on a phone and to a screen reader; ``flagged`` bars are marked."""
    top = max((v for _, v in bars if v == v), default=0.0)  # v == v: not NaN
    return {
        "verdict": verdict,
        "title": title,
        "note": note,
        "bars": [
            {
                "label": label,
                "width": round(100 * value / top, 1) if top > 0 and value == value else 0,
                "text": "no data" if value != value else f"{value:,.{digits}f}",
                "flag": label in (flagged or set()),
            }
            for label, value in bars
        ],
    }
