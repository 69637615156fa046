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


@pytest.fixture(scope="module")
def cluster():
    """Two workers on loopback, threads in this process (2 cores: processes would only add start-up)."""
    with distributed_.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=False,
        protocol="tcp",
        host="127.0.0.1",
        dashboard_address=None,
    ) as running:
        yield running


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
