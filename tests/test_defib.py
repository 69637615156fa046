"""Defibrillators: opening hours, the register and reports, coverage by time of day, exact siting."""

from __future__ import annotations

import itertools
import shutil

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.conftest import write
from typer.testing import CliRunner

from nearcare import InputError, defib
from nearcare.cli import app
from nearcare.store import Store

HAMBLETON = (52.6582515, -0.6705121)


@pytest.fixture(scope="module")
def rutland_lsoas(demo):
    with Store(demo.store_path, read_only=True) as opened:
        return opened.df("SELECT lsoa21_code FROM small_areas WHERE lad_code = 'E06000017'")[
            "lsoa21_code"
        ].tolist()


RUTLAND = {"lat": 52.66, "lon": -0.67}
SATURDAY = 5


@pytest.mark.parametrize(
    "hours, weekday, minute, outdoor, expected",
    [
        ("24/7", 6, 180, False, True),
        ("Mo-Fr 08:00-18:00", 2, 12 * 60, False, True),
        ("Mo-Fr 08:00-18:00", 2, 20 * 60, False, False),
        ("Mo-Fr 08:00-18:00", 5, 12 * 60, False, False),
        ("Mo-Fr 08:00-18:00; Sa 09:00-13:00", 5, 10 * 60, False, True),
        ("Mo-Su 22:00-06:00", 2, 3 * 60, False, True),
        ("Mo-Fr 08:00-18:00; We off", 2, 12 * 60, False, False),
        (None, 2, 3 * 60, True, True),  # unknown hours, outdoors: all hours
        (None, 2, 3 * 60, False, False),  # unknown hours, indoors: day only
        # Issue 12, item 7: the old parser called these unknown, so outdoors they counted at all hours.
        ("24/7 closed", 2, 3 * 60, True, False),  # out of service
        ("24/7 off", 2, 12 * 60, True, False),
        ("Mo-Fr 22:00-02:00", SATURDAY, 60, False, True),  # Friday's hours run into Saturday
        ("Mo-Fr 22:00-02:00", 6, 60, False, False),  # but Saturday's do not exist
        ("sunrise-sunset", 2, 12 * 60, True, True),  # the sun's times at the place, on the reference day
        ("sunrise-sunset", 2, 20 * 60, True, False),
        ("sunrise-sunset", 2, 3 * 60, True, False),
        ("Mo-Fr 08:00-18:00; PH off", 2, 12 * 60, False, True),  # no public holiday in the reference week
        ("PH off", 2, 12 * 60, True, False),  # parses: no rule opens it
        # Not valid opening_hours (as in some OSM data): unknown, counted as if not recorded.
        ("whenever", 2, 3 * 60, True, True),
        ("whenever", 2, 3 * 60, False, False),
        ("whenever", 2, 12 * 60, False, True),
        ("24/7 unknown", 2, 3 * 60, False, False),
    ],
)
def test_open_at(hours, weekday, minute, outdoor, expected):
    assert defib.open_at(hours, weekday, minute, outdoor=outdoor, **RUTLAND) is expected


def test_hours_states_and_reasons():
    assert defib.hours_state("whenever", 2, 180, **RUTLAND) == "unknown"
    assert defib.hours_state("24/7 closed", 2, 180, **RUTLAND) == "closed"
    assert defib.hours_problem("PH off") is None and defib.hours_problem("24/7 closed") is None
    assert "not valid opening_hours at character 1" in defib.hours_problem("whenever")
    assert defib.hours_problem("Mo-Fr 25:00-26:00") is not None


def test_the_reference_week_has_no_public_holiday():
    """PH rules never apply to the figures: the package's GB calendar has no holiday that week
    (and it does know the early May bank holiday, so the check can fail)."""
    import datetime as dt
    import zoneinfo

    from opening_hours import OpeningHours

    holidays = OpeningHours("PH", timezone=zoneinfo.ZoneInfo("Europe/London"), country="GB")
    monday = dt.datetime.combine(defib.REFERENCE_MONDAY, dt.time())
    assert holidays.is_open(dt.datetime(2026, 5, 4, 12))
    assert all(holidays.is_closed(monday + dt.timedelta(hours=h)) for h in range(7 * 24))
    assert monday.weekday() == 0 and monday.month == 3  # Greenwich Mean Time: before the clocks change


def test_osm_defibrillator_from_the_bundled_extract(demo_store):
    frame = demo_store.df("SELECT * FROM defibrillators WHERE source = 'osm'")
    assert list(frame["defib_id"]) == ["osm-n5036730561"]
    row = frame.iloc[0]
    assert row["outdoor"] and row["status"] == "reported" and "phone box" in row["location_note"]


def test_reports_match_within_the_distance_and_bad_reports_are_refused(store):
    near = defib.Report(
        HAMBLETON[0] + 0.0002, HAMBLETON[1], None, "public", "24/7", False
    )  # about 22 m north
    assert defib.add_report(store, near) == ("osm-n5036730561", True)
    again = defib.Report(HAMBLETON[0] - 0.0002, HAMBLETON[1] + 0.0001, None, "public", "24/7", True)
    assert defib.add_report(store, again)[0] == "osm-n5036730561"
    far_id, matched = defib.add_report(
        store, defib.Report(52.6700, -0.7300, None, "restricted", "Mo-Fr 09:00-17:00", None)
    )
    assert not matched and far_id.startswith("report-")
    before = {t: store.df(f"SELECT * FROM {t} ORDER BY ALL") for t in ("defibrillators", "defib_reports")}
    for bad, message in [
        (defib.Report(48.85, 2.35, None, "public", "24/7", None), "not in England"),
        (defib.Report(None, None, "ZZ9 9ZZ", "public", "24/7", None), "unknown postcode"),
        (defib.Report(None, None, None, "public", "24/7", None), "a location is needed"),
        (defib.Report(52.66, -0.67, None, "everyone", "24/7", None), "access must be"),
        (defib.Report(52.66, -0.67, None, "public", "", None), "hours are required"),
        (defib.Report(52.66, -0.67, None, "public", "whenever", None), "opening_hours.*character 1"),
        (defib.Report(52.6700, -0.7300, None, "public", "24 hours", None), "opening_hours"),
    ]:
        with pytest.raises(InputError, match=message):
            defib.add_report(store, bad)
    for table, frame in before.items():
        pd.testing.assert_frame_equal(frame, store.df(f"SELECT * FROM {table} ORDER BY ALL"))
    listed = defib.register(store).set_index("defib_id")
    assert listed.loc["osm-n5036730561", "reports"] == 2


def test_register_shows_reported_hours_never_nan(store):
    """Issue 12, item 8: after a report matched a known defibrillator with no recorded hours (next to
    one with hours), the register showed its hours as NaN."""
    defib.add_report(store, defib.Report(52.6700, -0.7300, None, "restricted", "Mo-Fr 09:00-17:00", None))
    listed = defib.register(store).set_index("defib_id")
    assert (
        listed.loc["osm-n5036730561", "hours"] is None and listed.loc["osm-n5036730561", "hours_from"] is None
    )
    defib.add_report(
        store, defib.Report(HAMBLETON[0], HAMBLETON[1], None, "public", "Mo-Su 07:00-22:00", None)
    )
    defib.add_report(
        store, defib.Report(HAMBLETON[0], HAMBLETON[1], None, "public", "24/7", None)
    )  # the latest
    listed = defib.register(store).set_index("defib_id")
    assert listed.loc["osm-n5036730561", ["hours", "hours_from"]].tolist() == ["24/7", "report"]
    assert listed.loc["report-1", ["hours", "hours_from"]].tolist() == ["Mo-Fr 09:00-17:00", "recorded"]
    text = ["postcode", "hours", "hours_from", "guardian", "location_note", "hours_problem"]
    assert not any(isinstance(v, float) for v in listed[text].to_numpy().ravel())  # no NaN for missing text
    # The stored OSM record is untouched (a new import replaces it); coverage reads the register's hours.
    assert store.scalar("SELECT hours FROM defibrillators WHERE defib_id = 'osm-n5036730561'") is None


def test_csv_import_statuses_and_expiry(store, tmp_path):
    path = write(
        tmp_path / "defibs.csv",
        "id,lat,lon,postcode,access,hours,guardian,registered,pads_expiry,battery_expiry,last_checked\n"
        "A1,52.6700,-0.7200,,public,24/7,Parish council,yes,2020-01-01,,2024-05-01\n"
        "A2,,,LE15 6NT,restricted,Mo-Fr 08:00-18:00,Surgery,no,,2030-01-01,2024-05-01\n"
        "A3,52.6500,-0.7000,,public,24/7,,,,,\n",
    )
    assert defib.import_defibrillators(store, defib.parse_defibrillator_csv(path, store), source="csv") == 3
    listed = defib.register(store, today=pd.Timestamp("2026-11-23").date()).set_index("defib_id")
    assert listed.loc[["csv-A1", "csv-A2", "csv-A3"], "status"].tolist() == [
        "registered",
        "verified",
        "reported",
    ]
    assert listed.loc["csv-A1", "pads_expired"] and not listed.loc["csv-A2", "battery_expired"]
    assert set(defib.unregistered(store)["defib_id"]) == {"csv-A2", "csv-A3", "osm-n5036730561"}
    bad = write(
        tmp_path / "bad.csv",
        "id,lat,lon,postcode,access,hours,guardian,registered,pads_expiry,battery_expiry,"
        "last_checked\nB1,,,ZZ9 9ZZ,public,24/7,,,,,\n",
    )
    with pytest.raises(InputError, match=r"line 2.*unknown postcode"):
        defib.parse_defibrillator_csv(bad, store)
    worse = write(tmp_path / "worse.csv", "id,lat,lon,access\nB1,52.6,-0.7,sometimes\n")
    with pytest.raises(InputError, match=r"line 2, field 'access'"):
        defib.parse_defibrillator_csv(worse, store)
    vague = write(
        tmp_path / "vague.csv",
        "id,lat,lon,access,hours\nB1,52.6,-0.7,public,24/7\nB2,52.6,-0.7,public,whenever\n",
    )
    with pytest.raises(InputError, match=r"line 3, field 'hours'.*opening_hours"):
        defib.parse_defibrillator_csv(vague, store)
    no_id = write(tmp_path / "no_id.csv", "lat,lon,access\n52.6,-0.7,public\n")
    with pytest.raises(InputError, match=r"missing column.*'id'"):
        defib.parse_defibrillator_csv(no_id, store)


def extra_defib(site_id, lat, lon, access="public", hours="24/7", outdoor=True):
    e, n = defib.to_bng(np.array([lon]), np.array([lat]))
    return pd.DataFrame(
        [
            {
                "site_id": site_id,
                "easting": e[0],
                "northing": n[0],
                "access": access,
                "hours": hours,
                "outdoor": outdoor,
            }
        ]
    )


def covered_people(cov, time, band="first"):
    return cov.people.loc[cov.people[f"covered_{time}_{band}"], "people"].sum()


def test_restricted_or_daytime_only_do_not_count_at_night(store, rutland_lsoas):
    oakham = (52.6710, -0.7275)  # Oakham town centre
    base = defib.coverage(store, lsoas=rutland_lsoas)
    daytime = defib.coverage(
        store,
        lsoas=rutland_lsoas,
        extra=extra_defib("day", *oakham, hours="Mo-Fr 08:00-18:00", outdoor=False),
    )
    assert covered_people(daytime, "day") > covered_people(base, "day")
    assert covered_people(daytime, "night") == covered_people(base, "night")
    restricted = defib.coverage(
        store, lsoas=rutland_lsoas, extra=extra_defib("r", *oakham, access="restricted")
    )
    for time in defib.TIMES:
        assert covered_people(restricted, time) == covered_people(base, time)
    public = defib.coverage(store, lsoas=rutland_lsoas, extra=extra_defib("p", *oakham))
    assert covered_people(public, "night") > covered_people(base, "night")


def test_out_of_service_and_sun_hours_do_not_count_at_night(store, rutland_lsoas):
    """Issue 12, item 7: an outdoor cabinet marked ``24/7 closed`` covered people at night."""
    oakham = (52.6710, -0.7275)
    base = defib.coverage(store, lsoas=rutland_lsoas)
    closed = defib.coverage(
        store, lsoas=rutland_lsoas, extra=extra_defib("closed", *oakham, hours="24/7 closed")
    )
    for time in defib.TIMES:
        assert covered_people(closed, time) == covered_people(base, time)
    sun = defib.coverage(
        store, lsoas=rutland_lsoas, extra=extra_defib("sun", *oakham, hours="sunrise-sunset")
    )
    assert covered_people(sun, "day") > covered_people(base, "day")
    assert covered_people(sun, "night") == covered_people(base, "night")
    assert covered_people(sun, "evening") == covered_people(base, "evening")  # 20:00 in March is after sunset


def test_people_off_the_walking_network_are_not_assessed(demo_store):
    """Issue 12, item 6: over LLR, with a walking network for Rutland only, the shares were of
    1,083,226 people and Leicester LSOAs ranked as the worst deserts."""
    cov = defib.coverage(demo_store)
    areas = demo_store.df("SELECT lsoa21_code, lad_code, population FROM small_areas")
    assert cov.total_people == pytest.approx(areas["population"].sum())
    for time in defib.TIMES:
        for band in ("first", "second"):
            covered = cov.covered_people(time, band)
            not_covered = cov.people.loc[
                cov.people["assessed"] & ~cov.people[f"covered_{time}_{band}"], "people"
            ].sum()
            assert covered + not_covered + cov.not_assessed_people == pytest.approx(
                cov.total_people, abs=1e-6
            )
        assert cov.share(time) == pytest.approx(100 * cov.covered_people(time) / cov.assessed_people)
    by_lsoa = cov.by_lsoa.set_index("lsoa21_code")
    assert (by_lsoa["people_assessed"] + by_lsoa["people_not_assessed"]).to_numpy() == pytest.approx(
        by_lsoa["people"].to_numpy()
    )
    leicester = areas.loc[areas["lad_code"] == "E06000016", "lsoa21_code"]
    assert len(leicester) > 100 and by_lsoa.loc[leicester, "people_assessed"].sum() == 0
    assert cov.not_assessed_people > 0.9 * cov.total_people  # most of LLR is off the Rutland network
    found = defib.deserts(cov)
    assert (
        len(found) and not set(found["lsoa21_code"]) & set(leicester) and (found["people_assessed"] > 0).all()
    )
    partly = by_lsoa[by_lsoa["people_not_assessed"] > 0]
    assert cov.not_assessed_note().startswith(
        f"not assessed: {cov.not_assessed_people:,.0f} people in {len(partly)} LSOAs with no walking network"
    )


def test_lsoas_without_a_boundary_keep_their_residents(store):
    """Review of issue 12: residents() kept only LSOAs with a boundary, so in a store built without
    boundaries their people vanished from "all residents" and from "not assessed" alike."""
    rutland = store.df("SELECT lsoa21_code FROM small_areas WHERE lad_code = 'E06000017' ORDER BY 1")[
        "lsoa21_code"
    ].tolist()
    before = defib.coverage(store, lsoas=rutland)
    blanked = rutland[::2]
    store.con.execute(
        "UPDATE small_areas SET boundary = NULL WHERE lsoa21_code IN (SELECT unnest(?))", [blanked]
    )
    # And one LSOA with neither boundary nor centroid: its people are counted, as not assessed.
    store.con.execute(
        "UPDATE small_areas SET centroid_easting = NULL, centroid_northing = NULL WHERE lsoa21_code = ?",
        [blanked[0]],
    )
    after = defib.coverage(store, lsoas=rutland)
    population = store.df(
        "SELECT sum(population) AS p FROM small_areas WHERE lsoa21_code IN (SELECT unnest(?))", [rutland]
    )["p"].iloc[0]
    assert before.total_people == pytest.approx(population) and after.total_people == pytest.approx(
        population
    )
    by_lsoa = after.by_lsoa.set_index("lsoa21_code")
    assert set(blanked) <= set(by_lsoa.index)
    assert (
        by_lsoa.loc[blanked[0], "people_assessed"] == 0 and by_lsoa.loc[blanked[0], "people_not_assessed"] > 0
    )
    assert by_lsoa.loc[blanked[1:], "people_assessed"].sum() > 0  # placed at their centroids, on the network
    for time in defib.TIMES:
        not_covered = after.people.loc[
            after.people["assessed"] & ~after.people[f"covered_{time}_first"], "people"
        ].sum()
        assert after.covered_people(time) + not_covered + after.not_assessed_people == pytest.approx(
            population
        )


def brute_force(weights, covers, k):
    best = 0.0
    for combo in itertools.combinations(range(len(covers)), min(k, len(covers))):
        hit = np.zeros(len(weights), bool)
        for j in combo:
            hit[covers[j]] = True
        best = max(best, weights[hit].sum())
    return best


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000), n_points=st.integers(3, 25), n_sites=st.integers(2, 8), k=st.integers(1, 4)
)
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


@pytest.mark.filterwarnings("ignore:Constructing LpVariable:DeprecationWarning")  # spopt's PuLP 3 style
@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 10_000), n_points=st.integers(3, 30), n_sites=st.integers(2, 8), k=st.integers(1, 4)
)
def test_exact_siting_covers_as_many_people_as_spopt_mclp(seed, n_points, n_sites, k):
    """Cross-check against an independent formulation: spopt's MCLP (Church & ReVelle) on a cost
    matrix built so that candidate j covers point i exactly when i is in covers[j]."""
    import pulp
    from spopt.locate import MCLP

    rng = np.random.default_rng(seed)
    weights = rng.integers(1, 100, n_points).astype(float)
    covers = [np.flatnonzero(rng.random(n_points) < 0.3) for _ in range(n_sites)]
    k = min(k, n_sites)  # spopt places exactly k facilities; nearcare at most k
    cost = np.full((n_points, n_sites), 10.0)
    for j, c in enumerate(covers):
        cost[c, j] = 1.0
    reference = MCLP.from_cost_matrix(cost, weights, service_radius=5.0, p_facilities=k)
    reference = reference.solve(pulp.PULP_CBC_CMD(msg=False))
    chosen_by_spopt = [j for j, var in enumerate(reference.fac_vars) if var.value() > 0.5]
    hit = np.zeros(n_points, bool)
    for j in chosen_by_spopt:
        hit[covers[j]] = True
    spopt_people = weights[hit].sum()
    assert spopt_people == pytest.approx(pulp.value(reference.problem.objective))
    exact = defib.exact_cover(weights, covers, k, solver=pulp.PULP_CBC_CMD(msg=False))
    hit = np.zeros(n_points, bool)
    for j in exact:
        hit[covers[j]] = True
    assert weights[hit].sum() == pytest.approx(spopt_people)


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
    rutland = demo_store.df("SELECT lsoa21_code FROM small_areas WHERE lad_code = 'E06000017'")[
        "lsoa21_code"
    ].tolist()
    note = defib.coverage(demo_store, lsoas=rutland).not_assessed_note()
    assert ("N" + note[1:]) in html and "Assessed plus not assessed" in html


def test_cli_defib(demo, tmp_path):
    copy = tmp_path / "s.duckdb"
    shutil.copyfile(demo.store_path, copy)
    runner = CliRunner()
    result = runner.invoke(app, ["defib", "import", "--store", str(copy)])
    assert result.exit_code == 0 and "1 defibrillators from OpenStreetMap" in result.output, result.output
    result = runner.invoke(
        app,
        [
            "defib",
            "report",
            "--lat",
            "52.6583",
            "--lon",
            "-0.6705",
            "--access",
            "public",
            "--hours",
            "24/7",
            "--looks-unregistered",
            "--store",
            str(copy),
        ],
    )
    assert result.exit_code == 0 and "known defibrillator osm-n5036730561" in result.output, result.output
    result = runner.invoke(
        app,
        [
            "defib",
            "report",
            "--lat",
            "48.85",
            "--lon",
            "2.35",
            "--access",
            "public",
            "--hours",
            "24/7",
            "--store",
            str(copy),
        ],
    )
    assert result.exit_code == 2 and "--lat must be in range, allowed: 49.8 to 55.9" in result.output, (
        result.output
    )
    out = tmp_path / "unregistered.csv"
    result = runner.invoke(app, ["defib", "list", "--unregistered", "--store", str(copy), "--out", str(out)])
    assert result.exit_code == 0 and len(pd.read_csv(out)) == 1
    result = runner.invoke(app, ["defib", "deserts", "--lad", "E06000017", "--store", str(copy)])
    assert result.exit_code == 0 and "night:" in result.output, result.output
    result = runner.invoke(app, ["defib", "site", "--k", "3", "--lad", "E06000017", "--store", str(copy)])
    assert result.exit_code == 0 and "gap" in result.output, result.output
    result = runner.invoke(
        app,
        [
            "defib",
            "report",
            "--lat",
            "52.67",
            "--lon",
            "-0.73",
            "--access",
            "public",
            "--hours",
            "whenever",
            "--store",
            str(copy),
        ],
    )
    assert result.exit_code == 2 and "opening_hours" in result.output, result.output
    result = runner.invoke(app, ["defib", "list", "--store", str(copy)])
    assert "whenever" not in result.output and "nan" not in result.output.lower().split(), result.output


def test_cli_deserts_and_sites_leave_out_people_off_the_network(demo, demo_store):
    """Issue 12, item 6, in the CLI: the whole area's people are reconciled and named."""
    cov = defib.coverage(demo_store)
    runner = CliRunner()
    result = runner.invoke(app, ["defib", "deserts", "--store", str(demo.store_path)])
    assert result.exit_code == 0, result.output
    assert cov.not_assessed_note() in result.output.replace("\n", " ")
    assert f"{len(defib.deserts(cov))} LSOAs are deserts at night" in result.output
    assert (
        f"of {cov.assessed_people:,.0f} assessed people" in result.output and "E01034020" not in result.output
    )
    result = runner.invoke(app, ["defib", "site", "--k", "2", "--store", str(demo.store_path)])
    assert result.exit_code == 0 and "no site is chosen for them" in result.output, result.output
    siting, _ = defib.best_sites(demo_store, 2)
    uncovered_assessed = cov.assessed_people - cov.covered_people("night")
    assert 0 < siting.exact_people <= uncovered_assessed
