"""The hubs page and its GeoJSON layers, in-process: computed once per store version, bad input refused."""

from __future__ import annotations

import shutil
import warnings

import pytest

from nearcare.store import Store

warnings.filterwarnings("ignore", message=".*httpx.*")
from fastapi.testclient import TestClient  # noqa: E402

from nearcare.web.app import create_app  # noqa: E402


@pytest.fixture(scope="module")
def web_store(demo, tmp_path_factory):
    path = tmp_path_factory.mktemp("hubs-web") / "web.duckdb"
    shutil.copyfile(demo.store_path, path)
    with Store(path) as store:  # a practice name that would run as script if not escaped
        store.con.execute("UPDATE sites SET name = '<script>alert(1)</script>' WHERE code = 'C82044'")
    return path


@pytest.fixture(scope="module")
def client(web_store):
    return TestClient(create_app(web_store), base_url="http://127.0.0.1")


def test_hubs_page_shows_the_choice_once_per_store_version(client):
    computed = client.app.state.site.store.computed
    first, second = client.get("/hubs"), client.get("/hubs")
    assert first.status_code == second.status_code == 200
    assert computed["hubs"] == 1 and computed["hubs_page"] == 1  # the second request read the cache
    assert "Neighbourhood hubs" in first.text and "31 hubs in 31 of 31 neighbourhoods" in first.text
    assert "<script>alert(1)</script>" not in first.text and "&lt;script&gt;" in first.text
    assert 'src="data:image/png;base64,' in first.text  # the report's map
    other = client.get("/hubs", params={"per_neighbourhood": 2, "candidates": "sites", "max_minutes": 12})
    assert other.status_code == 200 and computed["hubs"] == 2 and "within 12 minutes" in other.text


def test_hub_layers(client):
    hubs = client.get("/api/hubs.geojson").json()
    assert hubs["type"] == "FeatureCollection" and len(hubs["features"]) == 31
    assert {f["geometry"]["type"] for f in hubs["features"]} == {"Point"}
    assert sum(f["properties"]["population"] for f in hubs["features"]) > 1_000_000
    lsoas = client.get("/api/hubs/lsoas.geojson").json()
    assert len(lsoas["features"]) == 634 and lsoas["legend"]["units"] == "min"
    statuses = {f["properties"]["status"] for f in lsoas["features"]}
    assert statuses == {"assigned", "unreachable"}  # the one LSOA with no pair is on the map, unfilled
    unreachable = [f for f in lsoas["features"] if f["properties"]["status"] == "unreachable"]
    assert all(f["properties"]["value"] is None and f["properties"]["class"] == -1 for f in unreachable)


@pytest.mark.parametrize(
    "query",
    [{"per_neighbourhood": 0}, {"per_neighbourhood": 6}, {"candidates": "/etc/passwd"}, {"max_minutes": -1}],
)
def test_bad_choices_are_refused(client, query):
    assert client.get("/api/hubs.geojson", params=query).status_code == 422
    assert client.get("/hubs", params=query).status_code == 422


def test_without_neighbourhoods_the_page_says_what_to_run(demo, tmp_path):
    path = tmp_path / "bare.duckdb"
    shutil.copyfile(demo.store_path, path)
    with Store(path) as store:
        store.con.execute("DELETE FROM neighbourhoods")
    bare = TestClient(create_app(path), base_url="http://127.0.0.1")
    page = bare.get("/hubs")
    assert page.status_code == 200 and "nearcare neighbourhoods design" in page.text
    assert bare.get("/api/hubs.geojson").status_code == 409
