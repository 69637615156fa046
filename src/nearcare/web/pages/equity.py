"""Equity: does supply follow need? (computed once per store version: the page takes seconds to build)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse

from nearcare._errors import InputError, StoreError
from nearcare.equity import MEASURES
from nearcare.project import Project
from nearcare.report.equity import equity_sections
from nearcare.web.schemas import Kind
from nearcare.web.site import SiteDep, verdict_chart

router = APIRouter()
EQUITY_TABLES = ("access", "small_areas", "practices", "sites")


@router.get("/api/equity", tags=["equity"])
def api_equity(
    site: SiteDep,
    kind: Kind = "gp",
    profile: Literal["walk", "drive"] = "drive",
    mode: Literal["crowfly", "walk", "drive"] | None = None,
    measure: Literal["e2sfca_need", "e2sfca", "nearest_minutes", "services_within"] = "e2sfca_need",
) -> dict:
    """Inequality of an access measure by deprivation: deciles, indices and the verdict."""
    try:
        figures = site.store.cached(
            "equity",
            (kind, profile, mode, measure),
            EQUITY_TABLES,
            lambda p: p.equity(kind=kind, profile=profile, mode=mode, measure=measure),
        )
    except (InputError, StoreError) as exc:
        raise HTTPException(409, str(exc)) from None
    return {
        "measure": figures.measure,
        "deciles": {int(k): float(v) for k, v in figures.deciles["value"].items()},
        "concentration_index": figures.concentration_index,
        "concentration_index_se": figures.concentration_index_se,
        "slope_index": figures.sii,
        "slope_index_ci": [figures.sii_low, figures.sii_high],
        "inverse_care_law": figures.finding,
        "verdict": figures.verdict(MEASURES[measure][0]),
    }


def _lead(project: Project) -> dict | None:
    """The verdict for GP access per need in one sentence, and its chart by IMD decile, for the run
    the report leads with (crow-fly, which covers the whole area, then the road network; driving
    first); None before any GP access is stored."""
    runs = project.access_runs()
    runs = runs[runs["kind"] == "gp"]
    if runs.empty:
        return None
    run = runs.assign(order=(runs["mode"] != "crowfly") * 2 + (runs["profile"] != "drive")).sort_values(
        "order"
    )
    profile, mode = run["profile"].iloc[0], run["mode"].iloc[0]
    label = f"{'driving' if profile == 'drive' else 'walking'}, {'crow-fly' if mode == 'crowfly' else 'road network'}"
    try:
        figures = project.equity(kind="gp", profile=profile, mode=mode, measure="e2sfca_need")
    except (InputError, StoreError):
        return None
    full = figures.verdict(f"GP access per need ({label})")
    deciles = figures.deciles["value"]
    return verdict_chart(
        full.split(" (slope index", 1)[0] + ".",  # the sentence; its figures follow the chart
        f"GP access per need by IMD 2025 decile ({label}): GP FTE per 1,000 need-weighted people",
        [
            (f"Decile {d}" + {1: " (most deprived)", 10: " (least)"}.get(int(d), ""), float(v))
            for d, v in deciles.items()
        ],
        digits=3,
        note=full,
    )


@router.get("/equity", response_class=HTMLResponse, include_in_schema=False)
def equity_page(request: Request, site: SiteDep) -> HTMLResponse:
    sections = site.store.cached("equity_page", (), EQUITY_TABLES, lambda p: equity_sections(p.store))
    lead = site.store.cached("equity_lead", (), EQUITY_TABLES, _lead)
    return site.page(
        request,
        "sections.html",
        title="Equity: does supply follow need?",
        lead=lead,
        sections=sections,
        downloads=[("GP access per need by deprivation decile, per small area", "/download/equity", "")],
        missing="No access measures yet: run `nearcare access` (the demo does)." if not sections else None,
    )
