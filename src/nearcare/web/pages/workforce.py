"""Workforce: trends, the gap to England's benchmark and practices at risk (computed once per store
version; the closure rule is left out here, as scoring every closure takes too long for a page: the
CLI's ``nearcare workforce risk`` includes it)."""

from __future__ import annotations

import json

import geopandas as gpd
import pandas as pd
from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import HTMLResponse

from nearcare._errors import InputError, StoreError
from nearcare.project import Project
from nearcare.report.workforce import workforce_sections
from nearcare.web.pages.downloads import Format, filename, send
from nearcare.web.site import SiteDep, classed_geojson, geojson_response

router = APIRouter()
WORKFORCE_TABLES = (
    "gp_workforce",
    "england_workforce",
    "practices",
    "sites",
    "small_areas",
    "neighbourhoods",
)
RISK_COLUMNS = ["practice_code", "name", "sub_icb_code", "risk_score", "reasons"]


def _checked(site: SiteDep, name: str, compute):
    try:
        return site.store.cached(name, (), WORKFORCE_TABLES, compute)
    except (InputError, StoreError) as exc:
        raise HTTPException(409, str(exc)) from None


def _risk(site: SiteDep) -> tuple[pd.DataFrame, list[str]]:
    return _checked(site, "workforce_risk", lambda p: p.practices_at_risk(closures=False))


@router.get("/api/workforce/trends", tags=["workforce"])
def api_trends(site: SiteDep) -> dict:
    """Change over 3 and 5 years in GP and nurse FTE and patients per FTE, per sub-ICB, ICB and England."""
    found = _checked(site, "workforce_trends", lambda p: p.workforce_trends())
    changes = found.changes[found.changes["level"] != "practice"]
    return {"changes": _records(changes), "notes": found.notes}


@router.get("/api/workforce/gap", tags=["workforce"])
def api_gap(site: SiteDep) -> dict:
    """GP and nurse FTE needed to reach England's need-weighted patients per FTE, by group."""
    found = _checked(site, "workforce_gap", lambda p: p.workforce_gap())
    return {
        "year": found.year,
        "benchmark_per_gp_fte": found.benchmark_per_gp_fte,
        "benchmark_per_nurse_fte": found.benchmark_per_nurse_fte,
        "groups": _records(found.groups),
        "notes": found.notes,
    }


@router.get("/api/workforce/risk", tags=["workforce"])
def api_risk(site: SiteDep) -> dict:
    """Practices at risk: score and reasons, highest first (closure rule not assessed here)."""
    risk, notes = _risk(site)
    return {"practices": _records(risk[RISK_COLUMNS]), "notes": notes}


@router.get("/api/workforce/risk.geojson", tags=["workforce"])
def api_risk_geojson(site: SiteDep) -> Response:
    """Practices as points with their risk score as ``value`` and its map class and legend."""

    def draw(project: Project) -> str:
        risk, _ = project.practices_at_risk(closures=False)
        located = risk[risk["lon"].notna()]
        frame = gpd.GeoDataFrame(
            located.assign(value=located["risk_score"].astype(float)),
            geometry=gpd.points_from_xy(located["lon"], located["lat"]),
            crs="EPSG:4326",
        )
        return classed_geojson(
            frame, ["practice_code", "name", "value", "reasons"], title="Risk score", units="points"
        )

    return geojson_response(_checked(site, "workforce_risk_geojson", draw))


@router.get("/download/workforce-risk.{fmt}", tags=["downloads"])
def download_risk(site: SiteDep, fmt: Format) -> Response:
    """The practices-at-risk list with the figures behind each score."""
    risk, _ = _risk(site)
    with site.store.reading() as project:
        return send(project, risk, filename(project, "workforce_risk", fmt=fmt), fmt)


@router.get("/workforce", response_class=HTMLResponse, include_in_schema=False)
def workforce_page(request: Request, site: SiteDep) -> HTMLResponse:
    def build(project: Project) -> list:
        try:
            risk, notes = project.practices_at_risk(closures=False)
        except StoreError:
            return []  # no workforce figures: the page says what to import
        return workforce_sections(project.store, risk=risk, notes=notes)

    sections = _checked(site, "workforce_page", build)
    return site.page(
        request,
        "workforce.html",
        title="Workforce and sustainability",
        sections=sections,
        downloads=[("Practices at risk, with their reasons", "/download/workforce-risk", "")],
        missing="No workforce figures for the area's practices: import gp-workforce, then build."
        if not sections
        else None,
    )


def _records(frame: pd.DataFrame) -> list[dict]:
    """Rows as JSON-safe dicts (missing values as null)."""
    return json.loads(frame.to_json(orient="records"))
