"""Scenarios: conservation, monotonicity, mergers, a worked Rutland closure, new sites, bad files."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from nearcare import InputError
from nearcare.cli import app
from nearcare.scenarios import Merge, Scenario, evaluate, load_context, load_scenario, run_scenario
from nearcare.store import Store
from tests.conftest import write

RUTLAND_PRACTICES = ["C82010", "C82044", "C82077", "C82649"]


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


@pytest.mark.parametrize("mode, closed", [
    ("crowfly", ["C82044"]), ("drive", ["C82044"]), ("crowfly", ["C82010", "C82077"]), ("drive", ["C82010", "C82077"]),
    ("crowfly", ["C82038"]),  # Latham House, Melton Mowbray: beyond the Rutland network, so crow-fly only
])
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
    result = evaluate(contexts["drive"], Scenario("merge", merges=[Merge("C82649", "C82010", keep_site=True)]))
    assert (result.lsoas["change_minutes"] == 0).all()
    practices = result.practices.set_index("practice_code")
    assert practices.loc["C82010", "patients_after"] == practices.loc[["C82010", "C82649"], "patients_before"].sum()
    assert practices.loc["C82649", "patients_after"] == 0
    closing = evaluate(contexts["drive"], Scenario("merge", merges=[Merge("C82649", "C82010", keep_site=False)]))
    assert (closing.lsoas["change_minutes"] >= 0).all() and (closing.lsoas["change_minutes"] > 0).any()


def test_worked_rutland_closure(demo_store, contexts):
    """Close Empingham on the Rutland road network; check every figure by brute force on the stored tables."""
    result = evaluate(contexts["drive"], Scenario("close Empingham", close=["C82044"]))
    pairs = demo_store.df("SELECT origin_id, destination_id, profile, minutes FROM travel_times "
                          "WHERE destination_kind = 'gp' AND mode <> 'crowfly'")
    for profile in ("walk", "drive"):
        part = pairs[pairs["profile"] == profile]
        before = part.groupby("origin_id")["minutes"].min()
        after = part[part["destination_id"] != "C82044"].groupby("origin_id")["minutes"].min()
        ours = result.lsoas[result.lsoas["profile"] == profile].set_index("lsoa21_code")
        reachable = before.index.intersection(after.index)
        assert np.allclose(ours.loc[reachable, "after_minutes"], after.loc[reachable])
        threshold = {"walk": 20.0, "drive": 15.0}[profile]
        people = demo_store.df("SELECT lsoa21_code, population FROM small_areas").set_index("lsoa21_code")["population"]
        people = people.reindex(ours.index)
        expected = people[(ours["before_minutes"] <= threshold) & (ours["after_minutes"] > threshold)].sum()
        newly = result.newly_beyond
        assert newly[(newly["service"] == "GP practice") & (newly["profile"] == profile)]["people_newly_beyond"].sum() \
            == pytest.approx(expected)
    # In Rutland every displaced patient finds one of the three remaining practices.
    practices = result.practices.set_index("practice_code")
    assert result.displaced_patients == 9443 and result.unplaced_patients == pytest.approx(0, abs=1e-6)
    assert result.moved_patients == pytest.approx(9443)
    assert practices.loc[["C82010", "C82077", "C82649"], "added_patients"].sum() == pytest.approx(9443)


def test_new_site_brings_people_nearer_and_attracts_patients(demo, tmp_path):
    path = write(tmp_path / "hub.toml", 'name = "Cottesmore hub"\n[[open]]\ncode = "NEW01"\nname = "Hub"\n'
                                        'kind = "gp"\nlat = 52.713\nlon = -0.666\ngp_fte = 6.0\n')
    with Store(demo.store_path, read_only=True) as store:
        scenario = load_scenario(path, store)
        result = run_scenario(store, scenario, mode="drive")
    assert (result.lsoas["change_minutes"] <= 1e-9).all() and (result.lsoas["change_minutes"] < 0).any()
    practices = result.practices.set_index("practice_code")
    assert practices.loc["NEW01", "patients_after"] > 0
    assert practices["patients_after"].sum() == pytest.approx(practices["patients_before"].sum())


@pytest.mark.parametrize("text, problem", [
    ('close = ["ZZZ99"]', "unknown site code"),
    ('close = ["C82010", "C82044", "C82077", "C82649"]', None),  # fine: other LLR practices remain
    ("close = 5", "'close' must be a list"),
    ('colse = ["C82044"]', "unknown key 'colse'"),
    ('[[merge]]\nfrom = "C82044"\ninto = "C82044"', "cannot merge into itself"),
    ('[[merge]]\nfrom = "FA002"\ninto = "C82044"', "a merge joins two GP practices"),
    ('[[open]]\ncode = "N1"\nkind = "gp"\npostcode = "ZZ9 9ZZ"', "postcode not in the imported postcode file"),
    ('[[open]]\ncode = "N1"\nkind = "gp"\nlat = 40.0\nlon = 2.0', "not in England"),
    ('[[open]]\ncode = "N1"\nkind = "hospital"\nlat = 52.7\nlon = -0.7', "kind must be one of"),
    ("close = [", "not a valid TOML file"),
])
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
    result = runner.invoke(app, ["scenario", str(path), "--store", str(store), "--out", str(out), "--mode", "drive"])
    assert result.exit_code == 0, result.output
    assert "9,443 patients move" in result.output
    assert (out / "scenario.html").exists() and len(pd.read_csv(out / "practices.csv")) > 100
    bad = write(tmp_path / "bad.toml", 'close = ["NOPE1"]\n')
    result = runner.invoke(app, ["scenario", str(bad), "--store", str(store), "--out", str(tmp_path / "none")])
    assert result.exit_code == 2 and "unknown site code" in result.output
    assert not (tmp_path / "none").exists()  # nothing written for a refused scenario
    result = runner.invoke(app, ["scenario", "rank", "--close", "each-pharmacy", "--store", str(store),
                                 "--out", str(tmp_path / "rank")])
    assert result.exit_code == 0, result.output
    ranked = pd.read_csv(tmp_path / "rank" / "ranked_each-pharmacy.csv")
    assert len(ranked) > 150 and ranked["deprivation_weighted_person_minutes"].is_monotonic_decreasing


def test_demo_report_has_scenario_and_ranking(demo):
    html = demo.report_path.read_text()
    assert "Scenario: Close Empingham Medical Centre" in html
    assert "Every single practice closure, ranked" in html
    assert html.index("Scenario: Close") < html.index("Sources and licences")


def test_real_lsoa_registrations_are_used_when_imported(demo, tmp_path):
    from nearcare.sources import import_files

    copy = tmp_path / "s.duckdb"
    shutil.copyfile(demo.store_path, copy)
    with Store(copy) as store:
        rutland = store.df("SELECT lsoa21_code FROM small_areas WHERE lad_code = 'E06000017' ORDER BY 1")["lsoa21_code"]
        rows = ["PUBLICATION,EXTRACT_DATE,PRACTICE_CODE,PRACTICE_NAME,LSOA_CODE,SEX,NUMBER_OF_PATIENTS"]
        rng = np.random.default_rng(3)
        for lsoa in rutland:
            for practice in RUTLAND_PRACTICES:
                rows.append(f"GP_PRAC_PAT_LIST,01APR2024,{practice},X,{lsoa},ALL,{rng.integers(0, 400)}")
        import_files(store, "gp-lsoa-registrations", [write(tmp_path / "gp-reg-pat-prac-lsoa-all.csv", "\n".join(rows))])
        ctx = load_context(store, mode="drive")
        assert not ctx.model.modelled and "real registrations" in ctx.model.describe()
        result = evaluate(ctx, Scenario("close", close=["C82044"]))
    practices = result.practices.set_index("practice_code")
    received = practices.drop(index="C82044")["added_patients"].sum()
    assert received + result.unplaced_patients == pytest.approx(result.displaced_patients)
    assert result.unplaced_patients == pytest.approx(0, abs=1e-6)
