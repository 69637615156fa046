"""Organisations: GP practices, pharmacies, dentists and optometrists, one page each."""

from __future__ import annotations

import re

import pandas as pd
from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import HTMLResponse

from nearcare._errors import StoreError
from nearcare.project import Project
from nearcare.web.pages.scenarios import context
from nearcare.web.schemas import Kind
from nearcare.web.site import ProjectDep, Site, SiteDep, classed_geojson, geojson_response, to_geojson

router = APIRouter()
PRACTICE_FIGURES = (
    "patients",
    "gp_fte",
    "nurse_fte",
    "patients_per_gp_fte",
    "pct_65_plus",
    "imd_quintile_england",
)


def _value(value: object) -> object:
    return None if pd.isna(value) else value


def organisation(project: Project, code: str) -> dict:
    if not re.fullmatch(r"[A-Z0-9]{3,12}", code):
        raise HTTPException(422, "an organisation code is 3 to 12 capital letters and digits")
    found = project.sites(code=code)
    if found.empty:
        raise HTTPException(404, f"no organisation {code} in this area")
    row = found.iloc[0]
    result = {
        "code": code,
        **{key: _value(row[key]) for key in ("name", "kind", "postcode", "sub_icb_code", "lsoa21_code")},
        "lat": None if pd.isna(row["lat"]) else float(row["lat"]),
        "lon": None if pd.isna(row["lon"]) else float(row["lon"]),
    }
    practice = project.practice(code)
    if len(practice):
        p = practice.iloc[0]
        for key in PRACTICE_FIGURES:
            result[key] = None if pd.isna(p[key]) else float(p[key])
        result["list_size_date"] = None if pd.isna(p["list_size_date"]) else str(p["list_size_date"])[:10]
    return result


@router.get("/api/organisations", tags=["atlas"])
def api_organisations(project: ProjectDep, kind: Kind | None = None) -> Response:
    """Services as GeoJSON points (those not geocoded have no geometry)."""
    return geojson_response(to_geojson(project.sites(kind), ["code", "name", "kind", "postcode"], grid=1e-6))


@router.get("/api/organisations/{code}", tags=["atlas"])
def api_organisation(code: str, project: ProjectDep) -> dict:
    """One organisation: where it is and, for a practice, list size and workforce."""
    return organisation(project, code)


def _catchment(site: Site, project: Project, code: str) -> str:
    try:
        flows = context(site, None).flows
    except StoreError as exc:
        raise HTTPException(409, str(exc)) from None
    return classed_geojson(
        project.practice_catchment(code, flows).rename(columns={"patients": "value"}),
        ["lsoa21_code", "lsoa21_name", "value"],
        title="Registered patients living in each small area",
        units="patients",
    )


@router.get("/api/organisations/{code}/serves.geojson", tags=["atlas"])
def api_serves(code: str, project: ProjectDep, site: SiteDep) -> Response:
    """LSOAs a practice serves: its modelled (or real) registered patients per LSOA."""
    if organisation(project, code)["kind"] != "gp":
        raise HTTPException(400, "only GP practices have registered patients")
    return geojson_response(_catchment(site, project, code))


@router.get("/organisations/{code}", response_class=HTMLResponse, include_in_schema=False)
def organisation_page(request: Request, code: str, project: ProjectDep, site: SiteDep) -> HTMLResponse:
    return site.page(request, "organisation.html", org=organisation(project, code))
