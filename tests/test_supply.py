"""GP supply checked for plausibility (one rule for access, equity and allocation), and OHID's
decile slope index of inequality against its published worked examples and independent fits."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from conftest import shared_file
from nearcare import InputError
from nearcare.access import PLAUSIBLE_PATIENTS_PER_GP_FTE, check_gp_fte, gp_supply, practice_gp_fte
from nearcare.equity import by_group, equity_figures, fractional_rank, grouped_slope_index, slope_index

runner = CliRunner()

# The practices of the bundled LLR data whose reported FTE is implausible (issue 12, item 9), with
# their list size and reported GP FTE.
IMPLAUSIBLE = {
    "C82660": (7444, 0.1),
    "C82600": (6267, 0.0),
    "Y02469": (9814, 0.0),
    "Y02686": (9119, 0.2),
    "C82627": (8238, 0.5),
}
NOT_REPORTED = {"C82670", "C82678", "Y03584", "Y05412"}


# --- the plausibility rule ----------------------------------------------------------------------


def test_plausible_range_is_the_national_workforce_files_percentiles():
    workforce = pd.read_csv(shared_file("heec_gp_workforce_annual/workforce_year.csv"))
    latest = workforce[
        (workforce["Year"] == workforce["Year"].max())
        & (workforce["TOTAL_GP_EXTGL_FTE"] > 0)
        & (workforce["TOTAL_PATIENTS"] > 0)
    ]
    assert workforce["Year"].max() == 2024 and len(latest) == 6278
    per_fte = latest["TOTAL_PATIENTS"] / latest["TOTAL_GP_EXTGL_FTE"]
    assert np.round(np.percentile(per_fte, [0.5, 99.5])).tolist() == list(PLAUSIBLE_PATIENTS_PER_GP_FTE)


def test_implausible_and_missing_fte_are_estimated_from_list_size(demo_store):
    checked = practice_gp_fte(demo_store).set_index("practice_code")
    estimated = checked[checked["gp_fte_status"] == "estimated"]
    assert set(estimated.index) == set(IMPLAUSIBLE) | NOT_REPORTED
    for code, (patients, fte) in IMPLAUSIBLE.items():
        assert checked.loc[code, "patients"] == patients and checked.loc[code, "reported_gp_fte"] == fte
    assert checked.loc["C82660", "reason"].startswith("74,440 patients per GP FTE, above")
    assert checked.loc["C82600", "reason"] == "0 GP FTE reported"
    # The estimate: list size at the patients per FTE of the practices whose figures are used as reported.
    reported = checked[checked["gp_fte_status"] == "reported"]
    per_fte = reported["patients"].sum() / reported["gp_fte"].sum()
    assert np.allclose(estimated["gp_fte"], estimated["patients"] / per_fte)
    low, high = PLAUSIBLE_PATIENTS_PER_GP_FTE
    assert ((reported["patients"] / reported["gp_fte"]).between(low, high)).all()
    # E2SFCA's supply is that FTE: no practice with patients counts as zero supply.
    supply, note = gp_supply(demo_store)
    assert supply["C82600"] == pytest.approx(6267 / per_fte) and supply["C82660"] == pytest.approx(
        7444 / per_fte
    )
    assert "5 implausible" in note and "4 not reported" in note


@pytest.mark.parametrize(
    ("patients_per_fte", "status"),
    [
        (726.001, "reported"),
        (725.999, "estimated"),
        (16_076.999, "reported"),
        (16_077.001, "estimated"),
        (np.inf, "estimated"),
    ],
)
def test_the_rule_at_its_edges(store, patients_per_fte, status):
    patients = store.scalar("SELECT patients FROM practices WHERE practice_code = 'C82001'")
    fte = patients / patients_per_fte
    store.con.execute("UPDATE practices SET gp_fte = ? WHERE practice_code = 'C82001'", [fte])
    row = practice_gp_fte(store).set_index("practice_code").loc["C82001"]
    assert row["gp_fte_status"] == status
    assert (
        row["gp_fte"] == pytest.approx(fte)
        if status == "reported"
        else row["reported_gp_fte"] == pytest.approx(fte)
    )


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.integers(0, 40_000)),
            st.one_of(st.none(), st.just(0.0), st.floats(0.01, 60)),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_every_practice_with_patients_ends_up_with_plausible_fte(rows):
    practices = pd.DataFrame(
        {
            "practice_code": [f"P{i}" for i in range(len(rows))],
            "name": "x",
            "patients": [np.nan if p is None else p for p, _ in rows],
            "reported_gp_fte": [np.nan if f is None else f for _, f in rows],
        }
    )
    checked = check_gp_fte(practices)
    low, high = PLAUSIBLE_PATIENTS_PER_GP_FTE
    reported = checked["gp_fte_status"] == "reported"
    assert (checked.loc[reported, "gp_fte"] == checked.loc[reported, "reported_gp_fte"]).all()
    assert (checked.loc[reported, "reason"] == "").all() and (checked.loc[~reported, "reason"] != "").all()
    trusted = reported & (checked["patients"] > 0)
    if not trusted.any():
        return  # nothing to estimate from: supply falls back to registered patients (gp_supply)
    # Reported or estimated, every practice with patients has a plausible patients-per-FTE figure: the
    # estimate's ratio is that of the trusted practices together, which lies within their range.
    with_patients = checked[checked["patients"] > 0]
    ratio = with_patients["patients"] / with_patients["gp_fte"]
    assert ratio.between(low * (1 - 1e-12), high * (1 + 1e-12)).all()
    estimated = checked["gp_fte_status"] == "estimated"
    per_fte = checked.loc[trusted, "patients"].sum() / checked.loc[trusted, "gp_fte"].sum()
    assert np.allclose(checked.loc[estimated, "gp_fte"], checked.loc[estimated, "patients"] / per_fte)


def test_practice_equity_leaves_implausible_fte_out(demo_store):
    from nearcare.equity import practice_equity

    practices = practice_equity(demo_store)
    left_out = set(practices.left_out["practice_code"])
    assert set(IMPLAUSIBLE) <= left_out and left_out <= set(IMPLAUSIBLE) | NOT_REPORTED
    assert practices.areas == 119
    # The README's finding: the inverse care law holds at practice level (concentration index +0.115).
    assert practices.finding == "holds" and round(practices.concentration_index, 3) == 0.115


def test_allocation_gives_practices_with_unknown_fte_a_share(store):
    from nearcare.allocation import allocate_units

    result = allocate_units(store, 10, to="practices")
    shares = result.allocation["units"]
    assert set(IMPLAUSIBLE) | {"C82670", "C82678"} <= set(shares.index)
    assert (shares[list(IMPLAUSIBLE)] > 0).all() and shares.sum() == pytest.approx(10)
    assert set(IMPLAUSIBLE) <= set(result.estimated_fte["practice_code"])
    assert "2 practices got no share: 2 with no deprivation score" in result.summary
    # Every practice with a list size is either given a share or counted as left out.
    with_patients = store.scalar("SELECT count(*) FROM practices WHERE patients > 0")
    assert len(shares) + 2 == with_patients


def test_cli_and_report_list_the_estimated_practices(tmp_path, demo):
    from nearcare.cli import app

    store = tmp_path / "s.duckdb"
    shutil.copyfile(demo.store_path, store)
    for command in (
        ["equity", "--mode", "drive"],
        ["allocate", "--units", "4"],
        ["access", "--mode", "drive", "--crowfly"],
    ):
        result = runner.invoke(app, [*command, "--store", str(store)], terminal_width=250)
        assert result.exit_code == 0, result.output
        assert "C82660" in result.output and "74,440 patients per GP FTE" in result.output, command
    html = demo.report_path.read_text()
    assert (
        "GP practices whose FTE was estimated from list size" in html and "74,440 patients per GP FTE" in html
    )


# --- OHID's slope index of inequality -------------------------------------------------------------

# OHID's worked examples (PHEindicatormethods tests/testthat/testdata_SII.xlsx, records 1-20 and 61-70,
# from PHE's Excel SII tool): population, value and standard error per decile, most deprived first;
# published SII and 95% limits (simulated with 100,000 draws).
PHE_AREA1 = (
    [7291, 7997, 6105, 7666, 5790, 6934, 5918, 5974, 7147, 7534],
    [
        75.933459010308098,
        78.344238272784295,
        83.836063104165405,
        83.637539966493094,
        80.465503152955904,
        81.115675985702197,
        81.693083571856207,
        84.190006206098701,
        80.595564108147201,
        86.289434957862397,
    ],
    [
        1.6384724263585451,
        1.578192884542907,
        1.5134355059640296,
        1.7754906175801293,
        1.7013390591981388,
        1.5641210737675499,
        1.3681148366878566,
        1.4001418005940802,
        2.4328463975781616,
        1.5665181695934678,
    ],
    (6.9346164736688189, 3.1275946176508169, 10.7586873680794),
)
PHE_AREA2 = (
    [21675, 20065, 19750, 24713, 20112, 19618, 22408, 19752, 18939, 19312],
    [
        70.54853186,
        71.57155734,
        72.48698671,
        73.51985519,
        73.14605425,
        76.15898712,
        78.65444871,
        80.56476961,
        80.85486627,
        79.9711253,
    ],
    [
        0.22959183673469533,
        0.25980680102040948,
        0.29923808418367348,
        0.16075122704081746,
        0.79182289540816175,
        0.77831961224489843,
        0.39937532908163315,
        0.27939550765306059,
        0.22959183673469533,
        0.35175375000000292,
    ],
    (12.547846636351798, 11.936156426792138, 13.163020132396579),
)


@pytest.mark.parametrize("example", [PHE_AREA1, PHE_AREA2])
def test_grouped_slope_index_matches_ohids_worked_examples(example):
    population, value, se, (sii, low, high) = example
    ours = grouped_slope_index(value, population, se)
    assert ours[0] == pytest.approx(sii, abs=1e-9)
    # OHID's limits are simulated (100,000 draws): ours, their exact limit, agree to the simulation's noise.
    assert ours[1] == pytest.approx(low, abs=0.05) and ours[2] == pytest.approx(high, abs=0.05)
    # The tool's quintile examples use the first five groups as quintiles (SII only published).
    quintiles = grouped_slope_index(value[:5], population[:5], se[:5])[0]
    assert quintiles == pytest.approx(
        7.919334147100874 if example is PHE_AREA1 else 3.6215563376545648, abs=1e-9
    )


@settings(max_examples=25, deadline=None)
@given(k=st.integers(3, 12), seed=st.integers(0, 10_000))
def test_grouped_slope_index_against_lstsq_and_simulation(k, seed):
    rng = np.random.default_rng(seed)
    population = rng.integers(100, 50_000, k).astype(float)
    value, se = rng.normal(50, 10, k), rng.uniform(0.1, 3, k)
    sii, low, high = grouped_slope_index(value, population, se)
    # Low & Low's transformed regression, as OHID fits it: y sqrt(a) on sqrt(a) and b sqrt(a), no intercept.
    a = population / population.sum()
    b = np.cumsum(a) - a / 2
    design = np.column_stack([np.sqrt(a), b * np.sqrt(a)])
    assert sii == pytest.approx(
        np.linalg.lstsq(design, value * np.sqrt(a), rcond=None)[0][1], rel=1e-9, abs=1e-9
    )
    # OHID's confidence interval: refit to sets of decile values drawn from N(value, se) (20,000 here).
    draws = rng.normal(value, se, size=(20_000, k)) * np.sqrt(a)
    slopes = np.linalg.lstsq(design, draws.T, rcond=None)[0][1]
    simulated = np.sort(slopes)[[499, 19499]]
    assert np.allclose([low, high], simulated, atol=0.04 * (high - low))


def test_group_standard_error_by_hand():
    y, w, group = (
        np.array([1.0, 3.0, 2.0, 5.0, 4.0]),
        np.array([1.0, 3.0, 2.0, 2.0, 4.0]),
        np.array([1, 1, 2, 2, 3]),
    )
    table = by_group(y, w, group)
    mean1 = (1 * 1 + 3 * 3) / 4
    assert table.loc[1, "value"] == pytest.approx(mean1)
    spread1 = (1 / 4) ** 2 * (1 - mean1) ** 2 + (3 / 4) ** 2 * (3 - mean1) ** 2
    assert table.loc[1, "se"] == pytest.approx(np.sqrt(2 / 1 * spread1))
    # The lone area in group 3 takes the pooled within-group spread of one area's value.
    mean2 = (2 * 2 + 2 * 5) / 4
    within = 1 * (1 - mean1) ** 2 + 3 * (3 - mean1) ** 2 + 2 * (2 - mean2) ** 2 + 2 * (5 - mean2) ** 2
    assert table.loc[3, "se"] == pytest.approx(np.sqrt(within / 12 * 5 / 2))


def test_equity_headline_is_the_decile_method_and_lsoa_fit_is_an_option():
    rng = np.random.default_rng(4)
    decile = np.repeat(np.arange(1, 11), 12)
    y = 0.05 * decile + rng.normal(0, 0.2, 120)
    w = rng.integers(1_000, 2_500, 120).astype(float)
    order = decile + rng.uniform(0, 0.5, 120)
    headline = equity_figures("x", y, w, order, decile)
    frame = pd.DataFrame({"d": decile, "w": w, "wy": w * y}).groupby("d").sum()
    means = frame["wy"] / frame["w"]
    a = frame["w"] / frame["w"].sum()
    b = np.cumsum(a) - a / 2
    by_hand = np.sum(a * (b - np.sum(a * b)) * means) / np.sum(a * (b - np.sum(a * b)) ** 2)
    assert headline.sii == pytest.approx(by_hand) and "OHID" in headline.sii_method
    lsoa = equity_figures("x", y, w, order, decile, sii_level="lsoa")
    assert (lsoa.sii, lsoa.sii_low, lsoa.sii_high) == pytest.approx(
        slope_index(y, w, fractional_rank(order, w))
    )
    assert lsoa.sii != pytest.approx(headline.sii)
    with pytest.raises(InputError, match="slope index level"):
        equity_figures("x", y, w, order, decile, sii_level="ward")


def test_demo_equity_uses_the_decile_method(demo_store, tmp_path, demo):
    from nearcare.cli import app
    from nearcare.equity import lsoa_equity

    figures = lsoa_equity(demo_store, kind="gp", profile="drive", mode="crowfly")
    frame = demo_store.df(
        "SELECT a.e2sfca_need AS y, s.population, s.imd_decile FROM access a JOIN small_areas s "
        "USING (lsoa21_code) WHERE a.kind = 'gp' AND a.profile = 'drive' AND a.mode = 'crowfly'"
    )
    deciles = by_group(frame["y"], frame["population"], frame["imd_decile"])
    assert figures.sii == pytest.approx(
        grouped_slope_index(deciles["value"], deciles["population"], deciles["se"])[0]
    )
    store = tmp_path / "s.duckdb"
    shutil.copyfile(demo.store_path, store)
    decile = runner.invoke(app, ["equity", "--mode", "drive", "--store", str(store)], terminal_width=250)
    lsoa = runner.invoke(
        app, ["equity", "--mode", "drive", "--sii-level", "lsoa", "--store", str(store)], terminal_width=250
    )
    assert decile.exit_code == 0 and lsoa.exit_code == 0, decile.output + lsoa.output
    # --mode drive takes the Rutland road-network run: 26 LSOAs in deciles 6-10.
    assert "OHID method over 5 IMD deciles" in decile.output and "fitted over 26 LSOAs" in lsoa.output
    bad = runner.invoke(app, ["equity", "--sii-level", "ward", "--store", str(store)])
    assert bad.exit_code == 2 and "slope index level" in bad.output
