"""The web app in-process: every API endpoint (with bad input), the pages, escaping and accessibility basics."""

from __future__ import annotations

import re
import shutil
import warnings
from html.parser import HTMLParser
from itertools import pairwise

import pytest

from nearcare.store import Store

warnings.filterwarnings("ignore", message=".*httpx.*")
from fastapi.testclient import TestClient  # noqa: E402

from nearcare.web.app import MAX_SCENARIO_SITES, create_app  # noqa: E402

PAGES = [
    "/",
    "/organisations/C82044",
    "/organisations/FC826",
    "/equity",
    "/scenario",
    "/defibrillators",
    "/neighbourhoods",
]


@pytest.fixture(scope="module")
def web_store(demo, tmp_path_factory):
    path = tmp_path_factory.mktemp("web") / "web.duckdb"
    shutil.copyfile(demo.store_path, path)
    with Store(path) as store:  # an organisation whose name would run as script if not escaped
        store.con.execute(
            "INSERT INTO sites (code, name, kind, status, source_id) VALUES "
            "('XSS01', '<script>alert(1)</script>', 'dentist', 'active', 1)"
        )
    return path


@pytest.fixture(scope="module")
def client(web_store):
    return TestClient(create_app(web_store), base_url="http://127.0.0.1")


def form_token(client, url: str) -> str:
    """The CSRF token of the form on ``url`` (the client keeps the matching cookie)."""
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(url).text).group(1)


def test_area_measures_and_layers(client):
    area = client.get("/api/area").json()
    assert area["lsoas"] == 634 and area["sites"]["gp"] == 128
    measures = client.get("/api/measures").json()
    assert "imd_decile" in measures and "gp:drive:crowfly:e2sfca_need" in measures
    for measure in ("imd_decile", "gp:drive:drive:nearest_minutes"):
        layer = client.get("/api/areas.geojson", params={"measure": measure}).json()
        assert layer["type"] == "FeatureCollection" and layer["features"][0]["geometry"]["type"] in (
            "Polygon",
            "MultiPolygon",
        )
    assert len(client.get("/api/areas.geojson").json()["features"]) == 634
    bad = client.get("/api/areas.geojson", params={"measure": "boundary; DROP TABLE sites"})
    assert bad.status_code == 400 and "unknown measure" in bad.json()["detail"]


def test_organisations(client):
    practices = client.get("/api/organisations", params={"kind": "gp"}).json()["features"]
    assert len(practices) == 128 and all(f["properties"]["kind"] == "gp" for f in practices)
    assert client.get("/api/organisations", params={"kind": "hospital"}).status_code == 422
    one = client.get("/api/organisations/C82044").json()
    assert one["name"] == "EMPINGHAM MEDICAL CENTRE" and one["patients"] == 9443
    assert client.get("/api/organisations/ZZZ99").status_code == 404
    assert client.get("/api/organisations/not-a-code").status_code == 422
    serves = client.get("/api/organisations/C82044/serves.geojson").json()
    assert serves["features"] and sum(f["properties"]["value"] for f in serves["features"]) > 1000
    assert client.get("/api/organisations/FC826/serves.geojson").status_code == 400  # a pharmacy


def test_equity(client):
    equity = client.get("/api/equity", params={"kind": "gp", "profile": "drive", "mode": "crowfly"}).json()
    assert set(equity["deciles"]) == {str(d) for d in range(1, 11)} or set(
        map(int, equity["deciles"])
    ) == set(range(1, 11))
    assert (
        equity["inverse_care_law"] in ("holds", "reversed", "unclear")
        and "inverse care law" in equity["verdict"].lower()
    )
    assert client.get("/api/equity", params={"measure": "nonsense"}).status_code == 422


def test_scenarios_are_validated_and_bounded(client):
    result = client.post("/api/scenarios", json={"close": ["C82044"], "mode": "drive"})
    assert result.status_code == 200, result.text
    body = result.json()
    assert body["patients_moved"] == pytest.approx(9443, abs=1e-6) and "modelled" in body["where_patients_go"]
    assert client.post("/api/scenarios", json={"close": []}).status_code == 400  # nothing to do
    merged = client.post(
        "/api/scenarios",
        json={"merge": [{"from": "C82649", "into": "C82010", "keep_site": True}], "mode": "drive"},
    )
    assert merged.status_code == 200, merged.text
    lists = {p["practice_code"]: p for p in merged.json()["practices"]}
    assert (
        lists["C82010"]["patients_after"]
        == lists["C82010"]["patients_before"] + lists["C82649"]["patients_before"]
    )
    assert (
        client.post("/api/scenarios", json={"merge": [{"from": "C82649", "into": "FC826"}]}).status_code
        == 400
    )
    cycle = client.post(
        "/api/scenarios",
        json={"merge": [{"from": "C82649", "into": "C82010"}, {"from": "C82010", "into": "C82649"}]},
    )
    assert cycle.status_code == 400 and "[[merge]] 1: the mergers form a cycle" in cycle.json()["detail"]
    # Closing Uppingham crow-fly: the walk and drive counts overlap; each person is counted once.
    newly = client.post("/api/scenarios", json={"close": ["C82077"], "mode": "crowfly"}).json()[
        "people_newly_beyond"
    ]
    walk, drive, either = (newly[f"GP practice ({p})"] for p in ("walk", "drive", "walk or drive"))
    assert max(walk, drive) <= either < walk + drive
    assert client.post("/api/scenarios", json={"close": ["nope!"]}).status_code == 422
    assert (
        client.post("/api/scenarios", json={"close": ["C82044"] * (MAX_SCENARIO_SITES + 1)}).status_code
        == 422
    )
    unknown = client.post("/api/scenarios", json={"close": ["ZZZ99"]})
    assert unknown.status_code == 400 and "unknown site code" in unknown.json()["detail"]
    everyone = [f["properties"]["code"] for f in client.get("/api/organisations?kind=gp").json()["features"]][
        :MAX_SCENARIO_SITES
    ]
    assert client.post("/api/scenarios", json={"close": everyone}).status_code == 200


def test_defibrillator_reports(client, web_store):
    assert len(client.get("/api/defibrillators").json()["features"]) >= 1
    ok = client.post(
        "/api/defibrillators/reports",
        json={"lat": 52.6583, "lon": -0.6705, "access": "public", "hours": "24/7"},
    )
    assert ok.status_code == 201 and ok.json() == {"defib_id": "osm-n5036730561", "matched_known": True}
    for bad, code in [
        ({"lat": 48.85, "lon": 2.35, "access": "public", "hours": "24/7"}, 400),
        ({"postcode": "ZZ9 9ZZ", "access": "public", "hours": "24/7"}, 400),
        ({"lat": 52.66, "lon": -0.67, "access": "anyone", "hours": "24/7"}, 422),
        ({"lat": 52.66, "lon": -0.67, "access": "public"}, 422),
        ({"lat": 952.0, "lon": -0.67, "access": "public", "hours": "24/7"}, 422),
    ]:
        assert client.post("/api/defibrillators/reports", json=bad).status_code == code


def test_neighbourhoods_layer(client):
    layer = client.get("/api/neighbourhoods.geojson").json()
    assert len(layer["features"]) == 31


def _paths(routes) -> set[str]:
    """Route paths, through the page routers the app includes (FastAPI keeps each as one entry)."""
    found = set()
    for route in routes:
        if hasattr(route, "original_router"):
            found |= _paths(route.original_router.routes)
        elif hasattr(route, "path"):
            found.add(route.path)
    return found


def test_openapi_lists_every_api_endpoint(client):
    paths = set(client.get("/openapi.json").json()["paths"])
    routes = {p for p in _paths(client.app.routes) if p.startswith("/api/")}
    assert len(routes) >= 11 and routes <= paths  # every /api/ route of the old single function


@pytest.mark.parametrize("url", PAGES)
def test_pages_render_without_remote_assets(client, url):
    response = client.get(url)
    assert response.status_code == 200, response.text[:500]
    assert not re.findall(r'(?:src|href|action)="https?://', response.text)
    assert "/vendor/nhsuk/nhsuk-frontend.min.css" in response.text


def test_stylesheets_and_scripts_fetch_nothing_remote(client):
    for url in (
        "/vendor/nhsuk/nhsuk-frontend.min.css",
        "/vendor/leaflet/leaflet.css",
        "/static/nearcare.css",
    ):
        text = client.get(url).text
        assert text and not re.findall(r"url\(\s*['\"]?https?://", text), url


def test_output_is_escaped(client):
    page = client.get("/organisations/XSS01").text
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_page_forms_refuse_bad_input_and_store_nothing(client, web_store):
    token = {"csrf_token": form_token(client, "/scenario")}
    assert client.post("/scenario", data=token).status_code == 400
    assert "There is a problem" in client.post("/scenario", data=token).text
    done = client.post("/scenario", data={"close": ["C82044"], **token})
    assert done.status_code == 200 and "Scenario: Close C82044" in done.text
    merged = client.post(
        "/scenario", data={"merge_from": "C82649", "merge_into": "C82010", "keep_site": "no", **token}
    )
    assert merged.status_code == 200 and "Merge C82649 into C82010 (site closes)" in merged.text
    half = client.post("/scenario", data={"merge_from": "C82649", **token})
    assert half.status_code == 400 and "choose both practices" in half.text
    before = client.get("/api/defibrillators").json()
    bad = client.post("/defibrillators", data={"access": "", "hours": "", "lat": "north", "lon": "", **token})
    assert (
        bad.status_code == 400
        and "Tap the map where it is, or enter its postcode" in bad.text
        and "Choose when it is available" in bad.text
    )
    outside = client.post(
        "/defibrillators", data={"access": "public", "hours": "24/7", "lat": "48.85", "lon": "2.35", **token}
    )
    assert outside.status_code == 400 and "not in England" in outside.text
    assert client.get("/api/defibrillators").json() == before
    good = client.post(
        "/defibrillators",
        data={"access": "public", "hours": "24/7", "lat": "52.70", "lon": "-0.60", **token},
        follow_redirects=False,
    )
    assert good.status_code == 303 and "reported=report-" in good.headers["location"]
    assert len(client.get("/api/defibrillators").json()["features"]) == len(before["features"]) + 1


class _Structure(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.headings: list[int] = []
        self.labels: set[str] = set()
        self.fields: list[str | None] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if re.fullmatch(r"h[1-6]", tag):
            self.headings.append(int(tag[1]))
        if tag == "label" and attrs.get("for"):
            self.labels.add(attrs["for"])
        if tag in ("input", "select", "textarea") and attrs.get("type") not in ("hidden", "submit"):
            self.fields.append(attrs.get("id"))


@pytest.mark.parametrize("url", PAGES)
def test_accessibility_basics(client, url):
    parsed = _Structure()
    parsed.feed(client.get(url).text)
    assert parsed.headings.count(1) == 1 and parsed.headings[0] == 1
    for before, after in pairwise(parsed.headings):
        assert after <= before + 1, f"heading h{after} follows h{before} on {url}"
    for field in parsed.fields:
        assert field and field in parsed.labels, f"form field {field!r} on {url} has no label"


def test_the_web_queries_are_project_methods(demo):
    """What the pages show comes from nearcare.Project (no SQL in web/): GeoDataFrames in WGS84 whose
    totals reconcile with the area's, and a measure name cannot reach the SQL."""
    from nearcare._errors import InputError
    from nearcare.project import Project

    with Project(demo.store_path, read_only=True) as project:
        population = float(project.area_counts()["population"].iloc[0])
        shapes = project.neighbourhood_shapes()
        assert len(shapes) == 31 and str(shapes.crs) == "EPSG:4326"
        assert shapes["population"].sum() == pytest.approx(population)
        layer = project.area_measure("imd_decile")
        assert len(layer) == 634 and set(layer["value"]) <= set(range(1, 11))
        with pytest.raises(InputError, match="unknown measure"):
            project.area_measure("gp:drive:drive:boundary FROM small_areas --")
        practices = project.sites("gp")
        assert len(practices) == 128 and practices.geometry.notna().sum() == practices["lat"].notna().sum()
