"""Neighbourhood hubs (p-median): exact = brute force, = spopt's PMedian, greedy never better, and every
LSOA's people assigned or listed, on the demo's real neighbourhoods and on Hypothesis-generated ones."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pulp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from nearcare._errors import InputError, StoreError
from nearcare.cli import app
from nearcare.hubs import (
    STATUS_ASSIGNED,
    STATUS_UNREACHABLE,
    allowed_minutes,
    choose_hubs,
    need_minutes,
    p_median_exact,
    p_median_greedy,
)
from nearcare.project import Project
from nearcare.report import area_report
from nearcare.report.hubs import hub_sections
from nearcare.store import Store

CBC = pulp.PULP_CBC_CMD(msg=False)


def brute_force(minutes: np.ndarray, weights: np.ndarray, p: int, max_minutes: float | None = None):
    """The slow, obviously correct reference: every p-subset of candidates; (best cost, subsets at it)."""
    allowed = allowed_minutes(minutes, max_minutes)
    costs = {
        subset: need_minutes(allowed, weights, subset)
        for subset in itertools.combinations(range(allowed.shape[1]), min(p, allowed.shape[1]))
    }
    best = min(costs.values())
    return best, [s for s, c in costs.items() if math.isclose(c, best, rel_tol=1e-9, abs_tol=1e-9)]


def neighbourhood_matrix(store: Store, neighbourhood: str):
    """A real neighbourhood's LSOA x practice minutes (drive, crow-fly) and need weights, from the store."""
    plan = choose_hubs(store)  # the frames tell which LSOAs and candidates the neighbourhood has
    lsoas = plan.lsoas[
        (plan.lsoas["neighbourhood"] == neighbourhood) & (plan.lsoas["status"] == STATUS_ASSIGNED)
    ]
    sites = store.df(
        "SELECT s.code FROM sites s JOIN neighbourhoods n USING (lsoa21_code) WHERE kind = 'gp' "
        "AND n.neighbourhood = ? ORDER BY 1",
        [neighbourhood],
    )["code"]
    pairs = store.df(
        "SELECT origin_id, destination_id, minutes FROM travel_times WHERE profile = 'drive' AND mode = 'crowfly' "
        "AND destination_kind = 'gp'"
    )
    matrix = (
        pairs.pivot_table(index="origin_id", columns="destination_id", values="minutes")
        .reindex(index=lsoas["lsoa21_code"], columns=sites)
        .to_numpy(float)
    )
    return allowed_minutes(matrix), lsoas["need_weighted_population"].to_numpy(float), list(sites)


@pytest.fixture(scope="module")
def plan(demo):
    with Store(demo.store_path, read_only=True) as store:
        return choose_hubs(store)


def test_every_demo_neighbourhood_gets_its_optimal_hub(plan, demo_store):
    """LLR's 31 neighbourhoods each get one hub, among its own practices, proven optimal by CBC."""
    assert len(plan.neighbourhoods) == 31
    assert (plan.neighbourhoods["status"] == "optimal").all()
    assert len(plan.hubs) == 31 and plan.hubs["neighbourhood"].is_unique
    own = demo_store.df(
        "SELECT s.code, n.neighbourhood FROM sites s JOIN neighbourhoods n USING (lsoa21_code)"
    )
    merged = plan.hubs.merge(own, on=["code", "neighbourhood"])
    assert len(merged) == 31  # each hub stands in its own neighbourhood
    assert (plan.hubs["kind"] == "gp").all()
    # The greedy heuristic's gap is reported, and it is never better than the exact optimum.
    solved = plan.neighbourhoods
    assert (solved["greedy_need_minutes"] >= solved["exact_need_minutes"] * (1 - 1e-9)).all()
    assert plan.gap >= 0 and "above the exact optimum" in plan.summary()


def test_people_reconcile_and_unreachable_lsoas_are_listed(plan, demo_store):
    """Every neighbourhood LSOA appears once: its people assigned to a hub or listed as unreachable."""
    members = demo_store.df(
        "SELECT n.lsoa21_code, s.population FROM neighbourhoods n JOIN small_areas s USING (lsoa21_code)"
    )
    assert sorted(plan.lsoas["lsoa21_code"]) == sorted(members["lsoa21_code"])
    total = members["population"].sum()
    assert plan.lsoas["population"].sum() == pytest.approx(total)
    by_status = plan.lsoas.groupby("status")["population"].sum()
    assert by_status.sum() == pytest.approx(total)
    assert plan.hubs["population"].sum() == pytest.approx(by_status[STATUS_ASSIGNED])
    assert plan.neighbourhoods["population_unreachable"].sum() == pytest.approx(
        by_status.get(STATUS_UNREACHABLE, 0)
    )
    assigned = plan.lsoas[plan.lsoas["status"] == STATUS_ASSIGNED]
    assert assigned["hub"].notna().all() and assigned["minutes"].notna().all()
    # An unreachable LSOA really has no stored pair to any practice in its neighbourhood.
    for row in plan.lsoas[plan.lsoas["status"] == STATUS_UNREACHABLE].itertuples():
        found = demo_store.df(
            "SELECT count(*) AS n FROM travel_times t JOIN sites s ON s.code = t.destination_id "
            "JOIN neighbourhoods n ON n.lsoa21_code = s.lsoa21_code WHERE t.origin_id = ? AND n.neighbourhood = ? "
            "AND s.kind = 'gp' AND t.profile = 'drive' AND t.mode = 'crowfly'",
            [row.lsoa21_code, row.neighbourhood],
        )["n"].iloc[0]
        assert found == 0
    # Each assigned LSOA goes to the nearest chosen hub (the p-median's assignment).
    sample = assigned.iloc[0]
    minutes = demo_store.df(
        "SELECT minutes FROM travel_times WHERE origin_id = ? AND destination_id = ? AND profile = 'drive' "
        "AND mode = 'crowfly'",
        [sample["lsoa21_code"], sample["hub"]],
    )["minutes"]
    assert minutes.iloc[0] == pytest.approx(sample["minutes"])


def test_an_lsoa_without_pairs_is_reported_not_dropped(store):
    """Remove one LSOA's travel times: it is listed as unreachable with its people, not silently lost."""
    lsoa = store.df("SELECT lsoa21_code FROM neighbourhoods ORDER BY 1 LIMIT 1")["lsoa21_code"].iloc[0]
    store.con.execute("DELETE FROM travel_times WHERE origin_id = ?", [lsoa])
    plan = choose_hubs(store)
    row = plan.lsoas.set_index("lsoa21_code").loc[lsoa]
    assert row["status"] == STATUS_UNREACHABLE and pd.isna(row["hub"]) and row["population"] > 0
    assert plan.lsoas["population"].sum() == pytest.approx(
        store.df("SELECT sum(population) FROM small_areas").iloc[0, 0]
    )


def test_exact_is_proven_optimal_by_brute_force_on_a_real_neighbourhood(demo_store):
    """04C-01 (Leicester, ten practices): CBC's choice of 3 hubs is the best of all 120 triples."""
    minutes, weights, sites = neighbourhood_matrix(demo_store, "04C-01")
    assert len(sites) == 10 and np.isfinite(minutes).any(axis=1).all()
    # The real need weights, and skewed ones (one LSOA's need 1,000-fold) so that need decides the choice.
    skewed = [weights * np.where(np.arange(len(weights)) == k, 1000.0, 1.0) for k in (0, len(weights) // 2)]
    for p, w in itertools.product((1, 2, 3), [weights, *skewed]):
        chosen = p_median_exact(minutes, w, p, solver=CBC)
        best, optimal = brute_force(minutes, w, p)
        assert need_minutes(minutes, w, chosen) == pytest.approx(best, rel=1e-9)
        assert tuple(sorted(chosen)) in optimal
        assert need_minutes(minutes, w, p_median_greedy(minutes, w, p)) >= best * (1 - 1e-12)


def test_exact_agrees_with_spopt_pmedian_on_a_real_neighbourhood(demo_store):
    """spopt's PMedian, given the same real matrix (missing pairs as a prohibitive cost), finds the same cost."""
    from spopt.locate import PMedian

    minutes, weights, _ = neighbourhood_matrix(demo_store, "04C-01")
    cost = np.where(np.isfinite(minutes), minutes, 1e6)
    for p in (1, 2):
        theirs = PMedian.from_cost_matrix(cost, weights, p_facilities=p).solve(pulp.PULP_CBC_CMD(msg=False))
        ours = p_median_exact(minutes, weights, p, solver=CBC)
        assert theirs.problem.objective.value() == pytest.approx(
            need_minutes(minutes, weights, ours), rel=1e-6
        )
        assert sorted(int(j) for j in np.nonzero([len(c) for c in theirs.fac2cli])[0]) == sorted(ours)


instances = st.integers(1, 7).flatmap(
    lambda n: st.integers(2, 6).flatmap(
        lambda m: st.tuples(
            st.lists(
                st.lists(st.one_of(st.integers(0, 60), st.just(math.inf)), min_size=m, max_size=m),
                min_size=n,
                max_size=n,
            ),
            st.lists(st.integers(0, 5000), min_size=n, max_size=n),
            st.integers(1, m),
            st.one_of(st.none(), st.integers(1, 60)),
        )
    )
)


@settings(max_examples=150, deadline=None)
@given(instances)
def test_exact_matches_brute_force_and_greedy_is_never_better(instance):
    rows, weights, p, max_minutes = instance
    minutes, weights = np.array(rows, float), np.array(weights, float)
    minutes[np.arange(len(minutes)), 0] = np.where(
        np.isfinite(minutes).any(axis=1), minutes[:, 0], 10.0
    )  # every row reaches some candidate: rows that do not are listed before the kernel
    best, optimal = brute_force(minutes, weights, p, max_minutes)
    chosen = p_median_exact(minutes, weights, p, max_minutes=max_minutes, solver=CBC)
    if math.isinf(best):  # no p candidates reach every row within max_minutes
        assert chosen is None
        return
    assert chosen is not None and len(chosen) == min(p, minutes.shape[1])
    assert tuple(sorted(chosen)) in optimal
    assert need_minutes(allowed_minutes(minutes, max_minutes), weights, chosen) == pytest.approx(
        best, rel=1e-6, abs=1e-6
    )
    greedy = p_median_greedy(minutes, weights, p, max_minutes=max_minutes)
    assert len(greedy) == min(p, minutes.shape[1])
    assert need_minutes(allowed_minutes(minutes, max_minutes), weights, greedy) >= best - 1e-6 * max(1, best)


def test_the_solver_is_injectable():
    """The solver passed in is the one used (spopt's pattern); a failed solve is an error, not a guess."""

    class Counting(pulp.PULP_CBC_CMD):
        calls = 0

        def actualSolve(self, lp, **kwargs):
            Counting.calls += 1
            return super().actualSolve(lp, **kwargs)

    minutes = np.array([[1.0, 9.0], [9.0, 1.0], [2.0, 8.0]])
    assert p_median_exact(minutes, np.array([1.0, 1.0, 1.0]), 1, solver=Counting(msg=False)) == [0]
    assert Counting.calls == 1

    class Failing(pulp.PULP_CBC_CMD):
        def actualSolve(self, lp, **kwargs):
            return pulp.LpStatusNotSolved

    with pytest.raises(StoreError, match="not solved"):
        p_median_exact(minutes, np.array([1.0, 1.0, 1.0]), 1, solver=Failing(msg=False))


def test_kernel_refuses_bad_input():
    with pytest.raises(InputError, match="at least 1"):
        p_median_exact(np.ones((2, 2)), np.ones(2), 0)
    with pytest.raises(InputError, match="unreachable"):
        p_median_greedy(np.array([[1.0], [math.inf]]), np.ones(2), 1)


def test_covering_constraint_and_more_hubs(demo_store):
    """Two hubs among every site, all within 12 minutes: each hub reaches its LSOAs in time; a
    neighbourhood where no two sites do is reported (not placed), with its people."""
    plan = choose_hubs(demo_store, per_neighbourhood=2, candidates="sites", max_minutes=12)
    assigned = plan.lsoas[plan.lsoas["status"] == STATUS_ASSIGNED]
    assert (assigned["minutes"] <= 12).all()
    solved = plan.neighbourhoods[plan.neighbourhoods["status"] == "optimal"]
    assert (plan.hubs.groupby("neighbourhood").size().reindex(solved["neighbourhood"]) == 2).all()
    assert plan.lsoas["population"].sum() == pytest.approx(plan.neighbourhoods["population"].sum())
    stuck = plan.neighbourhoods[plan.neighbourhoods["status"] == "infeasible"]
    assert len(stuck) and (stuck["population_not_placed"] > 0).all()


def test_candidates_from_a_file_are_timed_by_the_scenario_engine(store, tmp_path):
    """Points in a CSV get travel times the way a scenario's new site does, and one is chosen."""
    lsoas = store.df(
        "SELECT s.centroid_lat AS lat, s.centroid_lon AS lon FROM neighbourhoods n JOIN small_areas s "
        "USING (lsoa21_code) WHERE n.neighbourhood = '04C-01' ORDER BY s.lsoa21_code LIMIT 2"
    )
    path = tmp_path / "candidates.csv"
    path.write_text(
        "code,name,lat,lon\n"
        + "".join(f"NEW{i},Site {i},{r.lat},{r.lon}\n" for i, r in enumerate(lsoas.itertuples()))
    )
    plan = choose_hubs(store, candidates=path, mode="crowfly")
    hub = plan.hubs.set_index("neighbourhood").loc["04C-01"]
    assert hub["code"] in {"NEW0", "NEW1"} and hub["kind"] == "candidate"
    assert set(plan.neighbourhoods.loc[plan.neighbourhoods["candidates"] == 0, "status"]) == {
        "no candidate site"
    }
    bad = tmp_path / "bad.csv"
    bad.write_text("code,lat,lon\nA,52.6,-1.1\nB,48.8,2.3\n")  # Paris
    with pytest.raises(InputError) as raised:
        choose_hubs(store, candidates=bad, mode="crowfly")
    assert "line 3" in str(raised.value)


def test_cli_chooses_hubs(demo, tmp_path):
    result = CliRunner().invoke(
        app, ["neighbourhoods", "hubs", "--store", str(demo.store_path), "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "31 hubs in 31 of 31 neighbourhoods" in result.output
    assert len(pd.read_csv(tmp_path / "hubs.csv")) == 31
    bad = CliRunner().invoke(
        app, ["neighbourhoods", "hubs", "--store", str(demo.store_path), "--profile", "bus"]
    )
    assert bad.exit_code == 2 and "walk or drive" in bad.output


def test_project_method_and_report_section(demo, store):
    with Project(demo.store_path, read_only=True) as project:
        plan = project.neighbourhood_hubs(2, mode="crowfly")
    assert plan.mode == "crowfly"  # two hubs where there are two practices or more, else the one
    assert len(plan.hubs) == plan.neighbourhoods["candidates"].clip(upper=2).sum() > 31
    sections = hub_sections(store)
    assert len(sections) == 1
    section = sections[0]
    assert section.title == "Neighbourhood hubs" and section.figures[0].uri.startswith("data:image/png")
    assert len(section.tables[0].rows) == 31
    assert "Neighbourhood hubs" in [s.title for s in area_report(store).sections]
    store.con.execute("DELETE FROM neighbourhoods")
    assert hub_sections(store) == []  # nothing to place hubs in: no section


def test_the_demo_report_has_the_hubs_section(demo):
    html = demo.report_path.read_text()
    assert "Neighbourhood hubs" in html and "31 hubs in 31 of 31 neighbourhoods" in html


def test_cli_takes_candidates_from_a_file_and_names_a_bad_line(demo, tmp_path):
    good = tmp_path / "good.csv"
    good.write_text("code,name,postcode\nNEWHUB,New hub,LE15 6AA\n")  # Oakham, Rutland
    result = CliRunner().invoke(
        app,
        ["neighbourhoods", "hubs", "--store", str(demo.store_path), "--candidates", str(good), "--crowfly"],
    )
    assert result.exit_code == 0, result.output
    assert "NEWHUB" in result.output and "1 hubs in 1 of 31 neighbourhoods" in result.output
    assert "the first 20 of" in result.output  # the other neighbourhoods' LSOAs: listed, capped on screen
    bad = tmp_path / "bad.csv"
    bad.write_text("code,lat,lon\nA,52.6,abc\n")
    for path, needle in ((bad, "line 2, field 'lon': not a number"), (tmp_path / "none.csv", "no such file")):
        result = CliRunner().invoke(
            app, ["neighbourhoods", "hubs", "--store", str(demo.store_path), "--candidates", str(path)]
        )
        assert result.exit_code == 2 and needle in result.output, result.output


def test_cli_hub_files_defuse_spreadsheet_formulas(demo, tmp_path):
    """A candidate's name from a user file is written to hubs.csv as text a spreadsheet will not run."""
    candidates = tmp_path / "candidates.csv"
    candidates.write_text('code,name,postcode\nNEWHUB,"=HYPERLINK(""http://x"")",LE15 6AA\n')
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        [
            *("neighbourhoods", "hubs", "--store", str(demo.store_path)),
            *("--candidates", str(candidates), "--crowfly", "--out", str(out)),
        ],
    )
    assert result.exit_code == 0, result.output
    hubs = pd.read_csv(out / "hubs.csv")
    assert hubs.loc[hubs["code"] == "NEWHUB", "name"].item() == '\'=HYPERLINK("http://x")'
