"""Area selection, the bundled LLR data and the demo report."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest
from tests.conftest import SHARED_DATA, shared_file

from nearcare import InputError
from nearcare.area import build, resolve_area
from nearcare.atlas import sub_icb_summary
from nearcare.store import Store


def test_demo_counts(demo, demo_store):
    assert demo_store.count("small_areas") == 634
    kinds = demo_store.df("SELECT kind, count(*) AS n FROM sites GROUP BY 1").set_index("kind")["n"]
    assert kinds["gp"] == 128
    assert 210 <= kinds["pharmacy"] <= 230
    assert set(demo_store.df("SELECT DISTINCT sub_icb_code FROM small_areas")["sub_icb_code"]) == {
        "03W",
        "04C",
        "04V",
    }


def test_every_site_has_coordinates_or_is_listed(demo, demo_store):
    sites = demo_store.df("SELECT code, lat, lon, easting FROM sites")
    unlocated = set(sites.loc[sites["lat"].isna(), "code"])
    assert unlocated == set(demo.build.ungeocoded["code"])
    assert len(unlocated) == 15  # as the README says: none of their postcodes is in the bundled postcode file
    assert (
        demo_store.scalar(
            "SELECT count(*) FROM sites s JOIN postcodes p USING (postcode) WHERE s.lat IS NULL"
        )
        == 0
    )
    report = demo.report_path.read_text()
    for code in unlocated:
        assert f"<td>{code}</td>" in report
    assert sites.loc[sites["lat"].notna(), "easting"].notna().all()


def test_located_sites_fall_in_their_lsoa(demo_store):
    """Point-in-polygon, checked against shapely directly for every located site."""
    import shapely

    from nearcare.geo import from_wkb

    sites = demo_store.df(
        "SELECT s.lon, s.lat, b.boundary FROM sites s JOIN small_areas b USING (lsoa21_code)"
    )
    polygons = from_wkb(sites["boundary"])
    assert shapely.contains_xy(polygons, sites["lon"], sites["lat"]).all()


def test_population_is_conserved_through_the_lsoa_lookup(demo_store):
    """Mapping 2011-based estimates to 2021 areas neither creates nor loses people."""
    total_2021 = demo_store.scalar("SELECT sum(population) FROM small_areas")
    total_2011 = demo_store.scalar(
        "SELECT sum(population) FROM population WHERE lsoa_code IN "
        "(SELECT lsoa11_code FROM lsoa11_lsoa21 WHERE lsoa21_code IN (SELECT lsoa21_code FROM small_areas))"
    )
    assert total_2021 == pytest.approx(total_2011, abs=1e-6)
    assert demo_store.scalar("SELECT count(*) FROM small_areas WHERE population IS NULL") == 0


def test_sub_icb_summary_adds_up(demo_store):
    summary = sub_icb_summary(demo_store)
    body, total = summary.iloc[:-1], summary.iloc[-1]
    for column in ("lsoas", "gp_practices", "pharmacies", "dental_practices", "opticians_2014"):
        assert body[column].sum() == total[column]
    assert total["pharmacies"] == demo_store.scalar("SELECT count(*) FROM sites WHERE kind = 'pharmacy'")
    practices = demo_store.df(
        "SELECT patients, gp_fte FROM practices WHERE gp_fte > 0 AND patients IS NOT NULL"
    )
    assert total["patients_per_gp_fte"] == pytest.approx(
        practices["patients"].sum() / practices["gp_fte"].sum()
    )


def test_report_has_map_tables_and_sources(demo):
    html = demo.report_path.read_text()
    assert html.count("data:image/png;base64,") >= 2
    assert "Per sub-ICB location" in html and "Sources and licences" in html
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html


@pytest.mark.parametrize(
    "area, kind, lsoas",
    [
        ("QK1", "icb", 634),
        ("E54000015", "icb", 634),
        ("03W", "sub-icb", 200),
        ("E06000017", "local-authority", 26),
    ],
)
def test_resolve_area(demo_store, area, kind, lsoas):
    found_kind, _, codes = resolve_area(demo_store, area)
    assert (found_kind, len(codes)) == (kind, lsoas)


def test_unknown_area_and_lsoa(demo_store, tmp_path):
    with pytest.raises(InputError, match="matches no ICB"):
        resolve_area(demo_store, "ZZZ")
    with pytest.raises(InputError, match="not an English LSOA code"):
        resolve_area(demo_store, "E01013787,E0101")
    listing = tmp_path / "lsoas.txt"
    listing.write_text("E01013787\nE01013788\n")
    assert resolve_area(demo_store, str(listing))[2] == ["E01013787", "E01013788"]


def test_build_subarea_is_subset(demo, tmp_path):
    import shutil

    copy = tmp_path / "copy.duckdb"
    shutil.copyfile(demo.store_path, copy)
    with Store(copy) as store:
        result = build(store, "E06000017")  # Rutland
        assert result.lsoas == 26
        gps = store.df("SELECT code FROM sites WHERE kind = 'gp' AND lsoa21_code IS NOT NULL")
        assert 3 <= len(gps) <= 6  # Rutland has four practices


@pytest.mark.national
def test_national_files_filtered_to_qk1_equal_the_bundle(demo_store, tmp_path):
    """Importing the national files and building QK1 gives exactly the bundled area."""
    shared_file("ods_gp_practices_epraccur/epraccur.csv")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from build_demo_data import import_national

    with Store(tmp_path / "national.duckdb") as national:
        import_national(national, SHARED_DATA)
        build(national, "QK1")
        for table, key in (("sites", "code"), ("small_areas", "lsoa21_code"), ("practices", "practice_code")):
            ours = (
                national.df(f"SELECT * EXCLUDE (source_id) FROM {table} ORDER BY {key}")
                if table == "sites"
                else national.df(f"SELECT * FROM {table} ORDER BY {key}")
            )
            bundled = (
                demo_store.df(f"SELECT * EXCLUDE (source_id) FROM {table} ORDER BY {key}")
                if table == "sites"
                else demo_store.df(f"SELECT * FROM {table} ORDER BY {key}")
            )
            pd.testing.assert_frame_equal(ours, bundled, obj=table)
