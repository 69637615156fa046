"""Neighbourhoods: one per LSOA, contiguous, within bounds or reported; loaded files validated."""

from __future__ import annotations

import shutil

import networkx as nx
import pandas as pd
import pytest
import shapely
from tests.conftest import write
from typer.testing import CliRunner

from nearcare import InputError
from nearcare.cli import app
from nearcare.geo import from_wkb
from nearcare.neighbourhoods import TEAM_PER_10K_NEED, check, design, load, parse_ratios, profiles
from nearcare.store import Store


def shared_boundary_graph(store: Store) -> nx.Graph:
    """Adjacency the slow, obvious way: two LSOAs are neighbours if their boundaries share a line."""
    areas = store.df("SELECT lsoa21_code, boundary FROM small_areas")
    shapes = from_wkb(areas["boundary"])
    tree = shapely.STRtree(shapes)
    graph = nx.Graph()
    graph.add_nodes_from(areas["lsoa21_code"])
    for i, j in zip(*tree.query(shapes, predicate="intersects"), strict=True):
        if i < j and shapely.intersection(shapes[i], shapes[j]).length > 0:
            graph.add_edge(areas["lsoa21_code"].iloc[i], areas["lsoa21_code"].iloc[j])
    return graph


def test_demo_design_meets_every_constraint(demo_store):
    assignment = demo_store.df("SELECT lsoa21_code, neighbourhood FROM neighbourhoods")
    areas = demo_store.df("SELECT lsoa21_code, population, sub_icb_code FROM small_areas")
    assert sorted(assignment["lsoa21_code"]) == sorted(areas["lsoa21_code"])  # every LSOA exactly once
    assert not assignment["lsoa21_code"].duplicated().any()
    graph = shared_boundary_graph(demo_store)
    merged = assignment.merge(areas, on="lsoa21_code")
    for name, part in merged.groupby("neighbourhood"):
        assert nx.is_connected(graph.subgraph(part["lsoa21_code"])), f"{name} is not contiguous"
        assert part["sub_icb_code"].nunique() == 1, f"{name} crosses a sub-ICB boundary"
    populations = merged.groupby("neighbourhood")["population"].sum()
    result = check(demo_store)
    reported = result.neighbourhoods.set_index("neighbourhood")
    assert (reported["within_bounds"] == populations.between(30_000, 50_000)).all()
    assert reported["contiguous"].all() and (populations >= 30_000).all()
    assert len(reported) == 31 and reported["within_bounds"].all()  # as the README says


def test_violations_are_reported_rather_than_hidden(demo_store):
    result = check(demo_store, min_population=30_000, max_population=35_000)
    frame = result.neighbourhoods
    assert (frame["within_bounds"] == frame["population"].between(30_000, 35_000)).all()
    assert not frame["within_bounds"].all()  # some of the demo's neighbourhoods exceed 35,000 and say so
    assert f"{int(frame['within_bounds'].sum())} within 30,000-35,000" in result.summary


def test_a_unit_with_room_for_one_neighbourhood_is_one(store):
    """Rutland (39,474 people) by local authority: one neighbourhood, found without running max-p."""
    rutland = store.df("SELECT lsoa21_code FROM small_areas WHERE lad_code = 'E06000017'")["lsoa21_code"]
    store.con.execute("DELETE FROM small_areas WHERE lad_code <> 'E06000017'")
    assignment = design(store, boundary="lad")
    assert sorted(assignment["lsoa21_code"]) == sorted(rutland) and assignment["neighbourhood"].nunique() == 1
    with pytest.raises(InputError, match="boundary must be"):
        design(store, boundary="ward")


def test_load_lsoa_file_and_its_errors(store, tmp_path):
    lsoas = store.df("SELECT lsoa21_code, sub_icb_code FROM small_areas ORDER BY 1")
    good = "lsoa21_code,neighbourhood\n" + "\n".join(
        f"{c},{s}" for c, s in zip(lsoas["lsoa21_code"], lsoas["sub_icb_code"], strict=True)
    )
    load(store, write(tmp_path / "good.csv", good))
    assert store.df("SELECT count(DISTINCT neighbourhood) AS n FROM neighbourhoods")["n"].iloc[0] == 3
    before = store.df("SELECT * FROM neighbourhoods ORDER BY ALL")
    first = lsoas["lsoa21_code"].iloc[0]
    cases = [
        (good + f"\n{first},another", r"in two neighbourhoods"),
        (good + "\nE01999999,03W", "LSOA not in the built area"),
        (good + "\nE0199,03W", "not an LSOA code"),
        ("lsoa21_code,neighbourhood\n" + f"{first},03W", "633 LSOAs of the area are in no neighbourhood"),
        ("code,group\nE01013787,x", "expected columns"),
    ]
    for text, message in cases:
        with pytest.raises(InputError, match=message):
            load(store, write(tmp_path / "bad.csv", text))
        pd.testing.assert_frame_equal(before, store.df("SELECT * FROM neighbourhoods ORDER BY ALL"))


def test_load_practice_groupings(store, tmp_path):
    practices = store.df("SELECT practice_code, sub_icb_code FROM practices")
    text = "practice_code,neighbourhood\n" + "\n".join(
        f"{p},PCN-{s}" for p, s in zip(practices["practice_code"], practices["sub_icb_code"], strict=True)
    )
    assignment = load(store, write(tmp_path / "pcns.csv", text))
    assert (
        len(assignment) == store.count("small_areas")
        and assignment["neighbourhood"].str.startswith("PCN-").all()
    )
    with pytest.raises(InputError, match="practice not in the built area"):
        load(store, write(tmp_path / "bad.csv", "practice_code,neighbourhood\nZ99999,PCN-1\n"))


def test_profiles_and_team(demo_store):
    profile, team = profiles(demo_store)
    assert profile["population"].sum() == pytest.approx(
        demo_store.scalar("SELECT sum(population) FROM small_areas")
    )
    assert profile["gp_practices"].sum() == demo_store.scalar(
        "SELECT count(*) FROM sites WHERE kind = 'gp' AND lsoa21_code IS NOT NULL"
    )
    total_need = profile["need_weighted_population"].sum()
    for role, ratio in TEAM_PER_10K_NEED.items():
        assert team[role].sum() == pytest.approx(ratio * total_need / 1e4)
        # In proportion to need: staff per need-weighted person is the same everywhere.
        per_need = team[role] / profile["need_weighted_population"]
        assert per_need.max() == pytest.approx(per_need.min())
    changed = parse_ratios("paramedics=1.0")
    assert (
        changed["paramedics"] == 1.0
        and changed["clinical pharmacists"] == TEAM_PER_10K_NEED["clinical pharmacists"]
    )
    with pytest.raises(InputError, match="unknown profession"):
        parse_ratios("astronauts=1")


def test_cli_neighbourhoods_and_allocation(demo, tmp_path):
    copy = tmp_path / "s.duckdb"
    shutil.copyfile(demo.store_path, copy)
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "neighbourhoods",
            "profile",
            "--store",
            str(copy),
            "--out",
            str(tmp_path / "p"),
            "--ratios",
            "paramedics=0.9",
        ],
    )
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(tmp_path / "p" / "teams.csv")) == 31
    result = runner.invoke(
        app, ["allocate", "--units", "100", "--to", "neighbourhoods", "--store", str(copy)]
    )
    assert result.exit_code == 0, result.output
    shares = pd.DataFrame(
        Store(copy, read_only=True).df("SELECT * FROM allocations WHERE target_kind = 'neighbourhoods'")
    )
    assert shares["units"].sum() == pytest.approx(100) and len(shares) == 31
    result = runner.invoke(
        app, ["neighbourhoods", "load", str(write(tmp_path / "x.csv", "a,b\n1,2\n")), "--store", str(copy)]
    )
    assert result.exit_code == 2 and "expected columns" in result.output


def test_demo_report_has_neighbourhoods(demo):
    html = demo.report_path.read_text()
    assert "Neighbourhoods and their teams" in html and "Suggested team" in html
