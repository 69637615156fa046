"""Defibrillators: opening hours, the register and reports, coverage by time of day, exact siting."""

from __future__ import annotations

import itertools
import shutil

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from nearcare import InputError
from nearcare import defib
from nearcare.cli import app
from nearcare.store import Store
from tests.conftest import write

HAMBLETON = (52.6582515, -0.6705121)


@pytest.fixture(scope="module")
def rutland_lsoas(demo):
    with Store(demo.store_path, read_only=True) as opened:
        return opened.df("SELECT lsoa21_code FROM small_areas WHERE lad_code = 'E06000017'")["lsoa21_code"].tolist()


@pytest.mark.parametrize("hours, weekday, minute, outdoor, expected", [
    ("24/7", 6, 180, False, True),
    ("Mo-Fr 08:00-18:00", 2, 12 * 60, False, True),
    ("Mo-Fr 08:00-18:00", 2, 20 * 60, False, False),
    ("Mo-Fr 08:00-18:00", 5, 12 * 60, False, False),
    ("Mo-Fr 08:00-18:00; Sa 09:00-13:00", 5, 10 * 60, False, True),
    ("Mo-Su 22:00-06:00", 2, 3 * 60, False, True),
    ("Mo-Fr 08:00-18:00; We off", 2, 12 * 60, False, False),
    (None, 2, 3 * 60, True, True),  # unknown hours, outdoors: all hours
    (None, 2, 3 * 60, False, False),  # unknown hours, indoors: day only
    ("sunrise-sunset", 2, 12 * 60, False, True),  # unparsable: treated as unknown
])
def test_open_at(hours, weekday, minute, outdoor, expected):
    assert defib.open_at(hours, weekday, minute, outdoor=outdoor) is expected


def test_osm_defibrillator_from_the_bundled_extract(demo_store):
    frame = demo_store.df("SELECT * FROM defibrillators WHERE source = 'osm'")
    assert list(frame["defib_id"]) == ["osm-n5036730561"]
    row = frame.iloc[0]
    assert row["outdoor"] and row["status"] == "reported" and "phone box" in row["location_note"]


def test_reports_match_within_the_distance_and_bad_reports_are_refused(store):
    near = defib.Report(HAMBLETON[0] + 0.0002, HAMBLETON[1], None, "public", "24/7", False)  # about 22 m north
    assert defib.add_report(store, near) == ("osm-n5036730561", True)
    again = defib.Report(HAMBLETON[0] - 0.0002, HAMBLETON[1] + 0.0001, None, "public", "24/7", True)
    assert defib.add_report(store, again)[0] == "osm-n5036730561"
    far_id, matched = defib.add_report(store, defib.Report(52.6700, -0.7300, None, "restricted", "Mo-Fr 09:00-17:00", None))
    assert not matched and far_id.startswith("report-")
    before = {t: store.df(f"SELECT * FROM {t} ORDER BY ALL") for t in ("defibrillators", "defib_reports")}
    for bad, message in [
        (defib.Report(48.85, 2.35, None, "public", "24/7", None), "not in England"),
        (defib.Report(None, None, "ZZ9 9ZZ", "public", "24/7", None), "unknown postcode"),
        (defib.Report(None, None, None, "public", "24/7", None), "a location is needed"),
        (defib.Report(52.66, -0.67, None, "everyone", "24/7", None), "access must be"),
        (defib.Report(52.66, -0.67, None, "public", "", None), "hours are required"),
    ]:
        with pytest.raises(InputError, match=message):
            defib.add_report(store, bad)
    for table, frame in before.items():
        pd.testing.assert_frame_equal(frame, store.df(f"SELECT * FROM {table} ORDER BY ALL"))
    listed = defib.register(store).set_index("defib_id")
    assert listed.loc["osm-n5036730561", "reports"] == 2


def test_csv_import_statuses_and_expiry(store, tmp_path):
    path = write(tmp_path / "defibs.csv",
                 "id,lat,lon,postcode,access,hours,guardian,registered,pads_expiry,battery_expiry,last_checked\n"
                 "A1,52.6700,-0.7200,,public,24/7,Parish council,yes,2020-01-01,,2024-05-01\n"
                 "A2,,,LE15 6NT,restricted,Mo-Fr 08:00-18:00,Surgery,no,,2030-01-01,2024-05-01\n"
                 "A3,52.6500,-0.7000,,public,24/7,,,,,\n")
    assert defib.import_defibrillators(store, defib.parse_defibrillator_csv(path, store), source="csv") == 3
    listed = defib.register(store, today=pd.Timestamp("2026-11-23").date()).set_index("defib_id")
    assert listed.loc[["csv-A1", "csv-A2", "csv-A3"], "status"].tolist() == ["registered", "verified", "reported"]
    assert listed.loc["csv-A1", "pads_expired"] and not listed.loc["csv-A2", "battery_expired"]
    assert set(defib.unregistered(store)["defib_id"]) == {"csv-A2", "csv-A3", "osm-n5036730561"}
    bad = write(tmp_path / "bad.csv", "id,lat,lon,postcode,access,hours,guardian,registered,pads_expiry,battery_expiry,"
                                      "last_checked\nB1,,,ZZ9 9ZZ,public,24/7,,,,,\n")
    with pytest.raises(InputError, match=r"line 2.*unknown postcode"):
        defib.parse_defibrillator_csv(bad, store)
    worse = write(tmp_path / "worse.csv", "id,lat,lon,access\nB1,52.6,-0.7,sometimes\n")
    with pytest.raises(InputError, match=r"line 2, field 'access'"):
        defib.parse_defibrillator_csv(worse, store)
    no_id = write(tmp_path / "no_id.csv", "lat,lon,access\n52.6,-0.7,public\n")
    with pytest.raises(InputError, match="missing column.*'id'"):
        defib.parse_defibrillator_csv(no_id, store)


def extra_defib(site_id, lat, lon, access="public", hours="24/7", outdoor=True):
    e, n = defib.to_bng(np.array([lon]), np.array([lat]))
    return pd.DataFrame([{"site_id": site_id, "easting": e[0], "northing": n[0], "access": access, "hours": hours,
                          "outdoor": outdoor}])


def covered_people(cov, time, band="first"):
    return cov.people.loc[cov.people[f"covered_{time}_{band}"], "people"].sum()


def test_restricted_or_daytime_only_do_not_count_at_night(store, rutland_lsoas):
    oakham = (52.6710, -0.7275)  # Oakham town centre
    base = defib.coverage(store, lsoas=rutland_lsoas)
    daytime = defib.coverage(store, lsoas=rutland_lsoas, extra=extra_defib("day", *oakham, hours="Mo-Fr 08:00-18:00",
                                                                            outdoor=False))
    assert covered_people(daytime, "day") > covered_people(base, "day")
    assert covered_people(daytime, "night") == covered_people(base, "night")
    restricted = defib.coverage(store, lsoas=rutland_lsoas, extra=extra_defib("r", *oakham, access="restricted"))
    for time in defib.TIMES:
        assert covered_people(restricted, time) == covered_people(base, time)
    public = defib.coverage(store, lsoas=rutland_lsoas, extra=extra_defib("p", *oakham))
    assert covered_people(public, "night") > covered_people(base, "night")


@settings(max_examples=8, deadline=None)
@given(dx=st.floats(-0.03, 0.03), dy=st.floats(-0.03, 0.03), hours=st.sampled_from(["24/7", "Mo-Fr 08:00-18:00", None]))
def test_coverage_never_falls_when_a_defibrillator_is_added(demo, rutland_lsoas, dx, dy, hours):
    with Store(demo.store_path, read_only=True) as opened:
        base = defib.coverage(opened, lsoas=rutland_lsoas)
        more = defib.coverage(opened, lsoas=rutland_lsoas, extra=extra_defib("x", 52.66 + dy, -0.70 + dx, hours=hours))
    for column in [c for c in base.people.columns if c.startswith("covered_")]:
        assert (more.people[column] >= base.people[column]).all()


def brute_force(weights, covers, k):
    best = 0.0
    for combo in itertools.combinations(range(len(covers)), min(k, len(covers))):
        hit = np.zeros(len(weights), bool)
        for j in combo:
            hit[covers[j]] = True
        best = max(best, weights[hit].sum())
    return best


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n_points=st.integers(3, 25), n_sites=st.integers(2, 8), k=st.integers(1, 4))
def test_exact_siting_matches_brute_force_and_beats_greedy(seed, n_points, n_sites, k):
    rng = np.random.default_rng(seed)
    weights = rng.integers(1, 100, n_points).astype(float)
    covers = [np.flatnonzero(rng.random(n_points) < 0.3) for _ in range(n_sites)]
    exact = defib.exact_cover(weights, covers, k)
    greedy = defib.greedy_cover(weights, covers, k)

    def value(chosen):
        hit = np.zeros(n_points, bool)
        for j in chosen:
            hit[covers[j]] = True
        return weights[hit].sum()

    assert len(exact) <= k
    assert value(exact) == pytest.approx(brute_force(weights, covers, k))
    assert value(exact) >= value(greedy) - 1e-9


def test_greedy_can_be_beaten():
    """A classic case: the greedy first pick (the biggest set) blocks the best pair."""
    weights = np.ones(6)
    covers = [np.array([0, 1, 2, 3]), np.array([0, 1, 4]), np.array([2, 3, 5])]
    assert defib.greedy_cover(weights, covers, 2) == [0, 1]  # covers 5
    assert sorted(defib.exact_cover(weights, covers, 2)) == [1, 2]  # covers all 6


def test_demo_siting(demo, demo_store):
    import re

    html = demo.report_path.read_text()
    added = float(re.search(r"([\d,]+) more people covered at night", html).group(1).replace(",", ""))
    assert 1_500 < added < 2_500  # "about 2,000", as the README says
    assert "Defibrillators: coverage, deserts and best new sites" in html
    assert "not registered on The Circuit" in html and "osm-n5036730561" in html


def test_cli_defib(demo, tmp_path):
    copy = tmp_path / "s.duckdb"
    shutil.copyfile(demo.store_path, copy)
    runner = CliRunner()
    result = runner.invoke(app, ["defib", "import", "--store", str(copy)])
    assert result.exit_code == 0 and "1 defibrillators from OpenStreetMap" in result.output, result.output
    result = runner.invoke(app, ["defib", "report", "--lat", "52.6583", "--lon", "-0.6705", "--access", "public",
                                 "--hours", "24/7", "--looks-unregistered", "--store", str(copy)])
    assert result.exit_code == 0 and "known defibrillator osm-n5036730561" in result.output, result.output
    result = runner.invoke(app, ["defib", "report", "--lat", "48.85", "--lon", "2.35", "--access", "public",
                                 "--hours", "24/7", "--store", str(copy)])
    assert result.exit_code == 2 and "not in England" in result.output
    out = tmp_path / "unregistered.csv"
    result = runner.invoke(app, ["defib", "list", "--unregistered", "--store", str(copy), "--out", str(out)])
    assert result.exit_code == 0 and len(pd.read_csv(out)) == 1
    result = runner.invoke(app, ["defib", "deserts", "--lad", "E06000017", "--store", str(copy)])
    assert result.exit_code == 0 and "night:" in result.output, result.output
    result = runner.invoke(app, ["defib", "site", "--k", "3", "--lad", "E06000017", "--store", str(copy)])
    assert result.exit_code == 0 and "gap" in result.output, result.output
