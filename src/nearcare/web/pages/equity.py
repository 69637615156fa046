"""Equity: does supply follow need? (computed once per store version: the page takes seconds to build)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse

from nearcare._errors import InputError, StoreError
from nearcare.equity import MEASURES
from nearcare.report.equity import equity_sections
from nearcare.web.schemas import Kind
from nearcare.web.site import SiteDep

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


@router.get("/equity", response_class=HTMLResponse, include_in_schema=False)
def equity_page(request: Request, site: SiteDep) -> HTMLResponse:
    sections = site.store.cached("equity_page", (), EQUITY_TABLES, lambda p: equity_sections(p.store))
    return site.page(
        request,
        "sections.html",
        title="Equity: does supply follow need?",
        sections=sections,
        downloads=[("GP access per need by deprivation decile, per small area", "/download/equity", "")],
        missing="No access measures yet: run `nearcare access` (the demo does)." if not sections else None,
    )
