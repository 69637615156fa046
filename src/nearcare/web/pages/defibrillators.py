"""Defibrillators: the register, coverage by day, evening and night, and public reports.

A report is the app's one write: the store is opened read-write for that transaction only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from nearcare import defib
from nearcare._errors import InputError, StoreError
from nearcare.project import Project
from nearcare.web.schemas import DefibReport, form_error, report_from_form
from nearcare.web.site import ProjectDep, Site, SiteDep, geojson_response, to_geojson

router = APIRouter()
REPORT_TABLES = ("defibrillators", "defib_reports")  # what a report writes
COVERAGE_TABLES = (*REPORT_TABLES, "small_areas", "postcodes", "network_nodes", "network_edges")


def add_report(site: Site, report: DefibReport) -> tuple[str, bool]:
    with site.store.writing(REPORT_TABLES) as project:
        return project.report_defibrillator(**report.model_dump())


def _coverage(project: Project) -> dict:
    """Coverage lines for the page: shares of assessed residents, and who could not be assessed."""
    try:
        cov = project.defib_coverage()
    except StoreError as exc:
        return {"missing": str(exc)}
    return {
        "lines": [cov.summary(t) for t in defib.TIMES],
        "not_assessed": cov.not_assessed_note(),
        "deserts": len(defib.deserts(cov)),
        "distance_m": cov.distance_m,
    }


def coverage(site: Site) -> dict:
    return site.store.cached("defib_coverage", (), COVERAGE_TABLES, _coverage)


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
    with site.store.reading() as project:
        listed = project.defibrillators(unregistered=True)
    return site.page(
        request,
        "defibrillators.html",
        status=status,
        unregistered=listed.to_dict("records"),
        coverage=coverage(site),
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
            field, message = form_error(exc)
            errors[field] = message
    return _page(request, site, status=400, form=form, errors=errors, reported=None)
