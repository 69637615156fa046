"""Partitioned road-network runs give the same pairs as one run over the whole network (issue #16)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nearcare.bundle import bundle_dir
from nearcare.geo import to_bng
from nearcare.network import WALK_SPEED_KPH, read_network
from nearcare.network import partition as part
from nearcare.network.search import Points, pairs_within, snap

RUTLAND = bundle_dir() / "rutland-latest.osm.pbf"
CUTOFF = {"walk": 20.0, "drive": 6.0}  # drive: a 10 km buffer, so pieces stay smaller than Rutland


@pytest.fixture(scope="module")
def rutland():
    """The bundled Rutland networks, the bundled LSOA centroids and services (real points)."""
    centroids = pd.read_parquet(bundle_dir() / "lsoa_centroids.parquet")
    sites = pd.read_parquet(bundle_dir() / "organisations.parquet").dropna(subset=["lat", "lon"])
    easting, northing = to_bng(sites["lon"].to_numpy(float), sites["lat"].to_numpy(float))
    networks = {mode: read_network(RUTLAND, mode) for mode in ("walk", "drive")}
    # Rutland has few LSOAs and services: add points scattered over the whole extract as well.
    lsoas = Points.from_frame(centroids, "lsoa_code")
    return {
        "network": networks,
        "origins": join(lsoas, scattered(networks["walk"], 300, 1, "o")),
        "sites": join(
            Points(sites["code"].astype(str).to_numpy(), easting, northing),
            scattered(networks["walk"], 80, 2, "s"),
        ),
    }


def scattered(network, count: int, seed: int, prefix: str) -> Points:
    """Points near random nodes, off the way by up to 150 m, so they join part-way along edges."""
    rng = np.random.default_rng(seed)
    nodes = rng.choice(network.n_nodes, count, replace=False)
    return Points(
        np.array([f"{prefix}{i}" for i in range(count)]),
        network.easting[nodes] + rng.uniform(-150, 150, count),
        network.northing[nodes] + rng.uniform(-150, 150, count),
    )


def join(a: Points, b: Points) -> Points:
    return Points(*(np.concatenate([getattr(a, f), getattr(b, f)]) for f in ("ids", "easting", "northing")))


def whole(network, origins, sites, cutoff, distances):
    o = snap(network, origins, side="origin")
    d = snap(network, sites, side="destination")
    return pairs_within(network, o, d, cutoff, distances=distances, workers=1)


def assert_same(partitioned: pd.DataFrame, single: pd.DataFrame) -> None:
    key = ["origin_id", "destination_id"]
    a, b = partitioned.set_index(key).sort_index(), single.set_index(key).sort_index()
    assert a.index.equals(b.index)  # the same pairs
    np.testing.assert_allclose(a["minutes"], b["minutes"], rtol=1e-12, atol=0)
    np.testing.assert_allclose(a["distance_m"], b["distance_m"], rtol=1e-9, atol=1e-9)


def test_buffer_is_cutoff_times_fastest_speed(rutland):
    walk, drive = rutland["network"]["walk"], rutland["network"]["drive"]
    assert part.fastest_kph(walk) == pytest.approx(WALK_SPEED_KPH, rel=1e-6)
    assert part.buffer_m(walk, 30) == pytest.approx(2400, rel=1e-6)
    assert 60 < part.fastest_kph(drive) <= 100.01  # no motorway in Rutland; the class speeds cap it


@pytest.mark.parametrize("mode", ["walk", "drive"])
def test_grid_partitions_equal_whole_run(rutland, mode):
    network, origins, sites = rutland["network"][mode], rutland["origins"], rutland["sites"]
    cutoff = CUTOFF[mode]
    single = whole(network, origins, sites, cutoff, distances=True)
    labels = part.grid_labels(origins, 4000.0)
    pieces = part.tasks(
        network,
        snap(network, origins, side="origin"),
        snap(network, sites, side="destination"),
        labels[np.isin(origins.ids, snap(network, origins, side="origin").ids)],
        cutoff,
    )
    assert len(pieces) >= 4  # Rutland really is split
    assert max(t.network.n_nodes for t in pieces) < network.n_nodes  # each routes on less than the whole
    partitioned = part.partitioned_pairs(network, origins, sites, labels, cutoff)
    assert len(single) > 100
    assert_same(partitioned, single)


def test_too_small_a_buffer_loses_pairs(rutland, monkeypatch):
    """The check above can fail: half the derived buffer drops pairs whose paths leave the piece."""
    network, origins, sites = rutland["network"]["drive"], rutland["origins"], rutland["sites"]
    single = whole(network, origins, sites, CUTOFF["drive"], distances=False)
    full = part.buffer_m
    monkeypatch.setattr(part, "buffer_m", lambda n, m: full(n, m) / 4)
    partitioned = part.partitioned_pairs(
        network, origins, sites, part.grid_labels(origins, 4000.0), CUTOFF["drive"], distances=False
    )
    assert len(partitioned) < len(single)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mode=st.sampled_from(["walk", "drive"]), pieces=st.integers(1, 6), seed=st.integers(0, 2**31 - 1))
def test_random_partitions_equal_whole_run(rutland, mode, pieces, seed):
    """Any split of the origins (here random, scattered pieces) gives the whole run's pairs."""
    network, origins, sites = rutland["network"][mode], rutland["origins"], rutland["sites"]
    labels = np.random.default_rng(seed).integers(0, pieces, len(origins)).astype(str)
    single = whole(network, origins, sites, CUTOFF[mode], distances=False)
    partitioned = part.partitioned_pairs(network, origins, sites, labels, CUTOFF[mode], distances=False)
    assert_same(partitioned, single)


def test_overlapping_results_keep_the_quickest():
    a = pd.DataFrame(
        {
            "origin_id": ["x", "y"],
            "destination_id": ["s", "s"],
            "distance_m": [900.0, 50.0],
            "minutes": [9.0, 1.0],
        }
    )
    b = pd.DataFrame({"origin_id": ["x"], "destination_id": ["s"], "distance_m": [800.0], "minutes": [8.0]})
    merged = part.merge([a, b])
    assert merged.set_index("origin_id")["minutes"].to_dict() == {"x": 8.0, "y": 1.0}


def test_a_one_speed_piece_of_a_drive_network_routes_as_the_whole(rutland):
    """A piece whose edges happen to share one speed still traces lengths, as the whole network does."""
    from nearcare.network.search import _uniform_speed

    drive = rutland["network"]["drive"]
    keep = np.zeros(drive.n_nodes, bool)
    keep[[drive.source[0], drive.target[0]]] = True  # one road: one speed
    piece, _ = part.sub_network(drive, keep)
    assert _uniform_speed(drive) is None
    assert _uniform_speed(piece) is None
    fresh, _ = part.sub_network(drive, keep)
    fresh.cache.clear()
    assert _uniform_speed(fresh) is not None  # what the piece alone would have said
