"""Downloads: every result the pages show, as CSV or GeoJSON, written by the one writer
(``Project.export``), named for the store's area and the measure."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Annotated, Literal

import pandas as pd
from fastapi import APIRouter, HTTPException, Query, Response

from nearcare._errors import InputError, StoreError
from nearcare.project import Project
from nearcare.web.pages.atlas import measures
from nearcare.web.pages.equity import EQUITY_TABLES
from nearcare.web.pages.scenarios import merge_request, run
from nearcare.web.schemas import CODE, MAX_SCENARIO_SITES
from nearcare.web.site import ProjectDep, SiteDep

router = APIRouter()
Format = Literal["csv", "geojson"]
MEDIA = {"csv": "text/csv; charset=utf-8", "geojson": "application/geo+json"}


def filename(project: Project, *parts: str, fmt: str) -> str:
    """``nearcare-<area code>-<what>-<measure>.<fmt>``, in characters safe in any file system."""
    area = project.area()
    code = str(area["area_code"].iloc[0]) if len(area) else "no-area"
    words = [code, *parts]
    return "nearcare-" + "-".join(re.sub(r"[^A-Za-z0-9]+", "_", w).strip("_") for w in words if w) + f".{fmt}"


def send(project: Project, rows: pd.DataFrame, name: str, fmt: str) -> Response:
    with tempfile.TemporaryDirectory(prefix="nearcare-download-") as folder:
        path = Path(folder) / name
        try:
            project.export(rows, path, name=name)
        except InputError as exc:  # no locations for GeoJSON: say so, without the rows
            raise HTTPException(409, str(exc).split(": ", 1)[-1]) from None
        body = path.read_bytes()
    return Response(
        body, media_type=MEDIA[fmt], headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@router.get("/download/measure.{fmt}", tags=["downloads"])
def download_measure(project: ProjectDep, fmt: Format, measure: str = "imd_decile") -> Response:
    """One measure of the area map per LSOA (IMD decile, population or an access measure)."""
    available = measures(project)
    if measure not in available:
        raise HTTPException(400, "unknown measure; see /api/measures")
    column = measure.rsplit(":", 1)[-1]
    rows = project.area_measure(measure).rename(columns={"value": column})
    return send(project, rows, filename(project, "lsoa", measure.replace(":", "_"), fmt=fmt), fmt)


@router.get("/download/equity.{fmt}", tags=["downloads"])
def download_equity(project: ProjectDep, site: SiteDep, fmt: Format) -> Response:
    """The equity page's GP access per need (drive) by IMD decile: each LSOA the measure covers, with
    its decile and the decile's population-weighted mean."""
    runs = project.access_runs()
    gp_drive = runs[(runs["kind"] == "gp") & (runs["profile"] == "drive")]["mode"]
    if gp_drive.empty:
        raise HTTPException(409, "no drive access measures for GP practices yet (nearcare access)")
    mode = "drive" if (gp_drive == "drive").any() else "crowfly"  # as nearcare.equity chooses
    try:
        figures = site.store.cached(
            "equity",
            ("gp", "drive", mode, "e2sfca_need"),
            EQUITY_TABLES,
            lambda p: p.equity(kind="gp", profile="drive", mode=mode, measure="e2sfca_need"),
        )
    except (InputError, StoreError) as exc:
        raise HTTPException(409, str(exc)) from None
    means = figures.deciles["value"].rename("decile_mean_e2sfca_need")
    means.index = means.index.astype(int)
    deciles = project.area_measure("imd_decile")[["lsoa21_code", "value"]].rename(
        columns={"value": "imd_decile"}
    )
    rows = (
        project.area_measure(f"gp:drive:{mode}:e2sfca_need")
        .rename(columns={"value": "e2sfca_need"})
        .dropna(subset=["e2sfca_need"])  # the LSOAs the measure covers
        .merge(deciles, on="lsoa21_code")
        .merge(means, left_on="imd_decile", right_index=True, how="left")
    )
    return send(project, rows, filename(project, "equity_gp_drive", mode, "e2sfca_need", fmt=fmt), fmt)


@router.get("/download/defibrillators.{fmt}", tags=["downloads"])
def download_defibrillators(project: ProjectDep, fmt: Format) -> Response:
    """The defibrillator register: every known defibrillator, its status, hours and reports."""
    rows = project.defibrillators()
    return send(project, rows, filename(project, "defibrillators", fmt=fmt), fmt)


@router.get("/download/neighbourhoods.{fmt}", tags=["downloads"])
def download_neighbourhoods(project: ProjectDep, fmt: Format) -> Response:
    """Neighbourhood profiles (population, need, services, suggested team) with their outlines."""
    try:
        profiles, team = project.neighbourhood_profiles()
    except StoreError as exc:
        raise HTTPException(409, str(exc)) from None
    shapes = project.neighbourhood_shapes()[["neighbourhood", "geometry"]]
    rows = shapes.merge(profiles, on="neighbourhood", how="right")
    if isinstance(team, pd.DataFrame) and "neighbourhood" in team.columns:
        rows = rows.merge(team, on="neighbourhood", how="left", suffixes=("", "_team"))
    return send(project, rows, filename(project, "neighbourhood_profiles", fmt=fmt), fmt)


@router.get("/download/scenario.{fmt}", tags=["downloads"])
def download_scenario(
    project: ProjectDep,
    site: SiteDep,
    fmt: Format,
    close: Annotated[list[str] | None, Query(max_length=MAX_SCENARIO_SITES)] = None,
    merge_from: str = "",
    merge_into: str = "",
    keep_site: Literal["yes", "no"] = "yes",
) -> Response:
    """A scenario's practices before and after (the scenario page's result), as points."""
    codes = close or []
    if any(not re.fullmatch(CODE[1:-1], c) for c in codes):
        raise HTTPException(422, "a site code is 3 to 10 capital letters and digits")
    try:
        merges = merge_request(merge_from, merge_into, keep_site)
    except ValueError:
        raise HTTPException(422, "to merge, give both practices' codes") from None
    try:
        result = run(site, project, codes, None, merges)
    except InputError as exc:
        raise HTTPException(400, str(exc)) from None
    except StoreError as exc:
        raise HTTPException(409, str(exc)) from None
    places = pd.DataFrame(project.sites("gp")[["code", "name", "lat", "lon"]])
    rows = result.practices.merge(places, left_on="practice_code", right_on="code", how="left").drop(
        columns="code"
    )
    what = "_".join(codes[:3]) + ("_and_more" if len(codes) > 3 else "")
    merged = f"merge_{merge_from}_into_{merge_into}" if merges else ""
    return send(
        project, rows, filename(project, "scenario", "close_" + what if codes else "", merged, fmt=fmt), fmt
    )
