"""The overview: the area, its counts and the measures that can colour its map."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import HTMLResponse

from nearcare.project import Project
from nearcare.web.site import ProjectDep, SiteDep, classed_geojson, geojson_response, to_geojson

router = APIRouter()


def measures(project: Project) -> dict[str, str]:
    available = {"imd_decile": "IMD 2025 decile (1 = most deprived)", "population": "Population"}
    for _, r in project.access_runs().iterrows():
        how = "crow-fly" if r["mode"] == "crowfly" else "road network"
        kind = r["kind"].upper() if r["kind"] == "gp" else r["kind"].capitalize()
        key = f"{r['kind']}:{r['profile']}:{r['mode']}"
        available[f"{key}:nearest_minutes"] = f"Minutes to the nearest {r['kind']} ({r['profile']}, {how})"
        available[f"{key}:e2sfca_need"] = f"{kind} access per need (E2SFCA, {r['profile']}, {how})"
    return available


def measure_units(measure: str) -> str:
    """The units a measure's legend names (deciles, and E2SFCA's ratio of supply to need, have none)."""
    if measure.endswith(":nearest_minutes"):
        return "min"
    return "people" if measure == "population" else ""


def area_summary(project: Project, label: str) -> dict:
    counts = project.area_counts().iloc[0]
    sites = project.site_counts()
    return {
        "label": label,
        "lsoas": int(counts["lsoas"]),
        "population": float(counts["population"]),
        "sites": dict(zip(sites["kind"], sites["sites"].astype(int), strict=True)),
    }


@router.get("/api/area", tags=["atlas"])
def api_area(project: ProjectDep, site: SiteDep) -> dict:
    """The built area and its counts."""
    return area_summary(project, site.area_label)


@router.get("/api/measures", tags=["atlas"])
def api_measures(project: ProjectDep) -> dict[str, str]:
    """Measures that can colour the area map (key -> description)."""
    return measures(project)


@router.get("/api/areas.geojson", tags=["atlas"])
def api_areas(project: ProjectDep, site: SiteDep, measure: str = "imd_decile") -> Response:
    """LSOA polygons (GeoJSON, WGS84) with the chosen measure as ``value``."""
    available = measures(project)
    if measure not in available:
        raise HTTPException(400, "unknown measure; see /api/measures")  # never the input itself
    text = site.store.cached(
        "area_layer",
        (measure,),
        ("small_areas", "access"),
        lambda opened: classed_geojson(
            opened.area_measure(measure),
            ["lsoa21_code", "lsoa21_name", "value"],
            title=available[measure],
            units=measure_units(measure),
        ),
    )
    return geojson_response(text)


def _outlines(project: Project) -> str:
    shapes = project.local_authorities()
    points = shapes.geometry.representative_point()
    shapes = shapes.assign(label_lat=points.y.round(5), label_lon=points.x.round(5))
    shapes["geometry"] = shapes.geometry.simplify(0.0005)  # outlines for context: about 50 m is plenty
    return to_geojson(shapes, ["lad_code", "lad_name", "label_lat", "label_lon"], grid=1e-4)


@router.get("/api/local-authorities.geojson", tags=["atlas"])
def api_local_authorities(site: SiteDep) -> Response:
    """Local authority outlines and names (from the bundled LSOA boundaries), for context on maps."""
    return geojson_response(site.store.cached("local_authorities", (), ("small_areas",), _outlines))


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def overview(request: Request, project: ProjectDep, site: SiteDep) -> HTMLResponse:
    return site.page(
        request, "overview.html", summary=area_summary(project, site.area_label), measures=measures(project)
    )
