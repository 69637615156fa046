"""Find things: services, LSOAs and postcodes by name, code or postcode, from every page's header."""

from __future__ import annotations

import re
from typing import Annotated

import pandas as pd
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse

from nearcare._errors import InputError
from nearcare.project import Project
from nearcare.web.site import ProjectDep, SiteDep

router = APIRouter()
MAX_RESULTS = 20  # name matches per search; a postcode adds its nearest services of each kind
NEARBY = 3
# Letters, digits, spaces and the punctuation of names (St. John's, Smith-Jones, A&B); nothing else.
QUERY = r"[\w .,'&()/-]{1,80}"
KIND_LABELS = {
    "gp": "GP practice",
    "pharmacy": "Pharmacy",
    "dentist": "Dental practice",
    "optometrist": "Optician",
    "lsoa": "Small area (LSOA)",
    "postcode": "Postcode",
}
INVALID = "a search is 1 to 80 letters, digits, spaces or ' , . & ( ) / -"


def _href(row: pd.Series) -> str | None:
    """Where a result leads: a service's own page; an LSOA or postcode to the map of the area."""
    if row["kind"] in KIND_LABELS and row["kind"] not in ("lsoa", "postcode"):
        return f"/organisations/{row['code']}"
    return None


def results(project: Project, q: str) -> list[dict]:
    if not re.fullmatch(QUERY, q):
        raise HTTPException(422, INVALID)
    try:
        found = project.search(q, limit=MAX_RESULTS, nearby=NEARBY)
    except InputError:
        raise HTTPException(422, INVALID) from None
    rows = []
    for _, row in found.iterrows():
        rows.append(
            {
                "kind": row["kind"],
                "kind_label": KIND_LABELS.get(row["kind"], row["kind"]),
                "code": row["code"],
                "name": row["name"],
                "postcode": None if pd.isna(row["postcode"]) else row["postcode"],
                "lsoa21_code": None if pd.isna(row["lsoa21_code"]) else row["lsoa21_code"],
                "distance_km": None if pd.isna(row["distance_km"]) else round(float(row["distance_km"]), 2),
                "href": _href(row),
            }
        )
    return rows


@router.get("/api/search", tags=["atlas"])
def api_search(project: ProjectDep, q: Annotated[str, Query(max_length=80)]) -> dict:
    """Services, LSOAs and postcodes matching ``q`` (name, code or postcode), at most 20 name matches;
    a postcode found adds its nearest services of each kind with the straight-line distance."""
    return {"results": results(project, q), "max_results": MAX_RESULTS}


@router.get("/search", response_class=HTMLResponse, include_in_schema=False)
def search_page(request: Request, project: ProjectDep, site: SiteDep, q: str = "") -> HTMLResponse:
    if not q.strip():
        return site.page(request, "search.html", q="", found=None)
    if len(q) > 80 or not re.fullmatch(QUERY, q):
        return site.page(
            request, "search.html", status=422, q="", found=None, error=INVALID[0].upper() + INVALID[1:] + "."
        )
    return site.page(request, "search.html", q=q, found=results(project, q))
