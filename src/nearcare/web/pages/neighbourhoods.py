"""Neighbourhoods: the designed or loaded groups of LSOAs, checked against their constraints."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import HTMLResponse

from nearcare._errors import StoreError
from nearcare.project import Project
from nearcare.report.neighbourhoods import neighbourhood_section
from nearcare.web.site import SiteDep, geojson_response, to_geojson, verdict_chart

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

    def layer(project: Project) -> str | None:
        shapes = project.neighbourhood_shapes()
        return None if shapes.empty else to_geojson(shapes, ["neighbourhood", "population"])

    text = site.store.cached("neighbourhood_layer", (), NEIGHBOURHOOD_TABLES, layer)
    if text is None:
        raise HTTPException(409, "no neighbourhoods designed or loaded yet (nearcare neighbourhoods design)")
    return geojson_response(text)


def _page(project: Project) -> dict:
    """The page's sections and its lead: the verdict in one sentence and the population of each
    neighbourhood against the bounds it was designed to (those outside them marked)."""
    try:
        check = project.check_neighbourhoods()
    except StoreError:
        return {"sections": [], "lead": None}
    n = check.neighbourhoods
    within, contiguous = int(n["within_bounds"].sum()), int(n["contiguous"].sum())
    verdict = (
        f"{within} of the {len(n)} neighbourhoods have {check.min_population:,.0f} to "
        f"{check.max_population:,.0f} people, and {contiguous} are one contiguous piece."
    )
    lead = verdict_chart(
        verdict,
        "People in each neighbourhood (red: outside the bounds)",
        [(str(row["neighbourhood"]), float(row["population"])) for _, row in n.iterrows()],
        digits=0,
        flagged={str(x) for x in n.loc[~n["within_bounds"].astype(bool), "neighbourhood"]},
        note=check.summary + ".",
    )
    return {"sections": [neighbourhood_section(project.store, check)], "lead": lead}


@router.get("/neighbourhoods", response_class=HTMLResponse, include_in_schema=False)
def neighbourhoods_page(request: Request, site: SiteDep) -> HTMLResponse:
    page = site.store.cached("neighbourhoods_page", (), NEIGHBOURHOOD_TABLES, _page)
    return site.page(
        request,
        "sections.html",
        title="Neighbourhoods",
        sections=page["sections"],
        lead=page["lead"],
        downloads=[("Neighbourhood profiles", "/download/neighbourhoods", "")],
        missing="No neighbourhoods yet: run `nearcare neighbourhoods design` or `load`."
        if not page["sections"]
        else None,
    )
