"""``nearcare serve``: the store in the browser, built to the NHS.UK design system, with no internet.

Server-rendered pages (NHS.UK templates from ``nhsuk-frontend-jinja``; CSS, JS and images from the
npm package ``nhsuk-frontend``; maps with npm ``leaflet``) and a JSON API under ``/api`` with an
OpenAPI schema at ``/openapi.json``. Every asset is served by the app from ``node_modules``
(installed by ``npm ci``); nothing is fetched from elsewhere. The map draws LSOA polygons with no
tile layer, so it needs no tile server.

Safety: inputs are validated (codes by pattern, coordinates to England, numbers to ranges) and
refused with a 4xx that says what is wrong and never repeats the input; queries are parameterised;
templates escape everything and the map builds its labels as text; ``guard.Guard`` answers only to
the allowed host names, refuses cross-site state changes, bodies over 1 MB and JSON with NaN,
Infinity or lone surrogates, and sends a Content-Security-Policy (scripts from this server only) and
other security headers; every form carries a signed CSRF token; a scenario request is bounded (at most ``MAX_SCENARIO_SITES`` closures, evaluated from the stored
travel times in well under a second) and a store holds one writer, guarded by a lock.
"""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path
from typing import Annotated, Literal

import pandas as pd
from fastapi import FastAPI, Form, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import ChainableUndefined, ChoiceLoader, FileSystemLoader, PackageLoader
from pydantic import BaseModel, Field

from nearcare import defib
from nearcare._errors import InputError, StoreError
from nearcare.defib import register, unregistered
from nearcare.equity import MEASURES, lsoa_equity
from nearcare.geo import from_wkb
from nearcare.neighbourhoods import check
from nearcare.report.equity import equity_sections
from nearcare.report.neighbourhoods import neighbourhood_section
from nearcare.report.scenarios import scenario_section
from nearcare.scenarios import Merge, Scenario, check_scenario, evaluate, load_context
from nearcare.store import Store
from nearcare.web.guard import CSRF_COOKIE, DEFAULT_HOSTS, CsrfTokens, Guard

MAX_SCENARIO_SITES = 20
CODE = r"^[A-Z0-9]{3,10}$"
HERE = Path(__file__).parent


def offline_stylesheet(path: Path) -> str:
    """The NHS.UK stylesheet without its remote web fonts (Frutiger is licensed and not in the npm
    package); the design system's own fallback, Arial, is used instead."""
    text = path.read_text(encoding="utf-8")
    return re.sub(r"@font-face\{[^}]*https?://[^}]*\}", "", text)


def offline_redoc(path: Path) -> str:
    """ReDoc's standalone bundle without its one remote resource: the sidebar's Redocly logo, fetched
    from cdn.redoc.ly. An empty data: URL fails to load, and ReDoc then hides the image."""
    return path.read_text(encoding="utf-8").replace('"https://cdn.redoc.ly/redoc/logo-mini.svg"', '"data:,"')


def find_assets() -> Path | None:
    """The ``node_modules`` folder with nhsuk-frontend and leaflet (NEARCARE_ASSETS, or up from here)."""
    if os.environ.get("NEARCARE_ASSETS"):
        path = Path(os.environ["NEARCARE_ASSETS"])
        return path if (path / "nhsuk-frontend").exists() else None
    for parent in [Path.cwd(), *HERE.parents]:
        if (parent / "node_modules" / "nhsuk-frontend" / "dist").exists():
            return parent / "node_modules"
    return None


class MergeRequest(BaseModel):
    from_code: Annotated[str, Field(pattern=CODE, alias="from")]
    into: Annotated[str, Field(pattern=CODE)]
    keep_site: bool = True


class ScenarioRequest(BaseModel):
    close: list[Annotated[str, Field(pattern=CODE)]] = Field(
        default_factory=list, max_length=MAX_SCENARIO_SITES, description="Site codes to close"
    )
    merge: list[MergeRequest] = Field(
        default_factory=list, max_length=MAX_SCENARIO_SITES, description="Practices that join others"
    )
    mode: Literal["crowfly", "drive"] | None = None


class DefibReport(BaseModel):
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)
    postcode: Annotated[str, Field(max_length=10, pattern=r"^[A-Za-z0-9 ]+$")] | None = None
    access: Literal["public", "restricted"]
    hours: Annotated[str, Field(min_length=1, max_length=120)]
    looks_registered: bool | None = None
    note: Annotated[str, Field(max_length=300)] | None = None


class Data:
    """The store behind the app: one connection, one request at a time (DuckDB connections are not thread-safe)."""

    def __init__(self, path: Path) -> None:
        self.store = Store(path)
        self.lock = threading.Lock()
        self._context = {}
        self.defib_coverage = None  # computed on first view, dropped when a report changes the register

    def df(self, sql: str, params: list | None = None) -> pd.DataFrame:
        with self.lock:
            return self.store.df(sql, params)

    def context(self, mode: str | None):
        """The scenario context (travel times, flows, choice model), loaded once per mode."""

        with self.lock:
            if mode not in self._context:
                self._context[mode] = load_context(self.store, mode=mode)
            return self._context[mode]


def _geojson(frame: pd.DataFrame, geometry: list, properties: list[str]) -> dict:
    features = []
    for geom, (_, row) in zip(geometry, frame.iterrows(), strict=True):
        props = {
            k: (None if pd.isna(row[k]) else (row[k].item() if hasattr(row[k], "item") else row[k]))
            for k in properties
        }
        features.append({"type": "Feature", "geometry": geom, "properties": props})
    return {"type": "FeatureCollection", "features": features}


def create_app(store_path: str | Path, allowed_hosts: list[str] | tuple[str, ...] = DEFAULT_HOSTS) -> FastAPI:
    """The app for one store; it answers only to ``allowed_hosts`` (Host header names, without port)."""
    import shapely

    store_path = Path(store_path)
    if not store_path.exists():
        raise StoreError(f"{store_path}: no such store (run `nearcare demo` or `nearcare build` first)")
    data = Data(store_path)
    app = FastAPI(
        title="nearcare",
        description="Primary care and neighbourhood services: atlas, access, equity, "
        "scenarios and defibrillators, from open data.",
        version="0.1.0",
        docs_url=None,
        redoc_url=None,
    )  # served below from local assets, not FastAPI's CDN defaults
    app.add_middleware(Guard, allowed_hosts=allowed_hosts)
    csrf = CsrfTokens()
    assets = find_assets()
    if assets is not None:
        stylesheet = offline_stylesheet(
            assets / "nhsuk-frontend" / "dist" / "nhsuk" / "nhsuk-frontend.min.css"
        )

        @app.get("/vendor/nhsuk/nhsuk-frontend.min.css", include_in_schema=False)
        def nhsuk_css() -> Response:
            return Response(stylesheet, media_type="text/css")

        app.mount(
            "/assets",
            StaticFiles(directory=assets / "nhsuk-frontend" / "dist" / "nhsuk" / "assets"),
            name="assets",
        )
        app.mount(
            "/vendor/nhsuk", StaticFiles(directory=assets / "nhsuk-frontend" / "dist" / "nhsuk"), name="nhsuk"
        )
        app.mount("/vendor/leaflet", StaticFiles(directory=assets / "leaflet" / "dist"), name="leaflet")
    if assets is not None and (assets / "swagger-ui-dist").is_dir() and (assets / "redoc").is_dir():
        app.mount("/vendor/swagger-ui", StaticFiles(directory=assets / "swagger-ui-dist"), name="swagger-ui")
        redoc_script = offline_redoc(assets / "redoc" / "bundles" / "redoc.standalone.js")

        @app.get("/vendor/redoc/redoc.standalone.js", include_in_schema=False)
        def redoc_js() -> Response:
            return Response(redoc_script, media_type="text/javascript")

        @app.get("/docs", include_in_schema=False)
        def swagger_ui(request: Request) -> HTMLResponse:
            page = get_swagger_ui_html(
                openapi_url=app.openapi_url,
                title=f"{app.title} API",
                swagger_js_url="/vendor/swagger-ui/swagger-ui-bundle.js",
                swagger_css_url="/vendor/swagger-ui/swagger-ui.css",
                swagger_favicon_url="/static/nearcare-mark.svg",
                swagger_ui_parameters={"validatorUrl": None},
            )  # no call to swagger.io
            # FastAPI's page starts Swagger UI with one inline script: give it this request's CSP nonce.
            html = page.body.decode().replace("<script>", f'<script nonce="{request.state.csp_nonce}">')
            return HTMLResponse(html)

        @app.get("/redoc", include_in_schema=False)
        def redoc() -> HTMLResponse:
            return get_redoc_html(
                openapi_url=app.openapi_url,
                title=f"{app.title} API",
                redoc_js_url="/vendor/redoc/redoc.standalone.js",
                redoc_favicon_url="/static/nearcare-mark.svg",
                with_google_fonts=False,
            )

    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.loader = ChoiceLoader(
        [FileSystemLoader(HERE / "templates"), PackageLoader("nhsuk_frontend_jinja", "templates")]
    )
    templates.env.undefined = ChainableUndefined  # the NHS.UK macros read optional nested parameters
    label_row = data.df("SELECT label, area_code FROM area")
    area_label = (
        f"{label_row['label'].iloc[0]} ({label_row['area_code'].iloc[0]})"
        if len(label_row)
        else "No area built"
    )

    def page(request: Request, name: str, status: int = 200, **context) -> HTMLResponse:
        token = request.cookies.get(CSRF_COOKIE)
        token = token if csrf.valid(token) else csrf.new()
        response = templates.TemplateResponse(
            request,
            name,
            {
                "area_label": area_label,
                "assets_missing": assets is None,
                "csrf_token": token,
                "cspNonce": request.state.csp_nonce,
                **context,
            },
            status_code=status,
        )
        response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict")
        return response

    def check_csrf(request: Request, field: str) -> None:
        if not csrf.check(request.cookies.get(CSRF_COOKIE), field):
            raise HTTPException(
                403, "This form has expired or did not come from this site: reload the page and try again."
            )

    # --- measures shown on the overview map ---------------------------------------------------
    def measures() -> dict[str, str]:
        available = {"imd_decile": "IMD 2025 decile (1 = most deprived)", "population": "Population"}
        runs = data.df("SELECT DISTINCT kind, profile, mode FROM access ORDER BY 1, 2, 3")
        for _, r in runs.iterrows():
            how = "crow-fly" if r["mode"] == "crowfly" else "road network"
            available[f"{r['kind']}:{r['profile']}:{r['mode']}:nearest_minutes"] = (
                f"Minutes to the nearest {r['kind']} ({r['profile']}, {how})"
            )
            available[f"{r['kind']}:{r['profile']}:{r['mode']}:e2sfca_need"] = (
                f"{r['kind'].upper() if r['kind'] == 'gp' else r['kind'].capitalize()} access per need (E2SFCA, {r['profile']}, {how})"
            )
        return available

    def area_values(measure: str) -> pd.DataFrame:
        if measure in ("imd_decile", "population"):
            return data.df(f"SELECT lsoa21_code, lsoa21_name, {measure} AS value, boundary FROM small_areas")
        kind, profile, mode, column = measure.split(":")
        return data.df(
            f"SELECT s.lsoa21_code, s.lsoa21_name, a.{column} AS value, s.boundary FROM small_areas s "
            "JOIN access a USING (lsoa21_code) WHERE a.kind = ? AND a.profile = ? AND a.mode = ?",
            [kind, profile, mode],
        )

    # --- JSON API -------------------------------------------------------------------------------
    @app.get("/api/area", tags=["atlas"])
    def api_area() -> dict:
        """The built area and its counts."""
        counts = data.df("SELECT kind, count(*) AS n FROM sites GROUP BY 1")
        return {
            "label": area_label,
            "lsoas": int(data.df("SELECT count(*) AS n FROM small_areas")["n"].iloc[0]),
            "population": float(data.df("SELECT sum(population) AS p FROM small_areas")["p"].iloc[0] or 0),
            "sites": dict(zip(counts["kind"], counts["n"].astype(int), strict=True)),
        }

    @app.get("/api/measures", tags=["atlas"])
    def api_measures() -> dict[str, str]:
        """Measures that can colour the area map (key -> description)."""
        return measures()

    @app.get("/api/areas.geojson", tags=["atlas"])
    def api_areas(measure: str = "imd_decile") -> dict:
        """LSOA polygons (GeoJSON, WGS84) with the chosen measure as ``value``."""
        if measure not in measures():
            raise HTTPException(400, f"unknown measure {measure!r}; see /api/measures")
        frame = area_values(measure)
        geometry = [
            json.loads(shapely.to_geojson(shapely.set_precision(g, 1e-5)))
            for g in from_wkb(frame["boundary"])
        ]
        return _geojson(frame, geometry, ["lsoa21_code", "lsoa21_name", "value"])

    @app.get("/api/organisations", tags=["atlas"])
    def api_organisations(kind: Literal["gp", "pharmacy", "dentist", "optometrist"] | None = None) -> dict:
        """Services as GeoJSON points (those not geocoded have no geometry)."""
        sql = "SELECT code, name, kind, postcode, lat, lon FROM sites"
        frame = data.df(sql + (" WHERE kind = ?" if kind else "") + " ORDER BY code", [kind] if kind else [])
        geometry = [
            None if pd.isna(lat) else {"type": "Point", "coordinates": [round(lon, 6), round(lat, 6)]}
            for lat, lon in zip(frame["lat"], frame["lon"], strict=True)
        ]
        return _geojson(frame, geometry, ["code", "name", "kind", "postcode"])

    def organisation(code: str) -> dict:
        if not re.fullmatch(r"[A-Z0-9]{3,12}", code):
            raise HTTPException(422, "an organisation code is 3 to 12 capital letters and digits")
        site = data.df("SELECT * FROM sites WHERE code = ?", [code])
        if site.empty:
            raise HTTPException(404, f"no organisation {code} in this area")
        row = site.iloc[0]
        result = {
            "code": code,
            "name": row["name"],
            "kind": row["kind"],
            "postcode": row["postcode"],
            "sub_icb_code": row["sub_icb_code"],
            "lsoa21_code": row["lsoa21_code"],
            "lat": None if pd.isna(row["lat"]) else float(row["lat"]),
            "lon": None if pd.isna(row["lon"]) else float(row["lon"]),
        }
        practice = data.df("SELECT * FROM practices WHERE practice_code = ?", [code])
        if len(practice):
            p = practice.iloc[0]
            for key in (
                "patients",
                "gp_fte",
                "nurse_fte",
                "patients_per_gp_fte",
                "pct_65_plus",
                "imd_quintile_england",
            ):
                result[key] = None if pd.isna(p[key]) else float(p[key])
            result["list_size_date"] = None if pd.isna(p["list_size_date"]) else str(p["list_size_date"])[:10]
        return result

    @app.get("/api/organisations/{code}", tags=["atlas"])
    def api_organisation(code: str) -> dict:
        """One organisation: where it is and, for a practice, list size and workforce."""
        return organisation(code)

    @app.get("/api/organisations/{code}/serves.geojson", tags=["atlas"])
    def api_serves(code: str) -> dict:
        """LSOAs a practice serves: its modelled (or real) registered patients per LSOA."""
        org = organisation(code)
        if org["kind"] != "gp":
            raise HTTPException(400, "only GP practices have registered patients")
        try:
            flows = data.context(None).flows
        except StoreError as exc:
            raise HTTPException(409, str(exc)) from None
        mine = flows[(flows["destination_id"] == code) & (flows["patients"] >= 1)][["origin_id", "patients"]]
        frame = data.df("SELECT lsoa21_code, lsoa21_name, boundary FROM small_areas").merge(
            mine.rename(columns={"origin_id": "lsoa21_code", "patients": "value"}), on="lsoa21_code"
        )
        geometry = [
            json.loads(shapely.to_geojson(shapely.set_precision(g, 1e-5)))
            for g in from_wkb(frame["boundary"])
        ]
        return _geojson(frame, geometry, ["lsoa21_code", "lsoa21_name", "value"])

    @app.get("/api/equity", tags=["equity"])
    def api_equity(
        kind: Literal["gp", "pharmacy", "dentist", "optometrist"] = "gp",
        profile: Literal["walk", "drive"] = "drive",
        mode: Literal["crowfly", "walk", "drive"] | None = None,
        measure: Literal["e2sfca_need", "e2sfca", "nearest_minutes", "services_within"] = "e2sfca_need",
    ) -> dict:
        """Inequality of an access measure by deprivation: deciles, indices and the verdict."""

        try:
            with data.lock:
                figures = lsoa_equity(data.store, kind=kind, profile=profile, mode=mode, measure=measure)
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

    def run_closure(codes: list[str], mode: str | None, merges: list | None = None):
        merges = [Merge(m.from_code, m.into, m.keep_site) for m in (merges or [])]
        if not codes and not merges:
            raise InputError("a scenario closes at least one site or merges at least one practice")
        words = ([f"close {', '.join(codes)}"] if codes else []) + [
            f"merge {m.from_code} into {m.into_code}{'' if m.keep_site else ' (site closes)'}" for m in merges
        ]
        name = "; ".join(words)
        scenario = Scenario(name[0].upper() + name[1:], close=codes, merges=merges)
        with data.lock:
            check_scenario(data.store, scenario, where="request")
        ctx = data.context(mode)
        return evaluate(ctx, scenario)

    @app.post("/api/scenarios", tags=["scenarios"])
    def api_scenario(request: ScenarioRequest) -> dict:
        """Close up to 20 sites and compare before and after (from the stored travel times)."""
        try:
            result = run_closure(request.close, request.mode, request.merge)
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

    @app.get("/api/defibrillators", tags=["defibrillators"])
    def api_defibrillators() -> dict:
        """Known defibrillators with status (GeoJSON points)."""

        with data.lock:
            frame = register(data.store)
        geometry = [
            {"type": "Point", "coordinates": [round(lon, 6), round(lat, 6)]}
            for lat, lon in zip(frame["lat"], frame["lon"], strict=True)
        ]
        return _geojson(frame, geometry, ["defib_id", "status", "access", "hours", "reports"])

    def add_report(report: DefibReport) -> tuple[str, bool]:
        with data.lock:
            added = defib.add_report(
                data.store,
                defib.Report(
                    report.lat,
                    report.lon,
                    report.postcode,
                    report.access,
                    report.hours,
                    report.looks_registered,
                    report.note,
                ),
            )
            data.defib_coverage = None
            return added

    def defib_summary() -> dict:
        """Coverage lines for the page: shares of assessed residents, and who could not be assessed."""

        with data.lock:
            if data.defib_coverage is None:
                try:
                    cov = defib.coverage(data.store)
                except StoreError as exc:
                    return {"missing": str(exc)}
                data.defib_coverage = {
                    "lines": [cov.summary(t) for t in defib.TIMES],
                    "not_assessed": cov.not_assessed_note(),
                    "deserts": len(defib.deserts(cov)),
                    "distance_m": cov.distance_m,
                }
            return data.defib_coverage

    @app.post("/api/defibrillators/reports", tags=["defibrillators"], status_code=201)
    def api_report(report: DefibReport) -> dict:
        """Report a defibrillator: matched to a known one within 50 m or added; bad reports are refused."""
        try:
            defib_id, matched = add_report(report)
        except InputError as exc:
            raise HTTPException(400, str(exc)) from None
        return {"defib_id": defib_id, "matched_known": matched}

    @app.get("/api/neighbourhoods.geojson", tags=["neighbourhoods"])
    def api_neighbourhoods() -> dict:
        """Neighbourhoods as dissolved polygons with their population."""
        frame = data.df(
            "SELECT n.neighbourhood, s.population, s.boundary FROM neighbourhoods n JOIN small_areas s USING (lsoa21_code)"
        )
        if frame.empty:
            raise HTTPException(
                409, "no neighbourhoods designed or loaded yet (nearcare neighbourhoods design)"
            )
        shapes = (
            frame.assign(geometry=list(from_wkb(frame["boundary"])))
            .groupby("neighbourhood")
            .agg(
                population=("population", "sum"), geometry=("geometry", lambda g: shapely.union_all(list(g)))
            )
            .reset_index()
        )
        geometry = [
            json.loads(shapely.to_geojson(shapely.set_precision(g, 1e-5))) for g in shapes["geometry"]
        ]
        return _geojson(shapes, geometry, ["neighbourhood", "population"])

    # --- pages ----------------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def overview(request: Request):
        summary = api_area()
        return page(request, "overview.html", summary=summary, measures=measures())

    @app.get("/organisations/{code}", response_class=HTMLResponse, include_in_schema=False)
    def organisation_page(request: Request, code: str):
        return page(request, "organisation.html", org=organisation(code))

    @app.get("/equity", response_class=HTMLResponse, include_in_schema=False)
    def equity_page(request: Request):
        with data.lock:
            sections = equity_sections(data.store)
        return page(
            request,
            "sections.html",
            title="Equity: does supply follow need?",
            sections=sections,
            missing="No access measures yet: run `nearcare access` (the demo does)."
            if not sections
            else None,
        )

    @app.get("/neighbourhoods", response_class=HTMLResponse, include_in_schema=False)
    def neighbourhoods_page(request: Request):
        try:
            with data.lock:
                sections = [neighbourhood_section(data.store, check(data.store))]
        except StoreError:
            sections = []
        return page(
            request,
            "sections.html",
            title="Neighbourhoods",
            sections=sections,
            missing="No neighbourhoods yet: run `nearcare neighbourhoods design` or `load`."
            if not sections
            else None,
        )

    @app.get("/scenario", response_class=HTMLResponse, include_in_schema=False)
    def scenario_page(request: Request):
        options = data.df(
            "SELECT code, name, kind FROM sites WHERE kind IN ('gp', 'pharmacy') ORDER BY kind, name"
        )
        return page(
            request, "scenario.html", options=options.to_dict("records"), max_sites=MAX_SCENARIO_SITES
        )

    @app.post("/scenario", response_class=HTMLResponse, include_in_schema=False)
    def scenario_run(
        request: Request,
        close: Annotated[list[str] | None, Form()] = None,
        merge_from: Annotated[str, Form()] = "",
        merge_into: Annotated[str, Form()] = "",
        keep_site: Annotated[str, Form()] = "yes",
        csrf_token: Annotated[str, Form()] = "",
    ):
        check_csrf(request, csrf_token)

        options = data.df(
            "SELECT code, name, kind FROM sites WHERE kind IN ('gp', 'pharmacy') ORDER BY kind, name"
        )
        codes = close or []
        merges = []
        error = None
        if merge_from or merge_into:
            try:
                merges = [
                    MergeRequest(**{"from": merge_from, "into": merge_into, "keep_site": keep_site == "yes"})
                ]
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
                result = run_closure(codes, None, merges)
                with data.lock:
                    section = scenario_section(data.store, result)
                return page(
                    request,
                    "scenario.html",
                    options=options.to_dict("records"),
                    max_sites=MAX_SCENARIO_SITES,
                    chosen=codes,
                    section=section,
                )
            except (InputError, StoreError) as exc:
                error = str(exc)
        return page(
            request,
            "scenario.html",
            status=400,
            options=options.to_dict("records"),
            max_sites=MAX_SCENARIO_SITES,
            chosen=codes,
            error=error,
        )

    @app.get("/defibrillators", response_class=HTMLResponse, include_in_schema=False)
    def defib_page(request: Request, reported: str | None = None):
        with data.lock:
            listed = unregistered(data.store)
        return page(
            request,
            "defibrillators.html",
            unregistered=listed.to_dict("records"),
            reported=reported,
            form={},
            errors={},
            coverage=defib_summary(),
        )

    @app.post("/defibrillators", response_class=HTMLResponse, include_in_schema=False)
    def defib_form(
        request: Request,
        access: Annotated[str, Form()] = "",
        hours: Annotated[str, Form()] = "",
        postcode: Annotated[str, Form()] = "",
        lat: Annotated[str, Form()] = "",
        lon: Annotated[str, Form()] = "",
        registered: Annotated[str, Form()] = "",
        note: Annotated[str, Form()] = "",
        csrf_token: Annotated[str, Form()] = "",
    ):
        check_csrf(request, csrf_token)

        form = {
            "access": access,
            "hours": hours,
            "postcode": postcode,
            "lat": lat,
            "lon": lon,
            "registered": registered,
            "note": note,
        }
        errors = {}
        if access not in ("public", "restricted"):
            errors["access"] = "Say whether the defibrillator is public or restricted"
        if not hours.strip():
            errors["hours"] = "Enter the hours it is available, for example 24/7"
        numbers = {}
        for name, value in (("lat", lat), ("lon", lon)):
            try:
                numbers[name] = float(value) if value.strip() else None
            except ValueError:
                errors[name] = f"Enter the {'latitude' if name == 'lat' else 'longitude'} as a number"
        if (
            not postcode.strip()
            and (numbers.get("lat") is None or numbers.get("lon") is None)
            and "lat" not in errors
        ):
            errors["postcode"] = "Enter a postcode, or a latitude and longitude"
        if not errors:
            try:
                report = DefibReport(
                    lat=numbers.get("lat"),
                    lon=numbers.get("lon"),
                    postcode=postcode.strip() or None,
                    access=access,
                    hours=hours.strip(),
                    note=note.strip()[:300] or None,
                    looks_registered={"yes": True, "no": False}.get(registered),
                )
                defib_id, _matched = add_report(report)
                return RedirectResponse(f"/defibrillators?reported={defib_id}", status_code=303)
            except InputError as exc:
                where = (
                    exc.field
                    if exc.field in ("hours", "access")
                    else "postcode"
                    if exc.field in ("postcode", None)
                    else "lat"
                )
                errors[where] = exc.problem
            except ValueError as exc:  # pydantic's checks
                errors["postcode"] = str(exc).splitlines()[-1][:200]
        with data.lock:
            listed = unregistered(data.store)
        return page(
            request,
            "defibrillators.html",
            status=400,
            unregistered=listed.to_dict("records"),
            form=form,
            errors=errors,
            reported=None,
            coverage=defib_summary(),
        )

    @app.exception_handler(HTTPException)
    def http_error(request: Request, exc: HTTPException):
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
        return page(request, "error.html", status=exc.status_code, message=exc.detail)

    @app.exception_handler(RequestValidationError)
    def invalid_request(request: Request, exc: RequestValidationError):
        # Where and why, never the input itself: it may be huge, or not encodable as JSON.
        problems = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ][:20]
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": problems}, status_code=422)
        return page(
            request,
            "error.html",
            status=422,
            message="; ".join(
                f"{'.'.join(str(x) for x in p['loc'][1:]) or 'request'}: {p['msg']}" for p in problems
            ),
        )

    return app
