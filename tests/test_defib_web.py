"""The defibrillator page and API: coverage of assessed residents, who was not assessed, reports with bad hours."""

from __future__ import annotations

import re
import shutil
import warnings

import pytest

from nearcare import defib

warnings.filterwarnings("ignore", message=".*httpx.*")
from fastapi.testclient import TestClient  # noqa: E402

from nearcare.web.app import create_app  # noqa: E402


@pytest.fixture()
def web(demo, tmp_path):
    path = tmp_path / "web.duckdb"
    shutil.copyfile(demo.store_path, path)
    return TestClient(create_app(path), base_url="http://127.0.0.1"), path


def test_page_names_the_people_not_assessed(web, demo_store):
    """Issue 12, item 6, on the web page: shares are of assessed residents; the rest are named."""
    client, _ = web
    cov = defib.coverage(demo_store)
    text = client.get("/defibrillators").text
    assert "N" + cov.not_assessed_note()[1:] in text
    assert (
        cov.summary("night") in text and f"{len(defib.deserts(cov))} LSOAs that are deserts at night" in text
    )


def test_reports_with_hours_that_are_not_opening_hours_are_refused(web):
    """Issue 12, item 7: 'whenever' was stored, and counted as unknown hours."""
    client, _ = web
    before = client.get("/api/defibrillators").json()
    api = client.post(
        "/api/defibrillators/reports",
        json={"lat": 52.70, "lon": -0.60, "access": "public", "hours": "whenever"},
    )
    assert api.status_code == 400 and "opening_hours" in api.json()["detail"]
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/defibrillators").text).group(1)
    # The form offers choices; free text goes in "other hours", checked like any report.
    chosen = client.post(
        "/defibrillators",
        data={"access": "public", "hours": "whenever", "lat": "52.70", "lon": "-0.60", "csrf_token": token},
    )
    assert (
        chosen.status_code == 400
        and 'href="#hours"' in chosen.text
        and "Choose when it is available" in chosen.text
    )
    form = client.post(
        "/defibrillators",
        data={
            "access": "public",
            "hours": "other",
            "hours_other": "whenever",
            "lat": "52.70",
            "lon": "-0.60",
            "csrf_token": token,
        },
    )
    assert (
        form.status_code == 400
        and 'href="#hours_other"' in form.text
        and "not valid opening_hours" in form.text
    )
    assert client.get("/api/defibrillators").json() == before  # no defibrillator added, no report counted


def test_hours_after_a_matched_report_are_never_nan(web):
    """Issue 12, item 8, on the page and in the API."""
    client, _ = web
    assert (
        client.post(
            "/api/defibrillators/reports",
            json={"lat": 52.70, "lon": -0.60, "access": "restricted", "hours": "Mo-Fr 09:00-17:00"},
        ).status_code
        == 201
    )
    matched = client.post(
        "/api/defibrillators/reports",
        json={"lat": 52.6583, "lon": -0.6705, "access": "public", "hours": "24/7"},
    )
    assert matched.json()["matched_known"]
    page = client.get("/defibrillators").text
    assert ">nan<" not in page.lower()
    hours = {
        f["properties"]["defib_id"]: f["properties"]["hours"]
        for f in client.get("/api/defibrillators").json()["features"]
    }
    assert hours["osm-n5036730561"] == "24/7"
