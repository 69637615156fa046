"""Defibrillators: the register, coverage by day, evening and night, and public reports.

A report is the app's one write: the store is opened read-write for that transaction only."""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Annotated, Literal

from fastapi import APIRouter, Form, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from nearcare import defib
from nearcare._errors import InputError, StoreError
from nearcare.geo import to_wgs84
from nearcare.project import Project
from nearcare.web.schemas import HOURS_CHOICES, DefibReport, form_error, report_from_form
from nearcare.web.site import ProjectDep, Site, SiteDep, classed_geojson, geojson_response, to_geojson

router = APIRouter()
REPORT_TABLES = ("defibrillators", "defib_reports")  # what a report writes
COVERAGE_TABLES = (*REPORT_TABLES, "small_areas", "postcodes", "network_nodes", "network_edges")
SITING_TABLES = (*COVERAGE_TABLES, "sites", "osm_extracts")  # candidate hosts: services and OSM amenities
PROPOSED_SITES = 5
DESERTS_LISTED = 10
WHEN = {"day": "by day (12:00)", "evening": "in the evening (20:00)", "night": "at night (03:00)"}


def add_report(site: Site, report: DefibReport) -> tuple[str, bool]:
    with site.store.writing(REPORT_TABLES) as project:
        return project.report_defibrillator(**report.model_dump())


def _coverage(project: Project) -> defib.Coverage | str:
    try:
        return project.defib_coverage()
    except StoreError as exc:  # no walking network or no residents: the page says why
        return str(exc)


def coverage_of(site: Site) -> defib.Coverage | str:
    """Who lives near a defibrillator (computed once per version of what it reads), or why not."""
    return site.store.cached("defib_coverage", (), COVERAGE_TABLES, _coverage)


def coverage(site: Site) -> dict:
    """Coverage lines for the page: shares of assessed residents, and who could not be assessed
    (worked out once per version too: summing the residents takes longer than the rest of the page)."""
    cov = coverage_of(site)
    if isinstance(cov, str):
        return {"missing": cov}
    names = site.store.cached("lsoa_names", (), ("small_areas",), _lsoa_names)
    return site.store.cached("defib_coverage_summary", (), COVERAGE_TABLES, lambda _: _summary(cov, names))


def _summary(cov: defib.Coverage, names: dict[str, str]) -> dict:
    deserts = defib.deserts(cov)
    top = deserts.head(DESERTS_LISTED).assign(lsoa21_name=lambda f: f["lsoa21_code"].map(names))
    night, day = cov.share("night"), cov.share("day")
    verdict = (
        "No resident could be placed on the walking network, so coverage could not be assessed."
        if math.isnan(night)
        else f"At night {night:.1f}% of the {cov.assessed_people:,.0f} residents on the walking network live "
        f"within {cov.distance_m:g} m of a public defibrillator they could use then ({day:.1f}% by day); "
        f"{len(deserts)} small areas have none within reach at night."
    )
    return {
        "verdict": verdict,
        "lines": [cov.summary(t) for t in defib.TIMES],
        "not_assessed": cov.not_assessed_note(),
        "deserts": len(deserts),
        "top_deserts": top.to_dict("records"),
        "distance_m": cov.distance_m,
    }


def _lsoa_names(project: Project) -> dict[str, str]:
    areas = project.area_measure("population")
    return dict(zip(areas["lsoa21_code"], areas["lsoa21_name"], strict=True))


def _sites(project: Project) -> list[dict] | str:
    """The proposed best new sites (exact maximal cover at night), or why there are none."""
    try:
        siting, _ = project.defib_sites(PROPOSED_SITES)
    except (StoreError, InputError) as exc:
        return str(exc)
    chosen = siting.chosen
    lon, lat = to_wgs84(chosen["easting"].to_numpy(float), chosen["northing"].to_numpy(float))
    return [
        {
            "rank": i + 1,
            "site_id": row["site_id"],
            "name": row["name"] if isinstance(row["name"], str) and row["name"] else "unnamed",
            "host": row["host"],
            "people_added": round(float(row["marginal_people"])),
            "lat": float(y),
            "lon": float(x),
        }
        for i, ((_, row), y, x) in enumerate(zip(chosen.iterrows(), lat, lon, strict=True))
    ]


def proposed_sites(site: Site) -> list[dict] | str:
    return site.store.cached("defib_sites", (), SITING_TABLES, _sites)


@router.get("/api/defibrillators/coverage.geojson", tags=["defibrillators"])
def api_coverage_layer(site: SiteDep, time: Literal["day", "evening", "night"] = "night") -> Response:
    """LSOAs with the share (%) of assessed residents near a public defibrillator available at ``time``;
    ``desert``: nobody assessed is near one; null where nobody could be assessed (no walking network)."""
    cov = coverage_of(site)
    if isinstance(cov, str):
        raise HTTPException(409, cov)

    def layer(project: Project) -> str:
        areas = project.area_measure("population")[["lsoa21_code", "lsoa21_name", "geometry"]]
        by_lsoa = cov.by_lsoa.set_index("lsoa21_code")
        assessed = areas["lsoa21_code"].map(by_lsoa["people_assessed"]).fillna(0.0)
        covered = areas["lsoa21_code"].map(by_lsoa[f"people_{time}_first"]).fillna(0.0)
        deserts = set(defib.deserts(cov, time)["lsoa21_code"])
        frame = areas.assign(
            value=(100 * covered / assessed).where(assessed > 0),
            people_assessed=assessed,
            desert=areas["lsoa21_code"].isin(deserts),
        )
        return classed_geojson(
            frame,
            ["lsoa21_code", "lsoa21_name", "value", "people_assessed", "desert"],
            title=f"Residents within {cov.distance_m:g} m of a public defibrillator available {WHEN[time]}",
            units="%",
        )

    return geojson_response(site.store.cached("defib_coverage_layer", (time,), COVERAGE_TABLES, layer))


@router.get("/api/defibrillators/proposed.geojson", tags=["defibrillators"])
def api_proposed(site: SiteDep) -> Response:
    """The best new sites for a defibrillator (covering the most people not covered at night), as points."""
    sites = proposed_sites(site)
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [round(s["lon"], 6), round(s["lat"], 6)]},
            "properties": {k: v for k, v in s.items() if k not in ("lat", "lon")},
        }
        for s in (sites if isinstance(sites, list) else [])
    ]
    return geojson_response(json.dumps({"type": "FeatureCollection", "features": features}))


@router.get("/api/defibrillators", tags=["defibrillators"])
def api_defibrillators(project: ProjectDep) -> Response:
    """Known defibrillators with status (GeoJSON points)."""
    register = project.defibrillators()
    return geojson_response(
        to_geojson(register, ["defib_id", "status", "access", "hours", "reports"], grid=1e-6)
    )


@router.post("/api/defibrillators/reports", tags=["defibrillators"], status_code=201)
def api_report(report: DefibReport, site: SiteDep) -> dict:
    """Report a defibrillator: matched to a known one within 50 m or added; bad reports are refused."""
    try:
        defib_id, matched = add_report(site, report)
    except InputError as exc:
        raise HTTPException(400, str(exc)) from None
    return {"defib_id": defib_id, "matched_known": matched}


def _page(request: Request, site: Site, status: int = 200, **context: object) -> HTMLResponse:
    listed = site.store.cached(  # by day too: a defibrillator's pads or battery expire on a date
        "defib_unregistered",
        (dt.date.today(),),
        REPORT_TABLES,
        lambda p: p.defibrillators(unregistered=True).to_dict("records"),
    )
    sites = proposed_sites(site)
    return site.page(
        request,
        "defibrillators.html",
        status=status,
        unregistered=listed,
        coverage=coverage(site),
        proposed=sites if isinstance(sites, list) else [],
        proposed_missing=sites if isinstance(sites, str) else None,
        hours_choices=HOURS_CHOICES,
        **context,
    )


@router.get("/defibrillators", response_class=HTMLResponse, include_in_schema=False)
def defib_page(request: Request, site: SiteDep, reported: str | None = None) -> HTMLResponse:
    return _page(request, site, reported=reported, form={}, errors={})


@router.post("/defibrillators", response_class=HTMLResponse, include_in_schema=False)
def defib_form(
    request: Request,
    site: SiteDep,
    access: Annotated[str, Form()] = "",
    hours: Annotated[str, Form()] = "",
    hours_other: Annotated[str, Form()] = "",
    postcode: Annotated[str, Form()] = "",
    lat: Annotated[str, Form()] = "",
    lon: Annotated[str, Form()] = "",
    registered: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    site.check_csrf(request, csrf_token)
    form = {
        "access": access,
        "hours": hours,
        "hours_other": hours_other,
        "postcode": postcode,
        "lat": lat,
        "lon": lon,
        "registered": registered,
        "note": note,
    }
    report, errors = report_from_form(form)
    if report is not None:
        try:
            defib_id, _matched = add_report(site, report)
            return RedirectResponse(f"/defibrillators?reported={defib_id}", status_code=303)
        except InputError as exc:
            field, message = form_error(exc, form)
            errors[field] = message
    return _page(request, site, status=400, form=form, errors=errors, reported=None)
