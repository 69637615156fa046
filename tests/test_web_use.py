"""The web app's finding, downloading and map legends, in-process: search by name, code and postcode
(from the store's postcodes), downloads of every result as CSV and GeoJSON through the one writer, and
map classes computed on the server with the report's classes."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nearcare
from nearcare.legend import map_legend, number

warnings.filterwarnings("ignore", message=".*httpx.*")
from fastapi.testclient import TestClient  # noqa: E402

from nearcare.web.app import create_app  # noqa: E402

PAGES = [
    "/",
    "/organisations/C82044",
    "/equity",
    "/scenario",
    "/defibrillators",
    "/neighbourhoods",
    "/hubs",
    "/workforce",
    "/search",
]


@pytest.fixture(scope="module")
def web_path(demo, tmp_path_factory):
    path = tmp_path_factory.mktemp("webuse") / "web.duckdb"
    shutil.copyfile(demo.store_path, path)
    return path


@pytest.fixture(scope="module")
def client(web_path):
    return TestClient(create_app(web_path), base_url="http://127.0.0.1")


@pytest.fixture(scope="module")
def project(web_path, client):
    with nearcare.open(web_path, read_only=True) as opened:
        yield opened


# ---- search


def test_every_page_has_the_search_form(client):
    for url in PAGES:
        html = client.get(url).text
        assert re.search(r'<form[^>]*action="/search"', html), url
        assert 'name="q"' in html, url


def test_search_by_name_code_and_lsoa(client, project):
    practice = project.sites(code="C82044").iloc[0]
    by_name = client.get("/api/search", params={"q": practice["name"].split()[0].lower()}).json()["results"]
    assert by_name[0]["code"] == "C82044" and by_name[0]["href"] == "/organisations/C82044"
    by_code = client.get("/api/search", params={"q": "c82044"}).json()["results"]
    assert by_code[0]["code"] == "C82044"
    lsoa = project.small_areas().iloc[0]
    found = client.get("/api/search", params={"q": lsoa["lsoa21_code"]}).json()["results"]
    assert found[0] == {**found[0], "kind": "lsoa", "code": lsoa["lsoa21_code"], "name": lsoa["lsoa21_name"]}


def test_search_by_postcode_lists_the_nearest_services(client, project):
    practice = project.sites(code="C82044").iloc[0]
    postcode = practice["postcode"]
    squashed = postcode.replace(" ", "").lower()  # spaces and case do not matter
    results = client.get("/api/search", params={"q": squashed}).json()["results"]
    assert results[0]["kind"] == "postcode" and results[0]["code"] == postcode
    gps = [r for r in results if r["kind"] == "gp"]
    # the practice at that postcode is the nearest, at about no distance; the rest in order
    assert gps[0]["code"] == "C82044" and gps[0]["distance_km"] < 0.2
    distances = [r["distance_km"] for r in gps]
    assert distances == sorted(distances) and len(gps) <= 3
    kinds = {r["kind"] for r in results}
    assert {"pharmacy", "dentist"} <= kinds
    assert len({(r["kind"], r["code"]) for r in results}) == len(results)  # each once


def test_search_is_bounded_and_never_echoes_input(client):
    everything = client.get("/api/search", params={"q": "e"}).json()
    assert len(everything["results"]) == everything["max_results"] == 20
    for bad in ("<script>x</script>", "a" * 81, "", "%%%", "x\x00y"):
        answer = client.get("/api/search", params={"q": bad})
        assert answer.status_code == 422, bad
        if bad:
            assert bad not in answer.text and "script" not in answer.text
    like = client.get("/api/search", params={"q": "__"}).json()["results"]  # LIKE wildcards are literal
    assert like == []


def test_search_page_works_without_javascript(client):
    html = client.get("/search", params={"q": "empingham"}).text
    assert 'href="/organisations/C82044"' in html and "EMPINGHAM MEDICAL CENTRE" in html
    none = client.get("/search", params={"q": "zzzzqqq"})
    assert none.status_code == 200 and "Nothing in this area matches" in none.text
    bad = client.get("/search", params={"q": "<b>hi</b>"})
    assert bad.status_code == 422 and "<b>hi</b>" not in bad.text and "&lt;b&gt;" not in bad.text


@settings(max_examples=40, deadline=None)
@given(st.text(min_size=1, max_size=30))
def test_search_never_fails_on_any_text(client, text):
    answer = client.get("/api/search", params={"q": text})
    assert answer.status_code in (200, 422)
    if answer.status_code == 200:
        assert len(answer.json()["results"]) <= 20 + 1 + 3 * 4


# ---- downloads


def test_every_page_links_its_downloads(client):
    for url, target in [
        ("/", "/download/measure.csv?measure=imd_decile"),
        ("/equity", "/download/equity.geojson"),
        ("/defibrillators", "/download/defibrillators.csv"),
        ("/neighbourhoods", "/download/neighbourhoods.geojson"),
    ]:
        assert f'href="{target}' in client.get(url).text, url


def _csv(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(response.text)))


@pytest.mark.parametrize("measure", ["imd_decile", "gp:drive:crowfly:nearest_minutes"])
def test_measure_downloads_match_the_map(client, measure):
    layer = client.get("/api/areas.geojson", params={"measure": measure}).json()
    on_map = {f["properties"]["lsoa21_code"]: f["properties"]["value"] for f in layer["features"]}
    column = measure.rsplit(":", 1)[-1]
    got = client.get("/download/measure.csv", params={"measure": measure})
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
    name = re.search(r'filename="([^"]+)"', got.headers["content-disposition"]).group(1)
    assert name.startswith("nearcare-") and name.endswith(".csv") and column in name
    rows = _csv(got)
    assert len(rows) == len(on_map)
    for row in rows[:50]:
        assert float(row[column]) == pytest.approx(on_map[row["lsoa21_code"]], rel=1e-9)
    geo = client.get("/download/measure.geojson", params={"measure": measure})
    features = json.loads(geo.text)["features"]
    assert len(features) == len(on_map) and features[0]["geometry"]["type"] in ("Polygon", "MultiPolygon")
    for url in ("/download/measure.csv", "/api/areas.geojson"):
        bad = client.get(url, params={"measure": "x; DROP TABLE access"})
        assert bad.status_code == 400 and "DROP" not in bad.text  # refused, and not echoed
    assert client.get("/download/measure.xlsx").status_code == 422


def test_other_downloads(client, project):
    for path in ("/download/defibrillators", "/download/neighbourhoods", "/download/equity"):
        for fmt in ("csv", "geojson"):
            got = client.get(f"{path}.{fmt}")
            assert got.status_code == 200, (path, fmt, got.text[:200])
    defibs = _csv(client.get("/download/defibrillators.csv"))
    assert len(defibs) == len(project.defibrillators())
    equity = _csv(client.get("/download/equity.csv"))
    figures = project.equity(kind="gp", profile="drive", measure="e2sfca_need")
    means = {int(r["imd_decile"]): float(r["decile_mean_e2sfca_need"]) for r in equity}
    assert means == pytest.approx({int(k): float(v) for k, v in figures.deciles["value"].items()})
    assert len(equity) == figures.areas  # the LSOAs the measure covers, no more
    hoods = json.loads(client.get("/download/neighbourhoods.geojson").text)["features"]
    assert len(hoods) == len(project.neighbourhood_shapes())


def test_scenario_download_reconciles_with_the_page(client):
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/scenario").text).group(1)
    page = client.post("/scenario", data={"close": ["C82044"], "csrf_token": token})
    link = re.search(r'href="(/download/scenario\.csv\?[^"]+)"', page.text).group(1).replace("&amp;", "&")
    rows = _csv(client.get(link))
    before = sum(float(r["patients_before"]) for r in rows)
    after = sum(float(r["patients_after"]) for r in rows)
    unplaced = client.post("/api/scenarios", json={"close": ["C82044"]}).json()["patients_unplaced"]
    assert before == pytest.approx(after + unplaced, abs=1.0)  # every patient is somewhere
    assert next(r for r in rows if r["practice_code"] == "C82044")["patients_after"] in ("0", "0.0")
    assert client.get("/download/scenario.csv", params={"close": "bad code"}).status_code == 422


# ---- legends


def test_area_layers_carry_server_classes_and_legend(client):
    layer = client.get("/api/areas.geojson", params={"measure": "gp:drive:crowfly:nearest_minutes"}).json()
    legend = layer["legend"]
    assert "Minutes to the nearest gp" in legend["title"] and legend["units"] == "min"
    assert len(legend["labels"]) == len(legend["colours"]) == len(legend["upper"]) == 5
    assert all(
        "e+" not in label and "e-" not in label and label.endswith(" min") for label in legend["labels"]
    )
    values = pd.Series([f["properties"]["value"] for f in layer["features"]], dtype=float)
    report_classes = map_legend(values, title="x", units="min")  # what the report's maps use
    assert legend["upper"] == report_classes.upper
    assert [f["properties"]["class"] for f in layer["features"]] == report_classes.classify(values).tolist()
    assert sum(legend["counts"]) == values.notna().sum()
    deciles = client.get("/api/areas.geojson").json()["legend"]
    assert deciles["categorical"] and deciles["labels"] == [str(d) for d in range(1, 11)]
    serves = client.get("/api/organisations/C82044/serves.geojson").json()["legend"]
    assert serves["units"] == "patients"


def test_the_report_draws_the_same_classes(project):
    from nearcare.report import maps

    areas = project.area_measure("population")
    figure = maps.choropleth(areas, "value", title="Population", legend_label="People")
    labels = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    assert (
        labels[: len(map_legend(areas["value"], title="p").labels)]
        == map_legend(areas["value"], title="p").labels
    )


@given(st.lists(st.floats(min_value=-1e9, max_value=1e9, allow_nan=False), min_size=1, max_size=300))
def test_classes_cover_every_value_in_order(values):
    series = pd.Series(values)
    legend = map_legend(series, title="t", units="u")
    classes = legend.classify(series)
    assert classes.between(0, len(legend.upper) - 1).all() and sum(legend.counts) == len(values)
    order = np.argsort(values, kind="stable")
    assert classes.to_numpy()[order].tolist() == sorted(
        classes.tolist()
    )  # higher value, same or higher class
    assert all("e" not in label.replace("e+", "!").lower() or "no data" in label for label in legend.labels)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_numbers_never_in_scientific_notation(value):
    text = number(value)
    assert "e" not in text.lower()
    assert float(text.replace(",", "")) == pytest.approx(value, rel=5e-3, abs=1e-300)


def test_practice_page_marks_the_practice(client, project):
    practice = project.sites(code="C82044").iloc[0]
    html = client.get("/organisations/C82044").text
    lat = float(re.search(r'data-lat="([^"]+)"', html).group(1))
    lon = float(re.search(r'data-lon="([^"]+)"', html).group(1))
    assert (lat, lon) == pytest.approx((practice["lat"], practice["lon"]))


def test_a_partial_measure_keeps_every_area_as_no_data(client):
    """Road-network access was computed for part of the demo area: the rest is drawn as no data."""
    layer = client.get("/api/areas.geojson", params={"measure": "gp:drive:drive:e2sfca_need"}).json()
    values = [f["properties"]["value"] for f in layer["features"]]
    assert len(values) == 634 and 0 < sum(v is not None for v in values) < 634
    assert all(
        (f["properties"]["class"] == -1) == (f["properties"]["value"] is None) for f in layer["features"]
    )
    assert sum(layer["legend"]["counts"]) == sum(v is not None for v in values)
