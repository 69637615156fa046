"""Neighbourhoods: the designed or loaded groups of LSOAs, checked against their constraints."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import HTMLResponse

from nearcare._errors import StoreError
from nearcare.project import Project
from nearcare.report.neighbourhoods import neighbourhood_section
from nearcare.web.site import SiteDep, geojson_response, to_geojson

router = APIRouter()
# The page's profiles count defibrillators per neighbourhood, so a report changes it.
NEIGHBOURHOOD_TABLES = (
    "neighbourhoods",
    "small_areas",
    "sites",
    "practices",
    "travel_times",
    "defibrillators",
)


@router.get("/api/neighbourhoods.geojson", tags=["neighbourhoods"])
def api_neighbourhoods(site: SiteDep) -> Response:
    """Neighbourhoods as dissolved polygons with their population."""
    shapes = site.store.cached(
        "neighbourhood_layer", (), NEIGHBOURHOOD_TABLES, lambda p: p.neighbourhood_shapes()
    )
    if shapes.empty:
        raise HTTPException(409, "no neighbourhoods designed or loaded yet (nearcare neighbourhoods design)")
    return geojson_response(to_geojson(shapes, ["neighbourhood", "population"]))


def _sections(project: Project) -> list:
    try:
        return [neighbourhood_section(project.store, project.check_neighbourhoods())]
    except StoreError:
        return []


@router.get("/neighbourhoods", response_class=HTMLResponse, include_in_schema=False)
def neighbourhoods_page(request: Request, site: SiteDep) -> HTMLResponse:
    sections = site.store.cached("neighbourhoods_page", (), NEIGHBOURHOOD_TABLES, _sections)
    return site.page(
        request,
        "sections.html",
        title="Neighbourhoods",
        sections=sections,
        downloads=[("Neighbourhood profiles", "/download/neighbourhoods", "")],
        missing="No neighbourhoods yet: run `nearcare neighbourhoods design` or `load`."
        if not sections
        else None,
    )
