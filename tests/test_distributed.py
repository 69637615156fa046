"""Partitions run as Dask tasks on a LocalCluster of two workers give the single-process results."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

import nearcare
from nearcare import distributed
from nearcare.network import partition as part
from nearcare.network.search import Points, pairs_within, snap

distributed_ = pytest.importorskip("distributed")


def _square(x: int) -> int:
    return x * x


def test_run_keeps_order_here_in_processes_and_on_the_cluster(cluster):
    items = list(range(7))
    expected = [x * x for x in items]
    assert distributed.run(_square, items) == expected
    assert distributed.run(_square, items, workers=2) == expected
    assert distributed.run(_square, items, scheduler=cluster.scheduler_address) == expected
    with distributed_.Client(cluster) as client:
        assert distributed.run(_square, items, scheduler=client) == expected
        assert len(client.scheduler_info()["workers"]) == 2


@pytest.mark.parametrize("mode", ["walk", "drive"])
def test_partitions_on_dask_equal_the_whole_run(cluster, mode):
    # lazy: the bundled network is read only here
    from nearcare.bundle import bundle_dir
    from nearcare.network import read_network

    network = read_network(bundle_dir() / "rutland-latest.osm.pbf", mode)
    rng = np.random.default_rng(7)
    nodes = rng.choice(network.n_nodes, 260, replace=False)
    points = Points(
        np.array([f"p{i}" for i in range(260)]),
        network.easting[nodes] + rng.uniform(-100, 100, 260),
        network.northing[nodes] + rng.uniform(-100, 100, 260),
    )
    origins, sites = (
        Points(*(x[:200] for x in vars(points).values())),
        Points(*(x[200:] for x in vars(points).values())),
    )
    cutoff = 6.0 if mode == "drive" else 15.0
    single = pairs_within(
        network,
        snap(network, origins, side="origin"),
        snap(network, sites, side="destination"),
        cutoff,
        workers=1,
    )
    on_dask = part.partitioned_pairs(
        network,
        origins,
        sites,
        part.grid_labels(origins, 5000.0),
        cutoff,
        run=distributed.runner(cluster.scheduler_address),
    )
    key = ["origin_id", "destination_id"]
    a, b = on_dask.set_index(key).sort_index(), single.set_index(key).sort_index()
    assert len(b) > 50 and a.index.equals(b.index)
    np.testing.assert_allclose(a[["minutes", "distance_m"]], b[["minutes", "distance_m"]], rtol=1e-12)


def test_cli_scheduler_gives_the_stored_single_process_pairs(demo, tmp_path, cluster):
    """`travel-times --scheduler` on the demo store (drive network, per local authority) = no scheduler."""
    # lazy: the CLI only in this test
    from typer.testing import CliRunner

    from nearcare.cli import app

    path = tmp_path / "store.duckdb"
    shutil.copyfile(demo.store_path, path)
    with nearcare.open(path) as project:
        single = project.travel_times("drive", "gp", max_minutes=15, save=False)
    result = CliRunner().invoke(
        app,
        [
            "travel-times",
            "--store",
            str(path),
            "--mode",
            "drive",
            "--to",
            "gp",
            "--max-minutes",
            "15",
            "--scheduler",
            cluster.scheduler_address,
        ],
    )
    assert result.exit_code == 0, result.output
    with nearcare.open(path) as project:
        stored = project.store.df(
            "SELECT origin_id, destination_id, minutes, distance_m FROM travel_times WHERE profile = 'drive' AND mode = 'drive' AND destination_kind = 'gp'"
        )
    key = ["origin_id", "destination_id"]
    a = stored.set_index(key).sort_index()
    b = single.set_index(key)[["minutes", "distance_m"]].sort_index()
    assert len(b) > 30 and a.index.equals(b.index)  # the demo network is Rutland only
    np.testing.assert_allclose(a[["minutes", "distance_m"]], b, rtol=1e-12)
    assert pd.notna(a["minutes"]).all()


def test_rank_batches_on_dask_equal_the_local_ranking(demo, tmp_path, cluster, monkeypatch):
    """`scenario rank --scheduler` writes the table the local run writes: every practice's scores,
    its strained practice decoded, in the same order. Small batches: more tasks than are in flight."""
    # lazy: the CLI only in this test
    from typer.testing import CliRunner

    from nearcare import scenarios
    from nearcare.cli import app

    monkeypatch.setattr(scenarios, "RANK_BATCH", 9)
    path = tmp_path / "store.duckdb"
    shutil.copyfile(demo.store_path, path)
    tables = []
    for extra in ([], ["--scheduler", cluster.scheduler_address]):
        out = tmp_path / f"out{len(tables)}"
        args = ["scenario", "rank", "--store", str(path), "--out", str(out), *extra]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        tables.append((out / "ranked_each-practice.csv").read_text())
    assert tables[0] == tables[1]
    ranked = pd.read_csv(tmp_path / "out1" / "ranked_each-practice.csv")
    with nearcare.open(path, read_only=True) as project:
        practices = project.store.df("SELECT code FROM sites WHERE kind = 'gp'")["code"]
    assert sorted(ranked["code"]) == sorted(practices) and len(ranked) > 9 * 8
    assert ranked["largest_rise_at"].dropna().isin(practices).all()


def test_pharmacy_rank_on_dask_equals_here(demo_store, cluster, monkeypatch):
    from nearcare import scenarios

    monkeypatch.setattr(scenarios, "RANK_BATCH", 40)
    here = scenarios.rank_closures(demo_store, "pharmacy")
    with distributed_.Client(cluster) as client:
        there = scenarios.rank_closures(demo_store, "pharmacy", scheduler=client)
    pd.testing.assert_frame_equal(here, there)
    assert (here["people_newly_beyond_either"] > 0).any()


def test_league_units_on_dask_equal_here(three_icbs, cluster):
    """Each unit's row computed as a Dask task is the row computed here, not-assessed units too."""
    from nearcare.equity import league_table
    from nearcare.store import Store

    path, _, _ = three_icbs
    with Store(path, read_only=True) as store:
        here = league_table(store, by="icb", mode="crowfly")
        there = league_table(store, by="icb", mode="crowfly", scheduler=cluster.scheduler_address)
    pd.testing.assert_frame_equal(here, there)
    assert len(here) == 5 and (here["finding"] == "not assessed").sum() == 1


@pytest.mark.parametrize("engine", ["scipy", "cch"])
def test_searches_in_threads_of_one_process_equal_one_at_a_time(engine):
    """A Dask worker with several threads routes several partitions at once: each search keeps its
    own inputs (SciPy) and a network's hierarchy answers one query at a time (CCH; sharing it
    crashed the process). Every search's pairs equal the same search run alone."""
    import pickle
    from concurrent.futures import ThreadPoolExecutor

    # lazy: the bundled network is read only here
    from nearcare.bundle import bundle_dir
    from nearcare.network import read_network

    network = read_network(bundle_dir() / "rutland-latest.osm.pbf", "drive")
    rng = np.random.default_rng(20)

    def points(n: int, tag: str) -> Points:
        nodes = rng.choice(network.n_nodes, n, replace=False)
        return Points(
            np.array([f"{tag}{i}" for i in range(n)]),
            network.easting[nodes] + rng.uniform(-50, 50, n),
            network.northing[nodes] + rng.uniform(-50, 50, n),
        )

    jobs = [
        (
            snap(network, points(150, "o"), side="origin"),
            snap(network, points(20 + 7 * j, "d"), side="destination"),
            3.0 + j,
        )
        for j in range(6)
    ]

    def search(job, on=network):
        return pairs_within(on, *job, distances=engine == "scipy", workers=1, engine=engine)

    alone = [search(job) for job in jobs]
    with ThreadPoolExecutor(3) as threads:
        together = list(threads.map(search, jobs))
    copy = pickle.loads(pickle.dumps(network))  # the hierarchy and its lock are rebuilt, not sent
    key = ["origin_id", "destination_id"]
    for a, b, job in zip(alone, together, jobs, strict=True):
        assert len(a) > 0
        pd.testing.assert_frame_equal(
            a.sort_values(key, ignore_index=True), b.sort_values(key, ignore_index=True)
        )
        pd.testing.assert_frame_equal(a, search(job, copy))


@pytest.mark.parametrize("side", [1, 2, 5, 16, 45])
def test_hilbert_order_walks_square_to_neighbouring_square(side):
    """Ranking batches are runs of this order: on a full grid of 1 km squares every step goes to an
    edge-neighbour (no jumps) when the side is a power of two, and elsewhere seldom jumps; points
    with no coordinates come last; every point once."""
    from nearcare.geo import hilbert_order

    x, y = np.meshgrid(np.arange(side), np.arange(side))
    easting = np.r_[x.ravel() * 1000.0 + 400_000, np.nan]
    northing = np.r_[y.ravel() * 1000.0 + 300_000, 250_000.0]
    order = hilbert_order(easting, northing)
    assert sorted(order) == list(range(side * side + 1)) and order[-1] == side * side
    step = np.abs(np.diff(x.ravel()[order[:-1]])) + np.abs(np.diff(y.ravel()[order[:-1]]))
    if side & (side - 1) == 0:
        assert (step == 1).all()
    else:  # a curve of the next power of two, clipped to the grid: a few jumps
        assert (step == 1).mean() > 0.8
