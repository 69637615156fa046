"""Scenarios: close sites or merge practices, and see where patients go (from the stored travel times)."""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse

from nearcare._errors import InputError, StoreError
from nearcare.project import Project
from nearcare.report.scenarios import scenario_section
from nearcare.scenarios import Context, Merge, Scenario, ScenarioResult, evaluate
from nearcare.web.schemas import CODE, MAX_SCENARIO_SITES, MergeRequest, ScenarioRequest
from nearcare.web.site import ProjectDep, Site, SiteDep

router = APIRouter()
# What a scenario context reads (everything but the defibrillator tables this app writes).
CONTEXT_TABLES = ("travel_runs", "travel_times", "sites", "practices", "small_areas", "gp_registrations_lsoa")


def context(site: Site, mode: str | None) -> Context:
    """The scenario context for ``mode``, loaded once per store version."""
    return site.store.cached("scenario_context", (mode,), CONTEXT_TABLES, lambda p: p.scenario_context(mode))


def run(
    site: Site, project: Project, codes: list[str], mode: str | None, merges: list[MergeRequest]
) -> ScenarioResult:
    merged = [Merge(m.from_code, m.into, m.keep_site) for m in merges]
    if not codes and not merged:
        raise InputError("a scenario closes at least one site or merges at least one practice")
    words = ([f"close {', '.join(codes)}"] if codes else []) + [
        f"merge {m.from_code} into {m.into_code}{'' if m.keep_site else ' (site closes)'}" for m in merged
    ]
    name = "; ".join(words)
    scenario = Scenario(name[0].upper() + name[1:], close=codes, merges=merged)
    project.check_scenario(scenario, where="request")
    return evaluate(context(site, mode), scenario)


def merge_request(merge_from: str, merge_into: str, keep_site: str) -> list[MergeRequest]:
    """The form's merger (none when both fields are empty); ValueError unless both are valid codes."""
    if not merge_from and not merge_into:
        return []
    return [
        MergeRequest.model_validate({"from": merge_from, "into": merge_into, "keep_site": keep_site == "yes"})
    ]


@router.post("/api/scenarios", tags=["scenarios"])
def api_scenario(body: ScenarioRequest, project: ProjectDep, site: SiteDep) -> dict:
    """Close up to 20 sites and compare before and after (from the stored travel times)."""
    try:
        result = run(site, project, body.close, body.mode, body.merge)
    except InputError as exc:
        raise HTTPException(400, str(exc)) from None
    except StoreError as exc:
        raise HTTPException(409, str(exc)) from None
    newly = result.newly_beyond.groupby(["service", "profile"], sort=False)["people_newly_beyond"].sum()
    changed = result.practices[result.practices["added_patients"].abs() > 0.5]
    return {
        "scenario": result.scenario.name,
        "mode": result.mode,
        "headline": result.headline(),
        "patients_moved": result.moved_patients,
        "patients_losing_their_practice": result.displaced_patients,
        "patients_unplaced": result.unplaced_patients,
        "patients_following_a_merger": result.merged_patients,
        "unplaced": result.unplaced.round({"patients": 1}).to_dict("records"),
        "where_patients_go": result.model.describe(),
        # "walk or drive" counts each person once; the walk and drive figures overlap
        "people_newly_beyond": {f"{s} ({p})": float(v) for (s, p), v in newly.items()},
        "practices": changed[["practice_code", "patients_before", "patients_after"]]
        .round(1)
        .to_dict("records"),
    }


def _options(project: Project) -> list[dict]:
    sites = project.sites(["gp", "pharmacy"]).sort_values(["kind", "name"], kind="stable")
    return sites[["code", "name", "kind"]].to_dict("records")


@router.get("/scenario", response_class=HTMLResponse, include_in_schema=False)
def scenario_page(request: Request, project: ProjectDep, site: SiteDep) -> HTMLResponse:
    return site.page(request, "scenario.html", options=_options(project), max_sites=MAX_SCENARIO_SITES)


@router.post("/scenario", response_class=HTMLResponse, include_in_schema=False)
def scenario_run(
    request: Request,
    project: ProjectDep,
    site: SiteDep,
    close: Annotated[list[str] | None, Form()] = None,
    merge_from: Annotated[str, Form()] = "",
    merge_into: Annotated[str, Form()] = "",
    keep_site: Annotated[str, Form()] = "yes",
    csrf_token: Annotated[str, Form()] = "",
) -> HTMLResponse:
    site.check_csrf(request, csrf_token)
    options = _options(project)
    codes = close or []
    merges = []
    error = None
    try:
        merges = merge_request(merge_from, merge_into, keep_site)
    except ValueError:
        error = "To merge, choose both practices."
    if not codes and not merges and error is None:
        error = "Choose at least one practice or pharmacy to close, or two practices to merge."
    elif len(codes) > MAX_SCENARIO_SITES:
        error = f"Choose at most {MAX_SCENARIO_SITES} sites at a time."
    elif any(not re.fullmatch(CODE[1:-1], c) for c in codes):
        error = "A site code is not valid."
    if error is None:
        try:
            result = run(site, project, codes, None, merges)
            section = scenario_section(project.store, result)
            return site.page(
                request,
                "scenario.html",
                options=options,
                max_sites=MAX_SCENARIO_SITES,
                chosen=codes,
                section=section,
                download_query=urlencode(
                    [("close", c) for c in codes]
                    + [
                        ("merge_from", merge_from),
                        ("merge_into", merge_into),
                        ("keep_site", "yes" if keep_site == "yes" else "no"),
                    ]
                    * bool(merges)
                ),
            )
        except (InputError, StoreError) as exc:
            error = str(exc)
    return site.page(
        request,
        "scenario.html",
        status=400,
        options=options,
        max_sites=MAX_SCENARIO_SITES,
        chosen=codes,
        error=error,
    )
