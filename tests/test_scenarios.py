"""Scenarios: conservation, monotonicity, mergers, a worked Rutland closure, new sites, bad files."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from tests.conftest import RUTLAND_PRACTICES, with_registrations, write
from typer.testing import CliRunner

from nearcare import InputError
from nearcare.cli import app
from nearcare.flows import patient_flows
from nearcare.scenarios import Merge, Scenario, evaluate, load_context, load_scenario, run_scenario
from nearcare.store import Store


@pytest.fixture(scope="module")
def contexts(demo):
    with Store(demo.store_path, read_only=True) as store:
        return {"crowfly": load_context(store, mode="crowfly"), "drive": load_context(store, mode="drive")}


@pytest.mark.parametrize("mode", ["crowfly", "drive"])
def test_empty_scenario_changes_nothing(contexts, mode):
    result = evaluate(contexts[mode], Scenario("nothing"))
    assert (result.lsoas["change_minutes"] == 0).all()
    assert (result.practices["added_patients"] == 0).all()
    assert result.newly_beyond[["people_newly_beyond", "people_newly_within"]].to_numpy().sum() == 0
    assert result.moved_patients == 0 and result.unplaced_patients == 0


@pytest.mark.parametrize(
    "mode, closed",
    [
        ("crowfly", ["C82044"]),
        ("drive", ["C82044"]),
        ("crowfly", ["C82010", "C82077"]),
        ("drive", ["C82010", "C82077"]),
        ("crowfly", ["C82038"]),  # Latham House, Melton Mowbray: beyond the Rutland network, so crow-fly only
    ],
)
def test_patients_are_conserved_and_nobody_gets_closer(contexts, mode, closed):
    ctx = contexts[mode]
    assert set(closed) <= set(ctx.flows["destination_id"])
    result = evaluate(ctx, Scenario("close", close=closed))
    practices = result.practices.set_index("practice_code")
    assert result.displaced_patients == pytest.approx(practices.loc[closed, "patients_before"].sum())
    received = practices.drop(index=closed)["added_patients"].sum()
    assert received == pytest.approx(result.moved_patients, rel=1e-9)
    assert received + result.unplaced_patients == pytest.approx(result.displaced_patients, rel=1e-9)
    assert (practices.loc[closed, "patients_after"] == 0).all()
    assert (practices.drop(index=closed)["added_patients"] >= -1e-9).all()
    assert (result.lsoas["after_minutes"] >= result.lsoas["before_minutes"]).all()


def test_merger_keeping_both_sites_leaves_times_unchanged(contexts):
    result = evaluate(
        contexts["drive"], Scenario("merge", merges=[Merge("C82649", "C82010", keep_site=True)])
    )
    assert (result.lsoas["change_minutes"] == 0).all()
    practices = result.practices.set_index("practice_code")
    assert (
        practices.loc["C82010", "patients_after"]
        == practices.loc[["C82010", "C82649"], "patients_before"].sum()
    )
    assert practices.loc["C82649", "patients_after"] == 0
    closing = evaluate(
        contexts["drive"], Scenario("merge", merges=[Merge("C82649", "C82010", keep_site=False)])
    )
    assert (closing.lsoas["change_minutes"] >= 0).all() and (closing.lsoas["change_minutes"] > 0).any()


def test_worked_rutland_closure(demo_store, contexts):
    """Close Empingham on the Rutland road network; check every figure by brute force on the stored tables."""
    result = evaluate(contexts["drive"], Scenario("close Empingham", close=["C82044"]))
    pairs = demo_store.df(
        "SELECT origin_id, destination_id, profile, minutes FROM travel_times "
        "WHERE destination_kind = 'gp' AND mode <> 'crowfly'"
    )
    for profile in ("walk", "drive"):
        part = pairs[pairs["profile"] == profile]
        before = part.groupby("origin_id")["minutes"].min()
        after = part[part["destination_id"] != "C82044"].groupby("origin_id")["minutes"].min()
        ours = result.lsoas[result.lsoas["profile"] == profile].set_index("lsoa21_code")
        reachable = before.index.intersection(after.index)
        assert np.allclose(ours.loc[reachable, "after_minutes"], after.loc[reachable])
        threshold = {"walk": 20.0, "drive": 15.0}[profile]
        people = demo_store.df("SELECT lsoa21_code, population FROM small_areas").set_index("lsoa21_code")[
            "population"
        ]
        people = people.reindex(ours.index)
        expected = people[(ours["before_minutes"] <= threshold) & (ours["after_minutes"] > threshold)].sum()
        newly = result.newly_beyond
        assert newly[(newly["service"] == "GP practice") & (newly["profile"] == profile)][
            "people_newly_beyond"
        ].sum() == pytest.approx(expected)
    # In Rutland every displaced patient finds one of the three remaining practices.
    practices = result.practices.set_index("practice_code")
    assert result.displaced_patients == 9443 and result.unplaced_patients == pytest.approx(0, abs=1e-6)
    assert result.moved_patients == pytest.approx(9443)
    assert practices.loc[["C82010", "C82077", "C82649"], "added_patients"].sum() == pytest.approx(9443)


def test_new_site_brings_people_nearer_and_attracts_patients(demo, tmp_path):
    path = write(
        tmp_path / "hub.toml",
        'name = "Cottesmore hub"\n[[open]]\ncode = "NEW01"\nname = "Hub"\n'
        'kind = "gp"\nlat = 52.713\nlon = -0.666\ngp_fte = 6.0\n',
    )
    with Store(demo.store_path, read_only=True) as store:
        scenario = load_scenario(path, store)
        result = run_scenario(store, scenario, mode="drive")
    assert (result.lsoas["change_minutes"] <= 1e-9).all() and (result.lsoas["change_minutes"] < 0).any()
    practices = result.practices.set_index("practice_code")
    assert practices.loc["NEW01", "patients_after"] > 0
    assert practices["patients_after"].sum() == pytest.approx(practices["patients_before"].sum())


@pytest.mark.parametrize(
    "text, problem",
    [
        ('close = ["ZZZ99"]', "unknown site code"),
        ('close = ["C82010", "C82044", "C82077", "C82649"]', None),  # fine: other LLR practices remain
        ("close = 5", "'close' must be a list"),
        ('colse = ["C82044"]', "unknown key 'colse'"),
        ('[[merge]]\nfrom = "C82044"\ninto = "C82044"', "cannot merge into itself"),
        ('[[merge]]\nfrom = "FA002"\ninto = "C82044"', "a merge joins two GP practices"),
        (
            '[[open]]\ncode = "N1"\nkind = "gp"\npostcode = "ZZ9 9ZZ"',
            "postcode not in the imported postcode file",
        ),
        ('[[open]]\ncode = "N1"\nkind = "gp"\nlat = 40.0\nlon = 2.0', "not in England"),
        ('[[open]]\ncode = "N1"\nkind = "hospital"\nlat = 52.7\nlon = -0.7', "kind must be one of"),
        ("close = [", "not a valid TOML file"),
    ],
)
def test_invalid_scenarios_are_refused(demo_store, tmp_path, text, problem):
    path = write(tmp_path / "s.toml", text + "\n")
    if problem is None:
        load_scenario(path, demo_store)
        return
    with pytest.raises(InputError, match=problem):
        load_scenario(path, demo_store)


def test_closing_every_practice_is_refused(demo_store, tmp_path):
    codes = demo_store.df("SELECT code FROM sites WHERE kind = 'gp'")["code"].tolist()
    path = write(tmp_path / "all.toml", "close = [" + ", ".join(f'"{c}"' for c in codes) + "]\n")
    with pytest.raises(InputError, match="closes every GP practice"):
        load_scenario(path, demo_store)


def test_new_site_off_the_network_is_refused(demo_store, tmp_path):
    # Inside England and the LLR postcode box, but far from the Rutland road network.
    path = write(tmp_path / "far.toml", '[[open]]\ncode = "N1"\nkind = "gp"\nlat = 52.63\nlon = -1.13\n')
    scenario = load_scenario(path, demo_store)
    with pytest.raises(InputError, match="too far from the road network"):
        run_scenario(demo_store, scenario, mode="drive")


def test_cli_scenario_and_rank(demo, tmp_path):
    store = tmp_path / "s.duckdb"
    shutil.copyfile(demo.store_path, store)
    runner = CliRunner()
    path = write(tmp_path / "close.toml", 'name = "Close Empingham"\nclose = ["C82044"]\n')
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["scenario", str(path), "--store", str(store), "--out", str(out), "--mode", "drive"]
    )
    assert result.exit_code == 0, result.output
    assert "9,443 patients move" in result.output
    assert (out / "scenario.html").exists() and len(pd.read_csv(out / "practices.csv")) > 100
    bad = write(tmp_path / "bad.toml", 'close = ["NOPE1"]\n')
    result = runner.invoke(
        app, ["scenario", str(bad), "--store", str(store), "--out", str(tmp_path / "none")]
    )
    assert result.exit_code == 2 and "unknown site code" in result.output
    assert not (tmp_path / "none").exists()  # nothing written for a refused scenario
    result = runner.invoke(
        app,
        [
            "scenario",
            "rank",
            "--close",
            "each-pharmacy",
            "--store",
            str(store),
            "--out",
            str(tmp_path / "rank"),
        ],
    )
    assert result.exit_code == 0, result.output
    ranked = pd.read_csv(tmp_path / "rank" / "ranked_each-pharmacy.csv")
    assert len(ranked) > 150 and ranked["deprivation_weighted_person_minutes"].is_monotonic_decreasing
    _check_pharmacy_scores(store, ranked.set_index("code"))


def _check_pharmacy_scores(path, ranked):
    """Pharmacy closures are scored on pharmacy measures, checked by brute force on the stored tables (crow-fly)."""
    assert (ranked["people_newly_beyond_walk_threshold"] > 0).sum() > 10
    with Store(path, read_only=True) as store:
        pairs = store.df(
            "SELECT origin_id, destination_id, minutes FROM travel_times WHERE mode = 'crowfly' "
            "AND profile = 'walk' AND destination_kind = 'pharmacy'"
        )
        nearest = store.df(
            "SELECT origin_id, minutes FROM nearest_services WHERE mode = 'crowfly' AND profile = 'walk' "
            "AND destination_kind = 'pharmacy'"
        ).set_index("origin_id")["minutes"]
        areas = store.df(
            "SELECT lsoa21_code, population, centroid_easting AS x, centroid_northing AS y FROM small_areas"
        ).set_index("lsoa21_code")
        sites = store.df(
            "SELECT code, easting, northing FROM sites WHERE kind = 'pharmacy' AND easting IS NOT NULL"
        )
    areas = areas.loc[nearest.index]
    metres = np.hypot(
        areas["x"].to_numpy()[:, None] - sites["easting"].to_numpy()[None, :],
        areas["y"].to_numpy()[:, None] - sites["northing"].to_numpy()[None, :],
    )
    near = pd.DataFrame(metres <= 1600, index=areas.index, columns=sites["code"])
    line_best = ranked["people_newly_beyond_1600m"].idxmax()
    assert ranked.loc[line_best, "people_newly_beyond_1600m"] > 0
    for code in ["FH895", line_best]:
        after = (
            pairs[pairs["destination_id"] != code]
            .groupby("origin_id")["minutes"]
            .min()
            .reindex(nearest.index)
        )
        walk = (nearest <= 20) & ~(after <= 20)
        line = near.any(axis=1) & ~near.drop(columns=code).any(axis=1)
        assert ranked.loc[code, "people_newly_beyond_walk_threshold"] == areas.loc[walk, "population"].sum()
        assert ranked.loc[code, "people_newly_beyond_1600m"] == areas.loc[line, "population"].sum()
        assert ranked.loc[code, "people_newly_beyond_either"] == areas.loc[walk | line, "population"].sum()
    assert ranked.loc["FH895", "people_newly_beyond_walk_threshold"] > 1000


def test_demo_report_has_scenario_and_ranking(demo):
    html = demo.report_path.read_text()
    assert "Scenario: Close Empingham Medical Centre" in html
    assert "Every single practice closure, ranked" in html
    assert html.index("Scenario: Close") < html.index("Sources and licences")


@pytest.mark.parametrize("mode", ["crowfly", "drive"])
def test_patient_flows_need_no_scenario_context(contexts, demo_store, mode):
    """nearcare.flows gives the flows and choice model a scenario context holds, from the store alone."""
    flows, model = patient_flows(demo_store, mode=mode)
    pd.testing.assert_frame_equal(flows, contexts[mode].flows)
    assert model == contexts[mode].model and model.modelled
    # Every practice's flows add up to its real list (where it has any flows).
    listed = flows.groupby("destination_id")["listed"].sum()
    lists = contexts[mode].practices["patients"].reindex(listed.index)
    assert np.allclose(listed[listed > 0], lists[listed > 0])


def test_patient_flows_with_real_registrations_are_the_contexts(demo, tmp_path):
    with Store(with_registrations(demo, tmp_path), read_only=True) as store:
        flows, model = patient_flows(store)
        ctx = load_context(store)
    pd.testing.assert_frame_equal(flows, ctx.flows)
    assert model == ctx.model and not model.modelled


def test_real_lsoa_registrations_are_used_when_imported(demo, tmp_path):
    with Store(with_registrations(demo, tmp_path)) as store:
        ctx = load_context(store, mode="drive")
        assert not ctx.model.modelled and "real registrations" in ctx.model.describe()
        result = evaluate(ctx, Scenario("close", close=["C82044"]))
    practices = result.practices.set_index("practice_code")
    received = practices.drop(index="C82044")["added_patients"].sum()
    assert received + result.unplaced_patients == pytest.approx(result.displaced_patients)
    assert result.unplaced_patients == pytest.approx(0, abs=1e-6)


# --- issue 12: the edges -----------------------------------------------------------------------------


def _reconciles(result):
    practices = result.practices
    assert practices["patients_before"].sum() == pytest.approx(
        practices["patients_after"].sum() + result.unplaced_patients, abs=1e-6
    )


@pytest.mark.parametrize(
    "mode, code, reason",
    [
        ("crowfly", "C82007", "not geocoded"),  # Castle Donington: no coordinates, so no flows in any mode
        ("drive", "C82007", "not geocoded"),
        (
            "drive",
            "C82124",
            "no drive travel times",
        ),  # Victoria Park, Leicester: off the Rutland road network
    ],
)
def test_closing_a_practice_without_flows_unplaces_its_patients(contexts, mode, code, reason):
    ctx = contexts[mode]
    assert code not in set(ctx.flows["destination_id"])
    result = evaluate(ctx, Scenario("close", close=[code]))
    practices = result.practices.set_index("practice_code")
    listed = practices.loc[code, "patients_before"]
    assert listed > 10_000
    assert practices.loc[code, "patients_after"] == 0  # never kept at a closed site
    assert result.unplaced_patients == pytest.approx(listed) and result.moved_patients == 0
    assert reason in result.unplaced.set_index("practice_code").loc[code, "reason"]
    _reconciles(result)


def test_cli_names_the_unplaced_and_their_reason(demo, tmp_path):
    path = write(tmp_path / "close.toml", 'close = ["C82124"]\n')
    result = CliRunner().invoke(
        app,
        [
            "scenario",
            str(path),
            "--store",
            str(demo.store_path),
            "--out",
            str(tmp_path / "out"),
            "--mode",
            "drive",
        ],
    )
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert (
        "0 patients move to another practice" in text and "24,521 have no practice they can move to" in text
    )
    assert "24,521 patients of C82124: no drive travel times" in text
    unplaced = pd.read_csv(tmp_path / "out" / "unplaced_patients.csv")
    assert unplaced["patients"].sum() == 24521


@pytest.mark.parametrize(
    "text, problem",
    [
        # the issue's case: C82001's 25,827 patients would follow it into a practice that closes
        (
            'close = ["C82002"]\n[[merge]]\nfrom = "C82001"\ninto = "C82002"',
            r"\[\[merge\]\] 1: C82002 closes in this scenario",
        ),
        (
            'close = ["C82001"]\n[[merge]]\nfrom = "C82001"\ninto = "C82002"',
            r"\[\[merge\]\] 1: C82001 also closes",
        ),
        (
            '[[merge]]\nfrom = "C82001"\ninto = "C82002"\n[[merge]]\nfrom = "C82001"\ninto = "C82010"',
            r"\[\[merge\]\] 2: C82001 already merges into C82002",
        ),
        (
            '[[merge]]\nfrom = "C82001"\ninto = "C82002"\n[[merge]]\nfrom = "C82002"\ninto = "C82001"',
            r"\[\[merge\]\] 1: the mergers form a cycle \(C82001 -> C82002 -> C82001\)",
        ),
        (
            '[[merge]]\nfrom = "C82001"\ninto = "C82002"\n[[merge]]\nfrom = "C82002"\ninto = "C82010"\n'
            '[[merge]]\nfrom = "C82010"\ninto = "C82001"',
            r"cycle \(C82001 -> C82002 -> C82010 -> C82001\)",
        ),
        (
            'close = ["C82010"]\n[[merge]]\nfrom = "C82001"\ninto = "C82002"\n[[merge]]\nfrom = "C82002"\ninto = "C82010"',
            r"C82010 closes in this scenario.*C82001 -> C82002 -> C82010",
        ),
    ],
)
def test_impossible_mergers_are_refused_naming_the_entry(demo_store, tmp_path, text, problem):
    path = write(tmp_path / "s.toml", text + "\n")
    with pytest.raises(InputError, match=problem):
        load_scenario(path, demo_store)


def test_merge_into_a_closing_practice_is_refused_by_evaluate_too(contexts):
    with pytest.raises(InputError, match="closes in this scenario"):
        evaluate(contexts["crowfly"], Scenario("x", close=["C82002"], merges=[Merge("C82001", "C82002")]))


@pytest.mark.parametrize("keep_site", [True, False])
def test_merger_chains_resolve_in_any_order(contexts, keep_site):
    # Listed B->C before A->B: A's patients must still end up at C.
    scenario = Scenario(
        "chain", merges=[Merge("C82010", "C82077", keep_site), Merge("C82649", "C82010", keep_site)]
    )
    result = evaluate(contexts["drive"], scenario)
    practices = result.practices.set_index("practice_code")
    assert practices.loc["C82077", "patients_after"] == pytest.approx(
        practices.loc[["C82649", "C82010", "C82077"], "patients_before"].sum()
    )
    assert (practices.loc[["C82649", "C82010"], "patients_after"] == 0).all()
    assert result.moved_patients == 0
    assert result.merged_patients == pytest.approx(
        practices.loc[["C82649", "C82010"], "patients_before"].sum()
    )
    _reconciles(result)


@pytest.fixture(scope="module")
def hub(demo):
    """A new practice at Cottesmore with its travel times, in both modes."""
    from nearcare.geo import to_bng
    from nearcare.scenarios import NewSite, new_site_pairs

    e, n = to_bng(np.array([-0.666]), np.array([52.713]))
    site = NewSite("NEW01", "Cottesmore hub", "gp", float(e[0]), float(n[0]), gp_fte=6.0)
    with Store(demo.store_path, read_only=True) as store:
        return site, {
            mode: new_site_pairs(store, load_context(store, mode=mode), Scenario("hub", open=[site]))
            for mode in ("crowfly", "drive")
        }


@pytest.mark.parametrize("mode", ["crowfly", "drive"])
def test_patients_drawn_to_a_new_site_count_as_moving(contexts, hub, mode):
    site, pairs = hub
    result = evaluate(contexts[mode], Scenario("open", open=[site]), new_site_pairs=pairs[mode])
    practices = result.practices.set_index("practice_code")
    drawn = practices.loc["NEW01", "patients_after"]
    assert drawn > 1000
    assert result.moved_patients == pytest.approx(drawn)
    assert result.moved_patients == pytest.approx(-practices.drop(index="NEW01")["added_patients"].sum())
    assert f"{drawn:,.0f} patients move to another practice" in result.headline()
    _reconciles(result)


def test_a_merged_practice_follows_its_merger_when_a_site_opens(contexts, hub):
    site, pairs = hub
    ctx = contexts["drive"]
    alone = evaluate(ctx, Scenario("open", open=[site]), new_site_pairs=pairs["drive"]).practices.set_index(
        "practice_code"
    )
    merged = evaluate(
        ctx,
        Scenario("open and merge", open=[site], merges=[Merge("C82649", "C82010", keep_site=True)]),
        new_site_pairs=pairs["drive"],
    ).practices.set_index("practice_code")
    # A merger that keeps both sites changes nothing on the ground: the other practices and the new
    # site are as with the opening alone, and the merged practice's patients stay with the merger.
    others = alone.index.drop(["C82649", "C82010"])
    assert np.allclose(merged.loc[others, "patients_after"], alone.loc[others, "patients_after"])
    assert merged.loc["C82010", "patients_after"] == pytest.approx(
        alone.loc[["C82010", "C82649"], "patients_after"].sum()
    )
    assert merged.loc["C82649", "patients_after"] == 0
    closing = evaluate(
        ctx,
        Scenario("open and merge", open=[site], merges=[Merge("C82649", "C82010", keep_site=False)]),
        new_site_pairs=pairs["drive"],
    )
    practices = closing.practices.set_index("practice_code")
    assert practices.loc["C82649", "patients_after"] == 0 and (practices["patients_after"] >= -1e-9).all()
    assert practices.loc["C82010", "patients_after"] > practices.loc["C82010", "patients_before"]
    _reconciles(closing)


def test_people_newly_beyond_a_threshold_are_counted_once(demo, contexts, tmp_path):
    """Closing Uppingham (crow-fly): walk and drive overlap, so the headline counts distinct people."""
    result = evaluate(contexts["crowfly"], Scenario("close", close=["C82077"]))
    lsoas = result.lsoas
    newly = set()
    by_profile = {}
    for profile, threshold in {"walk": 20.0, "drive": 15.0}.items():
        part = lsoas[lsoas["profile"] == profile]
        hit = part[(part["before_minutes"] <= threshold) & (part["after_minutes"] > threshold)]
        by_profile[profile] = hit["population"].sum()
        newly |= set(hit["lsoa21_code"])
    distinct = (
        lsoas.drop_duplicates("lsoa21_code").set_index("lsoa21_code").loc[sorted(newly), "population"].sum()
    )
    assert distinct < by_profile["walk"] + by_profile["drive"]  # they overlap here
    counted = result.people_newly_beyond("GP practice")
    assert counted == pytest.approx(
        {"walk": by_profile["walk"], "drive": by_profile["drive"], "walk or drive": distinct}
    )
    path = write(tmp_path / "close.toml", 'close = ["C82077"]\n')
    output = (
        CliRunner()
        .invoke(
            app,
            [
                "scenario",
                str(path),
                "--store",
                str(demo.store_path),
                "--out",
                str(tmp_path / "out"),
                "--mode",
                "crowfly",
            ],
        )
        .output
    )
    text = " ".join(output.split())
    assert (
        f"{distinct:,.0f} people newly beyond a GP threshold ({by_profile['walk']:,.0f} by 20 minutes' walk, "
        f"{by_profile['drive']:,.0f} by 15 minutes' drive"
    ) in text


def test_demo_ranks_every_practice_counting_each_person_once(demo, demo_store, contexts):
    ranked = pd.read_csv(demo.report_path.parent / "ranked_practice_closures.csv").set_index("code")
    assert set(ranked.index) == set(demo_store.df("SELECT code FROM sites WHERE kind = 'gp'")["code"])
    assert ranked.loc["C82007", "unplaced_patients"] == 10699  # not geocoded: ranked, its patients unplaced
    counted = evaluate(contexts["crowfly"], Scenario("close", close=["C82077"])).people_newly_beyond()
    row = ranked.loc["C82077"]  # Uppingham
    assert row["people_newly_beyond_threshold"] == pytest.approx(counted["walk or drive"])
    assert (
        row["people_newly_beyond_walk_threshold"],
        row["people_newly_beyond_drive_threshold"],
    ) == pytest.approx((counted["walk"], counted["drive"]))
    assert (
        row["people_newly_beyond_threshold"]
        < row["people_newly_beyond_walk_threshold"] + row["people_newly_beyond_drive_threshold"]
    )


def test_crowfly_minutes_beyond_the_stored_reach_come_from_the_nearest_site_left(demo_store, contexts):
    """Closing FH895: eight LSOAs had it as their nearest pharmacy, 61-153 minutes' walk away (beyond
    the stored 30 minutes); their nearest left is measured, not set to 'beyond' (which scored as 60
    extra minutes each in the ranking)."""
    from nearcare.travel import CROWFLY_SPEED_KPH, DETOUR_FACTOR

    result = evaluate(contexts["crowfly"], Scenario("close", close=["FH895"]))
    walk = result.pharmacy[result.pharmacy["profile"] == "walk"].set_index("lsoa21_code")
    far = walk.index[walk["before_minutes"] > 30]
    nearest = demo_store.df(
        "SELECT origin_id FROM nearest_services WHERE mode = 'crowfly' AND profile = 'walk' "
        "AND destination_kind = 'pharmacy' AND destination_id = 'FH895'"
    )["origin_id"]
    hit = far.intersection(pd.Index(nearest))
    assert len(hit) == 8 and np.isfinite(walk.loc[hit, "after_minutes"]).all()
    areas = (
        demo_store.df("SELECT lsoa21_code, centroid_easting AS x, centroid_northing AS y FROM small_areas")
        .set_index("lsoa21_code")
        .loc[hit]
    )
    sites = demo_store.df(
        "SELECT easting, northing FROM sites WHERE kind = 'pharmacy' AND code <> 'FH895' "
        "AND easting IS NOT NULL"
    )
    metres = np.hypot(
        areas["x"].to_numpy()[:, None] - sites["easting"].to_numpy()[None, :],
        areas["y"].to_numpy()[:, None] - sites["northing"].to_numpy()[None, :],
    ).min(axis=1)
    expected = metres * DETOUR_FACTOR / (CROWFLY_SPEED_KPH["walk"] * 1000 / 60)
    assert np.allclose(walk.loc[hit, "after_minutes"], expected)
    assert (walk.loc[hit, "after_minutes"] - walk.loc[hit, "before_minutes"] < 5).all()


# --- review: a site opened twice, keep_site as text ----------------------------------------------------

_NEW = '[[open]]\ncode = "N1"\nkind = "gp"\nlat = 52.70\nlon = -0.70\ngp_fte = 4.0\n'


def test_a_site_opened_twice_is_refused_naming_the_entry(demo_store, contexts, tmp_path):
    path = write(tmp_path / "twice.toml", _NEW + _NEW.replace("52.70", "52.71"))
    with pytest.raises(
        InputError, match=r"twice\.toml \[\[open\]\] 2: N1 is already opened by \[\[open\]\] 1"
    ):
        load_scenario(path, demo_store)
    site = load_scenario(write(tmp_path / "once.toml", _NEW), demo_store).open[0]
    with pytest.raises(InputError, match=r"scenario \[\[open\]\] 2: N1 is already opened"):
        evaluate(contexts["drive"], Scenario("twice", open=[site, site]))


@pytest.mark.parametrize("value, keep_site", [("true", True), ("false", False), (None, True)])
def test_keep_site_is_a_toml_boolean(demo_store, tmp_path, value, keep_site):
    text = '[[merge]]\nfrom = "C82649"\ninto = "C82010"\n' + (f"keep_site = {value}\n" if value else "")
    assert load_scenario(write(tmp_path / "m.toml", text), demo_store).merges[0].keep_site is keep_site


@pytest.mark.parametrize("value", ['"false"', '"no"', "0"])
def test_keep_site_that_is_not_a_boolean_is_refused(demo_store, tmp_path, value):
    text = f'[[merge]]\nfrom = "C82649"\ninto = "C82010"\nkeep_site = {value}\n'
    with pytest.raises(InputError, match=r"m\.toml \[\[merge\]\] 1: 'keep_site' must be bool"):
        load_scenario(write(tmp_path / "m.toml", text), demo_store)


# --- review: real registrations with none left in reach; GP FTE by the plausibility rule ------------------


def test_with_real_registrations_an_lsoa_registered_only_at_the_closed_practice_is_placed(demo, tmp_path):
    """E01013796 has four practices in reach; registered only at Empingham (C82044), closing it used
    to strand all of Empingham's list. Its patients now go by the calibrated choice model."""
    # E01013796 registered at Empingham alone, and no other LSOA registered there.
    others = [p for p in RUTLAND_PRACTICES if p != "C82044"]
    only_empingham = lambda i, lsoa: ["C82044"] if lsoa == "E01013796" else others  # noqa: E731
    with Store(with_registrations(demo, tmp_path, only_empingham), read_only=True) as store:
        ctx = load_context(store, mode="drive")
    assert not ctx.model.modelled and "where an LSOA has none" in ctx.model.describe()
    reach = ctx.flows[(ctx.flows["origin_id"] == "E01013796") & (ctx.flows["destination_id"] != "C82044")]
    assert len(reach) >= 3
    result = evaluate(ctx, Scenario("close", close=["C82044"]))
    practices = result.practices.set_index("practice_code")
    _reconciles(result)
    assert result.unplaced_patients == pytest.approx(0, abs=1e-6)
    assert result.moved_patients == pytest.approx(result.displaced_patients)
    # Shares by size^alpha x exp(-beta x minutes) over the practices left in its reach, sizes = their lists.
    size = ctx.practices["patients"].reindex(reach["destination_id"]).to_numpy(float)
    attraction = size**ctx.model.alpha * np.exp(-ctx.model.beta * reach["minutes"].to_numpy())
    expected = result.displaced_patients * attraction / attraction.sum()
    assert np.allclose(practices.loc[reach["destination_id"], "patients_gained"], expected)


def test_the_no_practice_left_reason_is_kept_for_an_empty_choice_set(contexts):
    """On the Rutland road network, closing every practice within an LSOA's reach leaves it nowhere to go."""
    ctx = contexts["drive"]
    lsoa = "E01013796"
    reach = ctx.flows.loc[ctx.flows["origin_id"] == lsoa, "destination_id"].unique().tolist()
    result = evaluate(ctx, Scenario("close", close=reach))
    _reconciles(result)
    reasons = set(result.unplaced["reason"])
    assert reasons and all("no practice left within" in r for r in reasons)


def test_patients_per_gp_fte_follow_the_plausibility_rule(demo_store, contexts):
    """C82660 reports 0.1 GP FTE (about 74,000 patients per FTE): its FTE is estimated from its list,
    as access.practice_gp_fte does, and marked; so the rise it takes when C82124 closes is ordinary."""
    from nearcare.access import PLAUSIBLE_PATIENTS_PER_GP_FTE, practice_gp_fte

    checked = practice_gp_fte(demo_store).set_index("practice_code")
    assert (
        checked.loc["C82660", "gp_fte_status"] == "estimated"
        and checked.loc["C82660", "reported_gp_fte"] < 0.5
    )
    result = evaluate(contexts["crowfly"], Scenario("close", close=["C82124"]))
    practices = result.practices.set_index("practice_code")
    listed = practices[practices["patients_before"] > 0]
    assert np.allclose(
        listed["per_gp_fte_before"], listed["patients_before"] / checked["gp_fte"].reindex(listed.index)
    )
    low, high = PLAUSIBLE_PATIENTS_PER_GP_FTE
    assert listed["per_gp_fte_before"].between(low, high).all()  # finite: no 0 FTE, no 0.1 FTE
    assert (
        listed["gp_fte_estimated"] == (checked["gp_fte_status"].reindex(listed.index) == "estimated")
    ).all()
    c82660 = practices.loc["C82660"]
    assert c82660["gp_fte_estimated"] and c82660["patients_gained"] > 0
    rise = c82660["per_gp_fte_after"] - c82660["per_gp_fte_before"]
    assert rise == pytest.approx(c82660["patients_gained"] / checked.loc["C82660", "gp_fte"])
    assert rise < 1_000


def test_ranked_rise_in_patients_per_gp_fte_uses_the_checked_fte(demo, contexts):
    ranked = pd.read_csv(
        demo.report_path.parent / "ranked_practice_closures.csv", keep_default_na=False, na_values=[""]
    ).set_index("code")
    rises = ranked["largest_rise_in_patients_per_gp_fte"]
    assert np.isfinite(rises).all()  # no practice with 0 FTE hidden behind an infinite rise
    practices = evaluate(contexts["crowfly"], Scenario("close", close=["C82124"])).practices
    receivers = practices[practices["patients_gained"] > 0].set_index("practice_code")
    rise = receivers["per_gp_fte_after"] - receivers["per_gp_fte_before"]
    row = ranked.loc["C82124"]
    assert row["largest_rise_in_patients_per_gp_fte"] == pytest.approx(rise.max())
    assert row["largest_rise_at"] == rise.idxmax()
    assert bool(row["largest_rise_gp_fte_estimated"]) == bool(
        receivers.loc[rise.idxmax(), "gp_fte_estimated"]
    )
    assert rise.max() < 2_000  # was 6,925 at C82660, reported at 0.1 FTE
