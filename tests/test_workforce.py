"""Issue 18, workforce: trends checked by hand against the national file, the gap reconciles, the
risk rules each do what the README says, and the CLI, report and web page show them."""

from __future__ import annotations

import json
import shutil
import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from conftest import shared_file
from nearcare import workforce
from nearcare._errors import InputError
from nearcare.bundle import bundle_dir, load_bundle, make_bundle
from nearcare.cli import app
from nearcare.need import age_factor, deprivation_factor
from nearcare.store import Store

warnings.filterwarnings("ignore", message=".*httpx.*")
from fastapi.testclient import TestClient  # noqa: E402

from nearcare.web.app import create_app  # noqa: E402

WORKFORCE_CSV = "heec_gp_workforce_annual/workforce_year.csv"
runner = CliRunner()


@pytest.fixture(scope="module")
def source() -> pd.DataFrame:
    return pd.read_csv(shared_file(WORKFORCE_CSV), dtype={"Practice.Code": str})


@pytest.fixture(scope="module")
def found(demo):
    with Store(demo.store_path, read_only=True) as store:
        return workforce.trends(store)


def _row(frame: pd.DataFrame, level: str, code: str, year: int) -> pd.Series:
    rows = frame[(frame["level"] == level) & (frame["code"] == code) & (frame["year"] == year)]
    assert len(rows) == 1
    return rows.iloc[0]


@pytest.mark.parametrize("code", ["C82001", "C82038", "C82044"])
def test_practice_trends_match_the_source_file(found, source, code):
    mine = source[source["Practice.Code"] == code].set_index("Year")
    assert sorted(mine.index) == list(range(2016, 2025))
    for year in (2016, 2019, 2021, 2024):
        row = _row(found.years, "practice", code, year)
        assert row["gp_fte"] == pytest.approx(mine.loc[year, "TOTAL_GP_EXTGL_FTE"])
        assert row["nurse_fte"] == pytest.approx(mine.loc[year, "TOTAL_NURSES_FTE"])
        assert row["admin_fte"] == pytest.approx(mine.loc[year, "TOTAL_ADMIN_FTE"])
        assert row["patients"] == pytest.approx(mine.loc[year, "TOTAL_PATIENTS"])
        assert row["patients_per_gp_fte"] == pytest.approx(
            mine.loc[year, "TOTAL_PATIENTS"] / mine.loc[year, "TOTAL_GP_EXTGL_FTE"]
        )
    change = found.changes[(found.changes["code"] == code) & (found.changes["measure"] == "gp_fte")].iloc[0]
    gp = mine["TOTAL_GP_EXTGL_FTE"]
    assert change["change_3y"] == pytest.approx(gp[2024] - gp[2021])
    assert change["change_5y_pct"] == pytest.approx(100 * (gp[2024] - gp[2019]) / gp[2019])


def test_sub_icb_and_england_trends_match_the_source_file(demo, found, source):
    with Store(demo.store_path, read_only=True) as store:
        codes = store.df("SELECT practice_code FROM practices WHERE sub_icb_code = '04C'")["practice_code"]
    for year in (2016, 2024):
        rows = source[source["Practice.Code"].isin(codes) & (source["Year"] == year)]
        covered = rows[rows["TOTAL_GP_EXTGL_FTE"] > 0]
        row = _row(found.years, "sub_icb", "04C", year)
        assert row["practices"] == len(rows) and row["practices_with_gp_fte"] == len(covered)
        assert row["gp_fte"] == pytest.approx(covered["TOTAL_GP_EXTGL_FTE"].sum())
        assert row["patients_per_gp_fte"] == pytest.approx(
            covered["TOTAL_PATIENTS"].sum() / covered["TOTAL_GP_EXTGL_FTE"].sum()
        )
        # England: every practice in the file (the bundled table was derived from it)
        nation = source[(source["Year"] == year) & (source["TOTAL_GP_EXTGL_FTE"] > 0)]
        england = _row(found.years, "england", "E92000001", year)
        assert england["practices"] == (source["Year"] == year).sum()
        assert england["gp_fte"] == pytest.approx(nation["TOTAL_GP_EXTGL_FTE"].sum())
        assert england["nurse_fte"] == pytest.approx(nation["TOTAL_NURSES_FTE"].sum())
        assert england["need_weighted_patients_per_gp_fte"] == pytest.approx(
            nation["TOTAL_PATIENTS"].sum() / nation["TOTAL_GP_EXTGL_FTE"].sum()
        )


def test_need_weighting_is_relative_to_england(demo):
    with Store(demo.store_path, read_only=True) as store:
        panel, note = workforce.practice_years(store)
        england = store.df("SELECT year, need_factor_mean FROM england_workforce").set_index("year")
        practice = store.df(
            "SELECT pct_65_plus, imd_quintile_england FROM practices WHERE practice_code = 'C82001'"
        )
    assert "relative to England" in note
    row = panel[(panel["practice_code"] == "C82001") & (panel["year"] == 2024)].iloc[0]
    factor = age_factor(practice["pct_65_plus"].iloc[0] / 100) * deprivation_factor(
        2 * practice["imd_quintile_england"].iloc[0] - 0.5
    )
    expected = row["patients"] * factor / england.loc[2024, "need_factor_mean"]
    assert row["need_weighted_patients"] == pytest.approx(expected)


def test_england_figures_computed_from_an_imported_file_when_none_kept(store):
    """Without the bundled table, England's figures come from gp_workforce, and say what they cover."""
    kept = workforce.england_figures(store)[0]
    store.con.execute("DELETE FROM england_workforce")
    computed, note = workforce.england_figures(store)
    assert "imported workforce file" in note and "England only if" in note
    assert computed["practices"].max() < kept["practices"].max()  # the demo holds LLR's practices only
    _, need_note = workforce.practice_years(store)
    assert "relative to England" in need_note  # a computed table has its own need mean


def test_a_store_made_before_the_england_table_opens_read_only(demo, tmp_path):
    path = tmp_path / "old.duckdb"
    shutil.copyfile(demo.store_path, path)
    with Store(path) as store:
        store.con.execute("DROP TABLE england_workforce")
    with Store(path, read_only=True) as store:
        table, note = workforce.england_figures(store)
        assert "imported workforce file" in note and len(table) == 9


def test_old_bundle_without_england_table_still_loads(tmp_path):
    folder = tmp_path / "bundle"
    shutil.copytree(bundle_dir(), folder)
    (folder / "england_workforce.parquet").unlink()
    with Store(tmp_path / "s.duckdb") as store:
        counts = load_bundle(store, folder)
        assert "england_workforce" not in counts and store.count("england_workforce") == 0


def test_gap_reconciles_and_follows_the_benchmark(demo):
    with Store(demo.store_path, read_only=True) as store:
        result = workforce.gap(store)
        given = workforce.gap(store, patients_per_gp_fte=1800, patients_per_nurse_fte=3000)
        with pytest.raises(InputError, match="positive number"):
            workforce.gap(store, patients_per_gp_fte=-5)
        with pytest.raises(InputError, match="no workforce figures for 1999"):
            workforce.gap(store, year=1999)
    groups = result.groups
    total = groups[groups["grouping"] == "total"].iloc[0]
    assert set(groups["grouping"]) == {"total", "sub_icb", "neighbourhood", "imd_quintile"}
    for grouping, parts in groups.groupby("grouping"):
        for column in ("gp_fte_gap", "nurse_fte_gap", "gp_fte", "need_weighted_patients", "practices"):
            assert parts[column].sum() == pytest.approx(total[column]), (grouping, column)
    practices = result.practices
    assert practices["gp_fte_needed"].to_numpy() == pytest.approx(
        practices["need_weighted_patients"].to_numpy() / result.benchmark_per_gp_fte
    )
    assert total["gp_fte_needed"] == pytest.approx(
        total["need_weighted_patients"] / result.benchmark_per_gp_fte
    )
    assert given.benchmark_per_gp_fte == 1800 and "(given)" in given.notes[0]
    assert "England's 2,351" in result.notes[0]  # 62,445,538 patients / 26,561.2 GP FTE in 2024
    g = given.groups[given.groups["grouping"] == "total"].iloc[0]
    assert g["gp_fte_needed"] == pytest.approx(g["need_weighted_patients"] / 1800)


def _practice(**changes) -> SimpleNamespace:
    """A practice that meets no rule; ``changes`` make it meet some."""
    base = {
        "year": 2024,
        "gp_fte": 6.0,
        "patients": 12_000.0,
        "need_weighted_patients_per_gp_fte": 2000.0,
        "load_change_3y_pct": 0.0,
        "gp_fte_change_3y_pct": 0.0,
        "list_change_5y_pct": 0.0,
        "imd_quintile_england": 3,
        "next_practice_km": 1.0,
        "people_newly_beyond_if_closed": 0.0,
    }
    return SimpleNamespace(**(base | changes))


@pytest.mark.parametrize(
    ("changes", "points", "reason"),
    [
        ({}, 0, None),
        ({"gp_fte": 1.5, "patients": 3000.0}, 2, "single-handed: 1.5 GP FTE"),
        ({"gp_fte": 2.9, "patients": 6000.0}, 1, "small: 2.9 GP FTE"),
        ({"gp_fte": 1.0, "patients": 3000.0, "locum_trainee_fte": 2.5}, 2, "(and 2.5 locum or trainee FTE)"),
        ({"need_weighted_patients_per_gp_fte": 2500.0}, 1, "1.25 times the benchmark"),
        ({"need_weighted_patients_per_gp_fte": 2499.0, "load_change_3y_pct": 50.0}, 0, None),
        ({"need_weighted_patients_per_gp_fte": 3000.0, "load_change_3y_pct": 5.0}, 2, "and rising: up 5%"),
        ({"gp_fte_change_3y_pct": -20.0}, 1, "GP FTE down 20% in 3 years"),
        ({"gp_fte_change_3y_pct": -19.9}, 0, None),
        ({"list_change_5y_pct": 20.0}, 1, "list up 20% in 5 years"),
        ({"imd_quintile_england": 1}, 1, "most deprived fifth"),
        ({"imd_quintile_england": pd.NA}, 0, None),
        ({"next_practice_km": 5.1}, 1, "next practice 5.1 km away"),
        ({"people_newly_beyond_if_closed": 1000.0}, 1, "closing it would leave 1,000 people"),
        ({"gp_fte": np.nan}, 0, "no GP FTE reported in 2024"),
        ({"gp_fte": 6.0, "patients": 120_000.0}, 0, "may be wrong"),
    ],
)
def test_each_risk_rule_adds_its_points_and_says_why(changes, points, reason):
    score, reasons = workforce._score(_practice(**changes), benchmark=2000.0)
    assert score == points
    if reason is None:
        assert reasons == []
    else:
        assert any(reason in r for r in reasons), reasons


def test_practices_at_risk_on_the_demo(demo):
    with Store(demo.store_path, read_only=True) as store:
        risk, notes = workforce.practices_at_risk(store)
        closures = pd.DataFrame({"code": ["C82001"], "people_newly_beyond_threshold": [5000.0]})
        with_closure, closure_notes = workforce.practices_at_risk(store, closures=closures)
        n_practices = store.count("practices")
    assert len(risk) == n_practices and risk["risk_score"].is_monotonic_decreasing
    assert any("not assessed" in n for n in notes) and not any("not assessed" in n for n in closure_notes)
    before = risk.set_index("practice_code").loc["C82001"]
    after = with_closure.set_index("practice_code").loc["C82001"]
    assert after["risk_score"] == before["risk_score"] + 1 and "5,000 people" in after["reasons"]
    scored = risk[risk["risk_score"] > 0]
    assert (scored["reasons"] != "").all()
    single = risk[risk["reasons"].str.contains("single-handed")]
    assert len(single) and (single["gp_fte"] <= workforce.SINGLE_HANDED_GP_FTE).all()
    assert risk["easting"].notna().sum() >= n_practices - 3  # shown on the map


def test_cli_workforce_commands(demo, tmp_path):
    store = str(demo.store_path)
    out = tmp_path / "gap.csv"
    result = runner.invoke(app, ["workforce", "gap", "--store", store, "--area", "04C", "--out", str(out)])
    assert result.exit_code == 0, result.output
    written = pd.read_csv(out)
    assert written.loc[written["grouping"] == "total", "practices"].iloc[0] == 49
    assert set(written.loc[written["grouping"] == "sub_icb", "group"]) == {"04C"}
    result = runner.invoke(app, ["workforce", "trends", "--store", store, "--level", "icb"])
    assert result.exit_code == 0 and "E92000001" in result.output and "QK1" in result.output
    risk = tmp_path / "risk.geojson"
    result = runner.invoke(app, ["workforce", "risk", "--store", store, "--no-closures", "--out", str(risk)])
    assert result.exit_code == 0, result.output
    assert len(json.loads(risk.read_text())["features"]) > 100
    bad = runner.invoke(app, ["workforce", "gap", "--store", store, "--area", "XXX"])
    assert bad.exit_code == 2 and "no practices in area 'XXX'" in bad.output


def test_report_has_the_workforce_sections(demo):
    html = demo.report_path.read_text(encoding="utf-8")
    for title in ("Workforce trends", "The workforce gap", "Practices at risk"):
        assert title in html


@pytest.fixture(scope="module")
def client(demo, tmp_path_factory):
    path = tmp_path_factory.mktemp("workforce-web") / "web.duckdb"
    shutil.copyfile(demo.store_path, path)
    return TestClient(create_app(path), base_url="http://127.0.0.1")


def test_web_page_and_api(client):
    page = client.get("/workforce")
    assert (
        page.status_code == 200 and "Practices at risk" in page.text and 'data-view="workforce"' in page.text
    )
    assert (
        "'unsafe-inline'"
        not in page.headers["content-security-policy"].split("script-src", 1)[1].split(";")[0]
    )
    assert page.headers["x-content-type-options"] == "nosniff"
    gap = client.get("/api/workforce/gap").json()
    total = next(g for g in gap["groups"] if g["grouping"] == "total")
    parts = [g for g in gap["groups"] if g["grouping"] == "sub_icb"]
    assert sum(p["gp_fte_gap"] for p in parts) == pytest.approx(total["gp_fte_gap"])
    layer = client.get("/api/workforce/risk.geojson").json()
    assert layer["legend"]["title"] == "Risk score" and layer["features"][0]["geometry"]["type"] == "Point"
    risk = client.get("/api/workforce/risk").json()
    assert risk["practices"][0]["risk_score"] >= risk["practices"][-1]["risk_score"]
    download = client.get("/download/workforce-risk.csv")
    assert download.status_code == 200 and "attachment" in download.headers["content-disposition"]
    assert "reasons" in download.text.splitlines()[0]
    trends = client.get("/api/workforce/trends").json()
    assert {c["level"] for c in trends["changes"]} == {"sub_icb", "icb", "england"}


def test_readme_workforce_figures(demo):
    """The figures the README's Workforce section quotes for the demo."""
    with Store(demo.store_path, read_only=True) as store:
        result = workforce.gap(store)
        found = workforce.trends(store)
    groups = result.groups.set_index(["grouping", "group"])
    assert round(result.benchmark_per_gp_fte) == 2351 and round(result.benchmark_per_nurse_fte) == 3770
    total = groups.loc[("total", "area")]
    assert (round(total["gp_fte"], 1), round(total["gp_fte_needed"], 1), round(total["gp_fte_gap"], 1)) == (
        481.7,
        480.4,
        -1.3,
    )
    assert round(total["nurse_fte_gap"], 1) == 29.5
    assert round(groups.loc[("sub_icb", "04C"), "gp_fte_gap"], 1) == 58.8
    quintile = groups.loc["imd_quintile", "gp_fte_gap"]
    assert (
        round(quintile["1"] + quintile["2"], 1) == 61.6 and round(quintile["4"] + quintile["5"], 1) == -60.2
    )
    icb = _row(found.years, "icb", "QK1", 2024)
    assert (
        round(icb["patients_per_gp_fte"]) == 2465 and round(icb["need_weighted_patients_per_gp_fte"]) == 2345
    )
    england = found.years[found.years["level"] == "england"]
    assert england["practices_with_gp_fte"].min() == 6296 and england["practices_with_gp_fte"].max() == 7274


_fte = st.one_of(st.just(0.0), st.just(float("nan")), st.floats(0.1, 50))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from("ABC"), st.sampled_from([2020, 2024]), st.floats(0, 30_000), _fte, _fte),
        min_size=1,
        max_size=25,
    )
)
def test_sums_count_only_practices_reporting_gp_fte(rows):
    """Every practice is counted; FTE, patients behind ratios and need only where GP FTE > 0."""
    panel = pd.DataFrame(rows, columns=["group", "year", "patients", "gp_fte", "nurse_fte"])
    panel["covered"] = panel["gp_fte"].fillna(0) > 0
    panel["need_weighted_patients"] = panel["patients"] * 1.1
    for column in ("locum_trainee_fte", "direct_patient_care_fte", "admin_fte"):
        panel[column] = 1.0
    summed = workforce._ratios(workforce._sum_covered(panel, ["group"]))
    for (group, year), part in panel.groupby(["group", "year"]):
        row = summed[(summed["group"] == group) & (summed["year"] == year)].iloc[0]
        covered = part[part["covered"]]
        assert row["practices"] == len(part) and row["practices_with_gp_fte"] == len(covered)
        assert row["patients"] == pytest.approx(part["patients"].sum())
        if covered.empty:
            assert np.isnan(row["gp_fte"]) and np.isnan(row["patients_per_gp_fte"])
        else:
            assert row["gp_fte"] == pytest.approx(covered["gp_fte"].sum())
            assert row["patients_per_gp_fte"] == pytest.approx(
                covered["patients"].sum() / covered["gp_fte"].sum()
            )


def test_every_practice_year_matches_the_source_file(found, source):
    """All of the area's practices, 2016-2024, against the national file row by row."""
    mine = found.years[found.years["level"] == "practice"]
    theirs = source.rename(
        columns={
            "Practice.Code": "code",
            "Year": "year",
            "TOTAL_PATIENTS": "patients",
            "TOTAL_GP_EXTGL_FTE": "gp_fte",
            "TOTAL_NURSES_FTE": "nurse_fte",
            "TOTAL_DPC_FTE": "direct_patient_care_fte",
        }
    )
    both = mine.merge(theirs, on=["code", "year"], how="left", suffixes=("", "_file"), indicator=True)
    assert (both["_merge"] == "both").all()
    assert len(mine) == theirs["code"].isin(set(mine["code"])).sum() == 1121  # every row of the file for them
    assert sorted(set(mine["year"])) == list(range(2016, 2025))
    covered = both["gp_fte_file"] > 0
    assert (both["practices_with_gp_fte"] == covered.astype(int)).all()
    assert np.allclose(both["patients"], both["patients_file"])
    for column in ("gp_fte", "nurse_fte", "direct_patient_care_fte"):
        assert np.allclose(both.loc[covered, column], both.loc[covered, f"{column}_file"], equal_nan=True), (
            column
        )


def test_bundle_round_trip_keeps_england(demo, tmp_path):
    """make_bundle writes England's table when given one; load_bundle puts it back."""
    path = tmp_path / "national.duckdb"
    shutil.copyfile(demo.store_path, path)
    with Store(path) as store:
        england = workforce.england_figures(store)[0]
        counts = make_bundle(store, tmp_path / "bundle", england_workforce=england)
    assert counts["england_workforce"] == 9
    with Store(tmp_path / "loaded.duckdb") as store:
        load_bundle(store, tmp_path / "bundle")
        loaded = store.df("SELECT * FROM england_workforce ORDER BY year")
    pd.testing.assert_frame_equal(loaded, england, check_dtype=False)


def test_risk_through_the_api_scores_closures(demo, monkeypatch):
    """Project.practices_at_risk runs the crow-fly closure ranking (stubbed here: ranking every
    closure takes minutes; tests/test_scenarios.py checks the ranking itself) and uses it."""
    import nearcare
    from nearcare import scenarios

    asked = {}

    def ranked(store, kind, *, mode, workers):
        asked.update(kind=kind, mode=mode, workers=workers)
        return pd.DataFrame({"code": ["C82038"], "people_newly_beyond_threshold": [22_249.0]})

    monkeypatch.setattr(scenarios, "rank_closures", ranked)
    with nearcare.open(demo.store_path, read_only=True) as project:
        risk, notes = project.practices_at_risk(workers=2)
        _, without = project.practices_at_risk(closures=False)
    assert asked == {"kind": "gp", "mode": "crowfly", "workers": 2}
    assert "closing it would leave 22,249 people" in risk.set_index("practice_code").loc["C82038", "reasons"]
    assert not any("not assessed" in n for n in notes) and any("not assessed" in n for n in without)
