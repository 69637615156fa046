"""Placing organisations in LSOAs with and without boundaries, on the real national files.

The national store holds every file in ../shared/data but the OSM extract: ODS practices,
pharmacies and dental practices for all of England, the 2014 optician list, national LSOA
centroids and lookups, and Code-Point Open for the LE postcode area only (with its district column).
"""

from __future__ import annotations

import shutil
import sys
from html import escape
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.conftest import SHARED_DATA, shared_file
from typer.testing import CliRunner

from nearcare.area import (
    MAX_CENTROID_M,
    PLACED_BY_BOUNDARY,
    PLACED_BY_CENTROID,
    PLACED_BY_LA_CENTROID,
    PLACED_BY_POSTCODE_LSOA,
    TOO_FAR_KEPT,
    build,
    place_in_lsoas,
)
from nearcare.cli import app
from nearcare.sources import import_files
from nearcare.store import Store

pytestmark = pytest.mark.national


@pytest.fixture(scope="module")
def national(tmp_path_factory) -> Path:
    """A store with the national files imported (boundaries for LLR only, as in ../shared/data)."""
    shared_file("ods_pharmacies_edispensary/edispensary.csv")
    shared_file("os_codepoint_open_le/le.csv")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from build_demo_data import NATIONAL_FILES

    path = tmp_path_factory.mktemp("national") / "national.duckdb"
    with Store(path) as store:
        for kind, files in NATIONAL_FILES:
            if kind == "osm":
                continue
            if kind == "lsoa-boundaries":
                paths = sorted((SHARED_DATA / "lsoa_boundaries_llr_drkane/lsoa21").glob("*.geojson"))
            else:
                paths = [shared_file(f) for f in files]
            import_files(store, kind, paths)
    return path


@pytest.fixture()
def copy(national, tmp_path):
    target = tmp_path / "store.duckdb"
    shutil.copyfile(national, target)
    with Store(target) as store:
        yield store


def _reconciles(store: Store, result) -> None:
    """Every kind's placement adds up to its rows in ``sites``; placed ones have an area LSOA."""
    sites = store.df("SELECT kind, lsoa21_code, lsoa_placed_by FROM sites")
    placement = store.df("SELECT * FROM site_placement")
    pd.testing.assert_frame_equal(
        placement.sort_values(["kind", "outcome"]).reset_index(drop=True),
        result.placement.sort_values(["kind", "outcome"]).reset_index(drop=True),
        check_dtype=False,
    )
    for kind, count in sites["kind"].value_counts().items():
        rows = placement[(placement["kind"] == kind) & placement["in_sites"]]
        assert rows["sites"].sum() == count, kind
        placed = rows[rows["outcome"].str.startswith("placed: ")]["sites"].sum()
        assert placed == sites[(sites["kind"] == kind) & sites["lsoa21_code"].notna()].shape[0], kind
    assert sites["lsoa21_code"].notna().eq(sites["lsoa_placed_by"].notna()).all()
    assert set(sites["lsoa21_code"].dropna()) <= set(
        store.df("SELECT lsoa21_code FROM small_areas")["lsoa21_code"]
    )


def test_area_outside_llr_without_boundaries_places_every_kind(copy):
    """Rushcliffe (Nottinghamshire) has no boundaries here; its LE-postcode services are placed by district.

    On the old code the located pharmacy and dental practices were dropped (only GP practices,
    kept by their commissioner, survived without a boundary).
    """
    result = build(copy, "E07000176")
    assert copy.scalar("SELECT count(*) FROM small_areas WHERE boundary IS NOT NULL") == 0
    # Independently: active organisations whose postcode Code-Point puts in Rushcliffe.
    expected = copy.df("""SELECT o.code, o.kind FROM organisations o JOIN postcodes p USING (postcode)
                          WHERE o.status = 'active' AND p.lad_code = 'E07000176' AND o.lat IS NULL ORDER BY 1""")
    assert {"pharmacy", "dentist", "gp"} <= set(expected["kind"])
    placed = copy.df("""SELECT s.code, s.kind, s.lsoa_placed_by, a.lad_code FROM sites s
                        JOIN small_areas a USING (lsoa21_code) WHERE s.geocoded_by = 'postcode' ORDER BY 1""")
    assert placed["code"].tolist() == expected["code"].tolist()
    assert (placed["lad_code"] == "E07000176").all()
    assert (placed["lsoa_placed_by"] == PLACED_BY_LA_CENTROID).all()
    _reconciles(copy, result)
    lines = [n for n in result.notes if n.startswith("sites placed: ")]
    assert {line.split(":")[1].strip() for line in lines} == set(copy.df("SELECT kind FROM sites")["kind"])
    for kind in ("pharmacy", "dentist"):
        placed_here = int((placed["kind"] == kind).sum())
        assert any(
            line.startswith(f"sites placed: {kind}: ") and f", {placed_here} placed in an LSOA" in line
            for line in lines
        ), kind


def test_west_yorkshire_reports_every_kind_and_why(copy):
    """QWO from the national files: no postcode here covers it, so each kind says it was not geocoded."""
    result = build(copy, "QWO")
    assert {"gp", "pharmacy", "dentist"} <= set(result.sites)
    _reconciles(copy, result)
    active = copy.df(
        "SELECT kind, count(*) AS n FROM organisations WHERE status = 'active' AND icb_code = 'QWO' "
        "AND kind IN ('pharmacy', 'dentist') GROUP BY 1"
    ).set_index("kind")["n"]
    for kind in ("pharmacy", "dentist"):
        assert result.sites[kind] == active[kind]
        reasons = result.placement[(result.placement["kind"] == kind)]
        assert reasons["outcome"].str.contains("not geocoded").any()


def test_llr_without_boundaries_places_the_same_sites(copy):
    """QK1 with and without boundaries: the same organisations, each in the same local authority.

    The differences are explained: without boundaries a site goes to the nearest LSOA centroid in
    its postcode's local authority, which is not always the LSOA whose boundary contains it.
    """
    with_boundaries = build(copy, "QK1")
    before = copy.df(
        "SELECT s.*, a.lad_code FROM sites s LEFT JOIN small_areas a USING (lsoa21_code) ORDER BY code"
    )
    assert set(before["lsoa_placed_by"].dropna()) == {PLACED_BY_BOUNDARY}
    copy.con.execute("DELETE FROM lsoa_boundaries")
    without = build(copy, "QK1")
    after = copy.df(
        "SELECT s.*, a.lad_code, a.centroid_easting, a.centroid_northing FROM sites s "
        "LEFT JOIN small_areas a USING (lsoa21_code) ORDER BY code"
    )
    assert with_boundaries.sites == without.sites
    assert before["code"].tolist() == after["code"].tolist()
    assert before["lsoa21_code"].notna().tolist() == after["lsoa21_code"].notna().tolist()
    assert before["lad_code"].fillna("").tolist() == after["lad_code"].fillna("").tolist()
    _reconciles(copy, without)
    moved = after[before["lsoa21_code"].fillna("") != after["lsoa21_code"].fillna("")]
    assert set(moved["lsoa_placed_by"]) <= {PLACED_BY_LA_CENTROID, PLACED_BY_CENTROID}
    # Each moved site is nearer its new LSOA's centroid than the centroid of the LSOA that contains it.
    true_centroid = (
        copy.df("SELECT lsoa21_code, centroid_easting, centroid_northing FROM small_areas")
        .set_index("lsoa21_code")
        .reindex(before.loc[moved.index, "lsoa21_code"])
    )
    new_m = np.hypot(
        moved["easting"] - moved["centroid_easting"], moved["northing"] - moved["centroid_northing"]
    )
    old_m = np.hypot(
        moved["easting"].to_numpy() - true_centroid["centroid_easting"].to_numpy(),
        moved["northing"].to_numpy() - true_centroid["centroid_northing"].to_numpy(),
    )
    assert (new_m.to_numpy() <= old_m + 1e-6).all()
    placed_counts = without.placement.groupby("kind")["sites"].sum()
    assert placed_counts.equals(with_boundaries.placement.groupby("kind")["sites"].sum())


def test_postcode_file_lsoa_column_places_exactly(copy, tmp_path):
    """An ONSPD-style file (with ``lsoa21`` and ``oslaua``) places sites without boundaries as boundaries do.

    The file is Code-Point's LE points with each one's LSOA from the real LLR boundaries.
    """
    build(copy, "QK1")
    by_boundary = copy.df("SELECT code, lsoa21_code FROM sites WHERE geocoded_by = 'postcode' ORDER BY code")
    postcodes = copy.df("SELECT postcode, easting, northing, lon, lat, lad_code FROM postcodes")
    polygons = copy.df("SELECT lsoa21_code, boundary FROM lsoa_boundaries")
    from nearcare.geo import from_wkb

    points = gpd.GeoDataFrame(
        postcodes, geometry=gpd.points_from_xy(postcodes["lon"], postcodes["lat"]), crs=4326
    )
    areas = gpd.GeoDataFrame(polygons[["lsoa21_code"]], geometry=from_wkb(polygons["boundary"]), crs=4326)
    joined = gpd.sjoin(points, areas, how="left", predicate="within").drop_duplicates("postcode")
    onspd = pd.DataFrame(
        {
            "pcds": joined["postcode"],
            "oseast1m": joined["easting"].round().astype(int),
            "osnrth1m": joined["northing"].round().astype(int),
            "lsoa21": joined["lsoa21_code"].fillna(""),
            "oslaua": joined["lad_code"].fillna(""),
        }
    )
    onspd.to_csv(tmp_path / "ONSPD_LE.csv", index=False)
    import_files(copy, "postcodes", [tmp_path / "ONSPD_LE.csv"])
    assert (
        copy.scalar("SELECT count(*) FROM postcodes WHERE lad_code IS NOT NULL AND lsoa21_code IS NOT NULL")
        > 0
    )
    copy.con.execute("DELETE FROM lsoa_boundaries")
    result = build(copy, "QK1")
    by_column = copy.df(
        "SELECT code, lsoa21_code, lsoa_placed_by FROM sites WHERE geocoded_by = 'postcode' ORDER BY code"
    )
    assert by_column["lsoa21_code"].fillna("").tolist() == by_boundary["lsoa21_code"].fillna("").tolist()
    assert set(by_column["lsoa_placed_by"].dropna()) == {PLACED_BY_POSTCODE_LSOA}
    _reconciles(copy, result)


def test_build_cli_and_report_say_how_sites_were_placed(copy, tmp_path):
    copy.close()
    runner = CliRunner()
    built = runner.invoke(app, ["build", "--area", "E07000176", "--store", str(copy.path)])
    assert built.exit_code == 0, built.output
    for kind in ("dentist", "gp", "optometrist", "pharmacy"):
        assert f"sites placed: {kind}:" in built.output
    assert "not geocoded" in built.output
    out = tmp_path / "report.html"
    reported = runner.invoke(app, ["report", "--store", str(copy.path), "--out", str(out)])
    assert reported.exit_code == 0, reported.output
    html = out.read_text()
    assert "How each kind of service was placed" in html
    assert escape(PLACED_BY_LA_CENTROID) in html or PLACED_BY_LA_CENTROID.replace("'", "&#39;") in html


# Placement rules on small generated inputs (no store): checked against a brute-force nearest centroid.
@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.floats(400_000, 460_000), st.floats(280_000, 340_000)), min_size=1, max_size=12),
    st.lists(
        st.tuples(
            st.floats(380_000, 480_000),
            st.floats(260_000, 360_000),
            st.sampled_from(["E06000016", "E07000130", None]),
        ),
        min_size=1,
        max_size=8,
    ),
)
def test_nearest_centroid_rules(centroid_points, org_points):
    from nearcare.geo import to_wgs84

    centroids = pd.DataFrame(
        {
            "lsoa21_code": [f"E01{i:06d}" for i in range(len(centroid_points))],
            "easting": [p[0] for p in centroid_points],
            "northing": [p[1] for p in centroid_points],
            "lad_code": ["E06000016" if i % 2 else "E07000130" for i in range(len(centroid_points))],
        }
    )
    lon, lat = to_wgs84(np.array([p[0] for p in org_points]), np.array([p[1] for p in org_points]))
    orgs = pd.DataFrame(
        {
            "lat": lat,
            "lon": lon,
            "geocoded_by": "postcode",
            "postcode_lsoa21_code": None,
            "postcode_lad_code": [p[2] for p in org_points],
        }
    )
    small_areas = centroids.rename(
        columns={"easting": "centroid_easting", "northing": "centroid_northing"}
    ).assign(boundary=None)
    lsoa, how = place_in_lsoas(orgs, small_areas, centroids)
    for i, (x, y, la) in enumerate(org_points):
        pool = (
            centroids
            if la is None or la not in set(centroids["lad_code"])
            else centroids[centroids["lad_code"] == la]
        )
        distance = np.hypot(pool["easting"] - x, pool["northing"] - y)
        best = distance.min()
        ties = set(pool.loc[np.isclose(distance, best, atol=1e-3), "lsoa21_code"])
        if pool is centroids and best > MAX_CENTROID_M + 1e-3:
            assert pd.isna(lsoa[i]) and pd.isna(how[i])
        elif pool is centroids and best < MAX_CENTROID_M - 1e-3:
            assert lsoa[i] in ties and how[i] == PLACED_BY_CENTROID
        elif pool is not centroids:
            assert lsoa[i] in ties and how[i] == PLACED_BY_LA_CENTROID


def test_too_far_from_every_centroid_is_kept_unplaced_when_commissioned(copy):
    """A pharmacy of the area whose coordinates are nowhere near an LSOA is kept, unplaced, with the reason."""
    copy.con.execute(
        "UPDATE organisations SET lat = 50.0, lon = -2.0 WHERE code = "
        "(SELECT min(code) FROM organisations WHERE kind = 'pharmacy' AND icb_code = 'QWO' "
        "AND status = 'active')"
    )  # in the Channel, far from any centroid
    result = build(copy, "QWO")
    too_far = result.placement[result.placement["outcome"] == TOO_FAR_KEPT]
    assert too_far[["kind", "sites"]].values.tolist() == [["pharmacy", 1]]
    _reconciles(copy, result)
