"""Issue 13, items 9-12, in-process: the defibrillator page's coverage, deserts and proposed sites;
reports placed by map or postcode with hours from choices; local authority outlines; the optional
tile layer and its Content-Security-Policy; equity and neighbourhood pages that lead with a verdict
and a chart; the HTML report's summary, phone and print styles."""

from __future__ import annotations

import re
import shutil
import warnings

import pytest

from nearcare import defib
from nearcare._errors import InputError
from nearcare.project import Project
from nearcare.report.document import Report, Section
from nearcare.web.schemas import HOURS_CHOICES

warnings.filterwarnings("ignore", message=".*httpx.*")
from fastapi.testclient import TestClient  # noqa: E402

from nearcare.web.app import create_app  # noqa: E402


@pytest.fixture(scope="module")
def web_path(demo, tmp_path_factory):
    path = tmp_path_factory.mktemp("webmaps") / "web.duckdb"
    shutil.copyfile(demo.store_path, path)
    return path


@pytest.fixture(scope="module")
def client(web_path):
    return TestClient(create_app(web_path), base_url="http://127.0.0.1")


def coverage_of_store(path):
    with Project(path, read_only=True) as project:
        return project.defib_coverage()


def token(client, url: str = "/defibrillators") -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(url).text).group(1)


@pytest.mark.parametrize("time", sorted(defib.TIMES))
def test_coverage_layer_reconciles_with_the_coverage(client, demo_store, time):
    cov = defib.coverage(demo_store)
    layer = client.get(f"/api/defibrillators/coverage.geojson?time={time}").json()
    assert len(layer["features"]) == demo_store.count("small_areas")  # every LSOA, assessed or not
    assert layer["legend"]["units"] == "%" and time in layer["legend"]["title"].replace("(03:00)", "night")
    by_lsoa = cov.by_lsoa.set_index("lsoa21_code")
    props = {f["properties"]["lsoa21_code"]: f["properties"] for f in layer["features"]}
    for code, row in by_lsoa.iterrows():
        shown = props[code]["value"]
        if row["people_assessed"] > 0:
            assert shown == pytest.approx(100 * row[f"people_{time}_first"] / row["people_assessed"])
        else:
            assert shown is None  # not assessed is not "0% covered"
    deserts = set(defib.deserts(cov, time)["lsoa21_code"])
    assert {c for c, p in props.items() if p["desert"]} == deserts and deserts
    assessed = sum(p["people_assessed"] for p in props.values())
    assert assessed == pytest.approx(cov.assessed_people)


def test_proposed_sites_are_the_exact_best_sites(client, web_path):
    with Project(web_path, read_only=True) as project:
        siting, _ = project.defib_sites(5)
    layer = client.get("/api/defibrillators/proposed.geojson").json()
    assert [f["properties"]["site_id"] for f in layer["features"]] == siting.chosen["site_id"].tolist()
    assert [f["properties"]["rank"] for f in layer["features"]] == list(range(1, len(siting.chosen) + 1))
    added = sum(f["properties"]["people_added"] for f in layer["features"])
    assert added == pytest.approx(siting.exact_people, abs=len(siting.chosen))  # rounded per site
    page = client.get("/defibrillators").text
    assert 'id="defib-proposed"' in page and 'id="defib-deserts"' in page
    verdict = re.search(r'id="defib-verdict">([^<]+)<', page).group(1)
    cov = coverage_of_store(web_path)
    assert f"At night {cov.share('night'):.1f}% of the {cov.assessed_people:,.0f} residents" in verdict
    assert f"{len(defib.deserts(cov))} small areas" in verdict


def test_a_report_is_placed_by_map_or_postcode_with_hours_from_choices(client, web_path):
    before = len(client.get("/api/defibrillators").json()["features"])
    page = client.get("/defibrillators").text
    assert 'type="hidden" id="lat"' in page and 'id="report-map"' in page  # no typed coordinates
    for hours in HOURS_CHOICES:
        assert f'value="{hours}"' in page
    form = {"access": "public", "lat": "", "lon": "", "postcode": "", "csrf_token": token(client)}
    nowhere = client.post("/defibrillators", data={**form, "hours": "24/7"})
    assert nowhere.status_code == 400 and "Tap the map where it is, or enter its postcode" in nowhere.text
    free = client.post("/defibrillators", data={**form, "hours": "Mo-Fr 09:00-17:00", "postcode": "LE15 8PR"})
    assert free.status_code == 400 and "Choose when it is available" in free.text  # not one of the choices
    assert len(client.get("/api/defibrillators").json()["features"]) == before
    by_map = client.post(
        "/defibrillators",
        data={**form, "hours": "Mo-Sa 09:00-17:30", "lat": "52.6300", "lon": "-0.5000"},
        follow_redirects=False,
    )
    other = client.post(
        "/defibrillators",
        data={**form, "hours": "other", "hours_other": "Mo-Fr 09:00-12:00", "postcode": "LE15 8PR"},
        follow_redirects=False,
    )
    assert by_map.status_code == other.status_code == 303
    register = {f["properties"]["defib_id"]: f for f in client.get("/api/defibrillators").json()["features"]}
    assert len(register) == before + 2
    placed = register[by_map.headers["location"].split("=")[1]]
    assert placed["properties"]["hours"] == "Mo-Sa 09:00-17:30"
    assert placed["geometry"]["coordinates"] == pytest.approx([-0.5, 52.63], abs=1e-6)
    assert register[other.headers["location"].split("=")[1]]["properties"]["hours"] == "Mo-Fr 09:00-12:00"


def test_local_authority_outlines_come_from_the_bundled_boundaries(client, web_path):
    layer = client.get("/api/local-authorities.geojson").json()
    with Project(web_path, read_only=True) as project:
        areas = project.small_areas()
    names = dict(zip(areas["lad_code"], areas["lad_name"], strict=True))
    assert {f["properties"]["lad_code"]: f["properties"]["lad_name"] for f in layer["features"]} == names
    for feature in layer["features"]:  # each name is placed inside its own outline
        from shapely.geometry import Point, shape

        outline = shape(feature["geometry"])
        assert outline.buffer(1e-3).contains(
            Point(feature["properties"]["label_lon"], feature["properties"]["label_lat"])
        )


def test_tiles_are_off_unless_given_and_then_only_from_that_host(web_path):
    plain = TestClient(create_app(web_path), base_url="http://127.0.0.1").get("/")
    assert "nearcare-tiles" not in plain.text
    assert "img-src 'self' data:;" in plain.headers["content-security-policy"]
    tiled = TestClient(
        create_app(web_path, tiles="https://{s}.tiles.example.org/{z}/{x}/{y}.png"),
        base_url="http://127.0.0.1",
    ).get("/defibrillators")
    csp = tiled.headers["content-security-policy"]
    assert "img-src 'self' data: https://*.tiles.example.org;" in csp
    assert csp.count("example.org") == 1  # images only: no scripts, styles or connections
    assert 'name="nearcare-tiles" content="https://{s}.tiles.example.org/{z}/{x}/{y}.png"' in tiled.text
    for bad in (
        "ftp://x.org/{z}/{x}/{y}",
        "https://x.org/tiles.png",
        "https://a;b.org/{z}/{x}/{y}",
        "https://u@x.org/{z}/{x}/{y}",
    ):
        with pytest.raises(InputError, match="tile URL"):
            create_app(web_path, tiles=bad)


def _bars(page: str) -> list[str]:
    return re.findall(r'nearcare-bars__value">([^<]+)<', page)


def test_equity_and_neighbourhood_pages_lead_with_a_verdict_and_a_chart(client, web_path):
    with Project(web_path, read_only=True) as project:
        figures = project.equity(kind="gp", profile="drive", mode="crowfly", measure="e2sfca_need")
        check = project.check_neighbourhoods()
    equity = client.get("/equity").text
    verdict = re.search(r'id="verdict">([^<]+)<', equity).group(1)
    assert verdict.endswith(".") and "slope index" not in verdict and verdict.count(". ") == 0  # one sentence
    assert equity.index('id="verdict"') < equity.index('id="verdict-chart"') < equity.index("The details")
    assert _bars(equity) == [f"{v:,.3f}" for v in figures.deciles["value"]]
    hoods = client.get("/neighbourhoods").text
    n = check.neighbourhoods
    assert _bars(hoods) == [f"{p:,.0f}" for p in n["population"]]
    assert f"{int(n['within_bounds'].sum())} of the {len(n)} neighbourhoods" in hoods
    assert hoods.count("nearcare-bars__bar--low") == int((~n["within_bounds"].astype(bool)).sum())


def test_the_report_opens_with_a_summary_and_fits_a_phone_and_paper():
    report = Report(
        "A report",
        "Sub",
        [
            Section("First", paragraphs=["One finding here. A second sentence.", "More."]),
            Section(
                "Keyed", paragraphs=["Preamble: figures."], key="The key finding (with figures). Then more."
            ),
            Section("Empty"),
            Section("Long", paragraphs=["word " * 100]),
        ],
    )
    assert [t for t, _ in report.summary()] == ["First", "Keyed", "Long"]
    findings = dict(report.summary())
    assert findings["First"] == "One finding here." and findings["Keyed"] == "The key finding (with figures)."
    assert len(findings["Long"]) <= 220 and findings["Long"].endswith("…")
    html = report.render()
    assert html.index('id="summary"') < html.index('aria-label="Contents"') < html.index('id="section-1"')
    assert "@media print" in html and "@media (max-width: 40em)" in html and 'name="viewport"' in html
