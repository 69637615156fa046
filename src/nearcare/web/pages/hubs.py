"""Neighbourhood hubs: where each neighbourhood's health centre should stand (computed once per store
version and choice: the exact p-median takes a few seconds for a whole ICB)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import HTMLResponse

from nearcare._errors import InputError, StoreError
from nearcare.hubs import HubPlan
from nearcare.project import Project
from nearcare.report.hubs import hub_section
from nearcare.web.site import Site, SiteDep, classed_geojson, geojson_response, to_geojson

router = APIRouter()
HUB_TABLES = ("neighbourhoods", "small_areas", "sites", "practices", "travel_times", "travel_runs")
Candidates = Literal["practices", "sites"]  # a file of points is for the CLI and the Python API
PerNeighbourhood = Annotated[int, Query(ge=1, le=5)]
MaxMinutes = Annotated[float | None, Query(gt=0, le=300)]
Profile = Literal["walk", "drive"]


def plan(site: Site, per: int, candidates: str, max_minutes: float | None, profile: str) -> HubPlan:
    """The hub plan for one choice, once per store version; 409 when the store cannot answer yet."""
    try:
        return site.store.cached(
            "hubs",
            (per, candidates, max_minutes, profile),
            HUB_TABLES,
            lambda p: p.neighbourhood_hubs(
                per, candidates=candidates, max_minutes=max_minutes, profile=profile
            ),
        )
    except (InputError, StoreError) as exc:
        raise HTTPException(409, str(exc)) from None


@router.get("/api/hubs.geojson", tags=["neighbourhoods"])
def api_hubs(
    site: SiteDep,
    per_neighbourhood: PerNeighbourhood = 1,
    candidates: Candidates = "practices",
    max_minutes: MaxMinutes = None,
    profile: Profile = "drive",
) -> Response:
    """The chosen hubs (GeoJSON points) with the people they serve and their need-weighted mean minutes."""
    # lazy: geopandas with the first map, not at app start
    from nearcare.export import located

    chosen = plan(site, per_neighbourhood, candidates, max_minutes, profile)
    hubs = located(chosen.hubs)
    columns = ["neighbourhood", "code", "name", "kind", "lsoas", "population", "mean_minutes"]
    return geojson_response(to_geojson(hubs, columns, grid=1e-6))


@router.get("/api/hubs/lsoas.geojson", tags=["neighbourhoods"])
def api_hub_lsoas(
    site: SiteDep,
    per_neighbourhood: PerNeighbourhood = 1,
    candidates: Candidates = "practices",
    max_minutes: MaxMinutes = None,
    profile: Profile = "drive",
) -> Response:
    """LSOA polygons with their hub, people and minutes to it as ``value`` (classed as on the report's
    map); ``status`` says why an LSOA has no hub (unreachable or not placed)."""
    chosen = plan(site, per_neighbourhood, candidates, max_minutes, profile)

    def layer(project: Project) -> str:
        areas = project.small_areas()[["lsoa21_code", "geometry"]].merge(
            chosen.lsoas.rename(columns={"minutes": "value"}), on="lsoa21_code"
        )
        columns = ["lsoa21_code", "neighbourhood", "population", "hub", "status", "value"]
        return classed_geojson(areas, columns, title="Minutes to the neighbourhood's hub", units="min")

    key = (per_neighbourhood, candidates, max_minutes, profile)
    return geojson_response(site.store.cached("hub_lsoa_layer", key, HUB_TABLES, layer))


@router.get("/hubs", response_class=HTMLResponse, include_in_schema=False)
def hubs_page(
    request: Request,
    site: SiteDep,
    per_neighbourhood: PerNeighbourhood = 1,
    candidates: Candidates = "practices",
    max_minutes: MaxMinutes = None,
    profile: Profile = "drive",
) -> HTMLResponse:
    key = (per_neighbourhood, candidates, max_minutes, profile)
    try:
        chosen = plan(site, *key)
    except HTTPException as exc:
        return site.page(
            request, "hubs.html", title="Neighbourhood hubs", sections=[], missing=exc.detail, choice={}
        )
    sections = site.store.cached("hubs_page", key, HUB_TABLES, lambda p: [hub_section(p.store, chosen)])
    query = f"?per_neighbourhood={per_neighbourhood}&candidates={candidates}&profile={profile}" + (
        f"&max_minutes={max_minutes:g}" if max_minutes is not None else ""
    )
    return site.page(
        request,
        "hubs.html",
        title="Neighbourhood hubs",
        sections=sections,
        missing=None,
        choice={
            "per_neighbourhood": per_neighbourhood,
            "candidates": candidates,
            "profile": profile,
            "max_minutes": "" if max_minutes is None else f"{max_minutes:g}",
        },
        layers=[
            ("Hubs (points)", "/api/hubs.geojson" + query),
            ("LSOAs and minutes to the hub", "/api/hubs/lsoas.geojson" + query),
        ],
    )
