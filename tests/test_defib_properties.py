"""Defibrillator coverage properties on the demo store, over Hypothesis-generated defibrillators and reports.

For any set of defibrillators (anywhere around Rutland, any access, any hours: valid, invalid or
absent, indoors or out) and any one more:
- coverage never falls when it is added, at any time of day and in either band;
- covered + not covered + not assessed = all residents, in total and in every LSOA;
- one that is restricted, or whose hours are closed at 03:00 on the reference Wednesday, never
  changes night coverage.
Reports: a valid one that adds a defibrillator never lowers coverage (one on a known defibrillator
may rightly report it closed), totals reconcile after each; one with hours that are not ``opening_hours`` is
refused and leaves the store exactly as it was. Derandomized, so CI runs the same examples.
"""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from nearcare import InputError, defib
from nearcare.store import Store

# Valid opening_hours, and for each whether it is open at 03:00 on a Wednesday.
HOURS = {
    "24/7": True,
    "Mo-Fr 08:00-18:00": False,
    "Mo-Su 22:00-06:00": True,
    "24/7 closed": False,
    "sunrise-sunset": False,
    "Mo-Fr 08:00-18:00; PH off": False,
    "Tu 22:00-04:00": True,
    "We 02:00-03:30": True,
}
INVALID = ["whenever", "24 hours", "Mo-Fr 8-6"]

# Placed near a resident's postcode (by index), so that most examples change someone's coverage.
defibrillator = st.fixed_dictionaries(
    {
        "near": st.integers(0, 100_000),
        "dx_m": st.floats(-150, 150),
        "dy_m": st.floats(-150, 150),
        "access": st.sampled_from(["public", "restricted", "unknown"]),
        "hours": st.sampled_from([*HOURS, *INVALID, None]),
        "outdoor": st.booleans(),
    }
)
SETTINGS = settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def rutland(demo):
    with Store(demo.store_path, read_only=True) as opened:
        return opened.df("SELECT lsoa21_code FROM small_areas WHERE lad_code = 'E06000017'")[
            "lsoa21_code"
        ].tolist()


@pytest.fixture(scope="module")
def homes(demo, rutland):
    """Rutland's residents' postcode points (easting, northing)."""
    with Store(demo.store_path, read_only=True) as opened:
        return defib.residents(opened, rutland)[["easting", "northing"]].to_numpy(float)


def place(homes: np.ndarray, spec: dict) -> tuple[float, float]:
    easting, northing = homes[spec["near"] % len(homes)]
    return easting + spec["dx_m"], northing + spec["dy_m"]


def frame(defibs: list[dict], homes: np.ndarray) -> pd.DataFrame:
    rows = pd.DataFrame(defibs, columns=["access", "hours", "outdoor"])
    rows["site_id"] = [f"x{i}" for i in range(len(rows))]
    at = np.array([place(homes, d) for d in defibs]).reshape(-1, 2)
    rows["easting"], rows["northing"] = at[:, 0], at[:, 1]
    return rows


def covered_columns(cov) -> list[str]:
    return [c for c in cov.people.columns if c.startswith("covered_")]


def assert_reconciles(cov) -> None:
    people = cov.people
    for column in covered_columns(cov):
        covered = people.loc[people[column], "people"].sum()
        not_covered = people.loc[people["assessed"] & ~people[column], "people"].sum()
        assert not (people[column] & ~people["assessed"]).any()  # nobody unassessed is called covered
        assert covered + not_covered + cov.not_assessed_people == pytest.approx(cov.total_people, abs=1e-6)
    by_lsoa = cov.by_lsoa
    assert np.allclose(by_lsoa["people_assessed"] + by_lsoa["people_not_assessed"], by_lsoa["people"])
    assert by_lsoa["people"].sum() == pytest.approx(cov.total_people)


@SETTINGS
@given(existing=st.lists(defibrillator, max_size=3), added=defibrillator)
def test_adding_a_defibrillator_never_lowers_coverage_and_totals_reconcile(
    demo, rutland, homes, existing, added
):
    with Store(demo.store_path, read_only=True) as opened:
        before = defib.coverage(opened, lsoas=rutland, extra=frame(existing, homes))
        after = defib.coverage(opened, lsoas=rutland, extra=frame([*existing, added], homes))
    for cov in (before, after):
        assert_reconciles(cov)
    assert before.people["postcode"].tolist() == after.people["postcode"].tolist()
    for column in covered_columns(before):
        assert (after.people[column] >= before.people[column]).all(), column
    event(
        f"night coverage {'rose' if after.covered_people('night') > before.covered_people('night') else 'unchanged'}"
    )
    # Unknown hours (invalid or absent) count at all hours outdoors, in the day only indoors.
    open_at_night = HOURS[added["hours"]] if added["hours"] in HOURS else added["outdoor"]
    usable = added["access"] == "public" or (added["access"] == "unknown" and added["outdoor"])
    if not (usable and open_at_night):  # restricted, or closed at night: night coverage is unchanged
        for band in ("first", "second"):
            column = f"covered_night_{band}"
            assert (after.people[column] == before.people[column]).all()


@settings(SETTINGS, max_examples=4)
@given(
    reports=st.lists(st.tuples(defibrillator, st.sampled_from([*HOURS, *INVALID])), min_size=1, max_size=3)
)
def test_reports_never_lower_coverage_and_bad_hours_store_nothing(
    demo, rutland, homes, tmp_path_factory, reports
):
    copy = tmp_path_factory.mktemp("reports") / "store.duckdb"
    shutil.copyfile(demo.store_path, copy)
    with Store(copy) as opened:
        cov = defib.coverage(opened, lsoas=rutland)
        for spec, hours in reports:
            lon, lat = defib.to_wgs84(*(np.array([v]) for v in place(homes, spec)))
            access = "public" if spec["access"] == "unknown" else spec["access"]
            report = defib.Report(float(lat[0]), float(lon[0]), None, access, hours, None)
            tables = {
                t: opened.df(f"SELECT * FROM {t} ORDER BY ALL") for t in ("defibrillators", "defib_reports")
            }
            if hours in INVALID:
                with pytest.raises(InputError, match="opening_hours"):
                    defib.add_report(opened, report)
                for table, before in tables.items():
                    pd.testing.assert_frame_equal(before, opened.df(f"SELECT * FROM {table} ORDER BY ALL"))
                continue
            _, matched = defib.add_report(opened, report)
            now = defib.coverage(opened, lsoas=rutland)
            assert_reconciles(now)
            if not matched:  # a new defibrillator (a report on a known one may rightly say it is closed)
                for column in covered_columns(cov):
                    assert (now.people[column] >= cov.people[column]).all(), column
            cov = now
