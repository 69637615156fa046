"""The travel-time engine against NetworkX and brute force, on hand-made and real Rutland networks."""

from __future__ import annotations

import dataclasses

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.conftest import write

from nearcare import InputError, StoreError
from nearcare.bundle import bundle_dir
from nearcare.network import (
    ACCESS_SPEED_KPH,
    DETOUR_FACTOR,
    MINUTES_QUANTUM,
    AccessWays,
    Network,
    access_way,
    load_network,
    parse_maxspeed,
    read_network,
)
from nearcare.network.search import (
    CROWFLY_SPEED_KPH,
    Points,
    crowfly_nearest,
    crowfly_pairs,
    nearest,
    pairs_within,
    snap,
)
from nearcare.travel import compute_travel_times, origins_from_store

RUTLAND = bundle_dir() / "rutland-latest.osm.pbf"


@pytest.fixture(scope="module")
def rutland():
    return {mode: read_network(RUTLAND, mode) for mode in ("walk", "drive")}


def to_networkx(network: Network) -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_nodes_from(range(network.n_nodes))
    for s, t, m, length in zip(
        network.source, network.target, network.minutes, network.length_m, strict=True
    ):
        graph.add_edge(int(s), int(t), minutes=float(m), length=float(length))
    return graph


# --- building networks -------------------------------------------------------------------------


def osm_xml(tmp_path, ways: str, nodes: str) -> str:
    return write(tmp_path / "tiny.osm", f"<?xml version='1.0'?><osm version='0.6'>{nodes}{ways}</osm>")


def test_mode_rules_on_a_hand_made_map(tmp_path):
    # Nodes 1-2-3 in a line 0.001 deg apart (~68 m); 4 is off to one side; 5-6 an island.
    nodes = "".join(f"<node id='{i}' version='1' lat='52.6' lon='{-0.7 + i * 0.001}'/>" for i in (1, 2, 3, 4))
    nodes += (
        "<node id='5' version='1' lat='52.7' lon='-0.7'/><node id='6' version='1' lat='52.7' lon='-0.699'/>"
    )
    nodes += "<node id='7' version='1' lat='52.601' lon='-0.699'/>"
    ways = (
        "<way id='10' version='1'><nd ref='1'/><nd ref='2'/><tag k='highway' v='residential'/><tag k='oneway' v='yes'/>"
        "<tag k='maxspeed' v='15 mph'/></way>"
        "<way id='11' version='1'><nd ref='2'/><nd ref='3'/><tag k='highway' v='footway'/></way>"
        "<way id='12' version='1'><nd ref='3'/><nd ref='4'/><tag k='highway' v='motorway'/></way>"
        "<way id='13' version='1'><nd ref='2'/><nd ref='1'/><tag k='highway' v='service'/><tag k='access' v='destination'/></way>"
        "<way id='16' version='1'><nd ref='1'/><nd ref='7'/><tag k='highway' v='service'/><tag k='access' v='private'/></way>"
        "<way id='14' version='1'><nd ref='1'/><nd ref='3'/><tag k='highway' v='tertiary'/><tag k='foot' v='no'/></way>"
        "<way id='15' version='1'><nd ref='5'/><nd ref='6'/><tag k='highway' v='path'/></way>"
    )
    path = osm_xml(tmp_path, ways, nodes)
    walk = read_network(path, "walk")
    edges = {
        (int(walk.osm_id[s]), int(walk.osm_id[t])) for s, t in zip(walk.source, walk.target, strict=True)
    }
    # Walking: residential and the service road both ways (oneway ignored), footway both ways; no motorway,
    # no private road (node 7), no foot=no; the island 5-6 is dropped as the smaller connected part.
    assert edges == {(1, 2), (2, 1), (2, 3), (3, 2)}
    assert walk.dropped_nodes == 2
    drive = read_network(path, "drive")
    edges = {
        (int(drive.osm_id[s]), int(drive.osm_id[t])) for s, t in zip(drive.source, drive.target, strict=True)
    }
    # Driving: 1->2 by the oneway street, 2->1 by the access=destination service road, tertiary 1<->3;
    # no footway, no private road; the motorway 3->4 is one way, so 4 cannot return and is dropped.
    assert edges == {(1, 2), (2, 1), (1, 3), (3, 1)}
    assert drive.dropped_nodes == 1 and 4 not in drive.osm_id and 7 not in drive.osm_id
    one_two = np.flatnonzero((drive.osm_id[drive.source] == 1) & (drive.osm_id[drive.target] == 2))[0]
    # Edge times are whole microminutes: the exact time of the 68 m edge is within half of one.
    exact_minutes = drive.length_m[one_two] / (15 * 1.609344 * 1000 / 60)
    # 15 mph posted (24 km/h), below the residential 30 km/h; the parallel service road (15 km/h) is slower.
    assert abs(drive.minutes[one_two] - exact_minutes) <= MINUTES_QUANTUM / 2 + 1e-15
    assert abs(walk.minutes[0] - walk.length_m[0] / (4.8 * 1000 / 60)) <= MINUTES_QUANTUM / 2 + 1e-15
    # Access ways: only the private service road 1-7, joined to the drive network at node 1.
    access = drive.access
    assert {
        (int(access.osm_id[a]), int(access.osm_id[b]))
        for a, b in zip(access.source, access.target, strict=True)
    } == {(1, 7)}
    gates = {int(access.osm_id[i]): int(drive.osm_id[g]) for i, g in enumerate(access.gate) if g >= 0}
    assert gates == {1: 1} and walk.access is None


@pytest.mark.parametrize(
    "tags, expected",
    [
        ({"highway": "service", "access": "private"}, True),
        ({"highway": "track", "access": "private"}, True),
        ({"highway": "track"}, True),
        ({"highway": "track", "motor_vehicle": "private", "foot": "yes"}, True),
        ({"highway": "residential", "access": "customers"}, False),  # in the drive network already
        ({"highway": "residential", "access": "destination"}, False),
        ({"highway": "residential"}, False),
        ({"highway": "track", "motor_vehicle": "agricultural"}, False),
        ({"highway": "service", "access": "no"}, False),
        ({"highway": "footway", "access": "private"}, False),
        ({"highway": "service", "access": "private", "area": "yes"}, False),
        ({"highway": "unclassified", "motor_vehicle": "private", "access": "no"}, True),
    ],
)
def test_access_way_rules(tags, expected):
    assert access_way(tags) is expected


@pytest.mark.parametrize(
    "value, kph",
    [
        ("30 mph", 48.28032),
        ("50", 50.0),
        ("GB:nsl_single", 96.56064),
        ("20 mph;30 mph", 32.18688),
        ("signals", None),
        (None, None),
    ],
)
def test_parse_maxspeed(value, kph):
    assert parse_maxspeed(value) == (pytest.approx(kph) if kph else None)


def test_bad_extracts(tmp_path):
    with pytest.raises(InputError, match="not a readable"):
        read_network(write(tmp_path / "x.osm.pbf", "garbage" * 50), "walk")
    nodes = "<node id='1' version='1' lat='52.6' lon='-0.7'/>"
    with pytest.raises(InputError, match="no ways usable for drive"):
        read_network(osm_xml(tmp_path, "", nodes), "drive")
    with pytest.raises(InputError, match="mode must be"):
        read_network(RUTLAND, "cycle")


# --- routing against NetworkX -----------------------------------------------------------------


def node_points(network, nodes):
    return Points(np.array([f"n{i}" for i in nodes]), network.easting[nodes], network.northing[nodes])


@pytest.mark.parametrize("mode", ["walk", "drive"])
def test_node_to_node_matches_networkx(rutland, mode):
    network = rutland[mode]
    rng = np.random.default_rng(7)
    origins = rng.choice(network.n_nodes, 30, replace=False)
    sites = rng.choice(network.n_nodes, 12, replace=False)
    pairs = pairs_within(
        network,
        snap(network, node_points(network, origins), side="origin"),
        snap(network, node_points(network, sites), side="destination"),
        max_minutes=1e9,
    )
    assert len(pairs) == 30 * 12  # one strongly connected network: every pair is reachable
    graph = to_networkx(network)
    for _, row in pairs.sample(60, random_state=1).iterrows():
        path = nx.shortest_path(
            graph, int(row["origin_id"][1:]), int(row["destination_id"][1:]), weight="minutes"
        )
        assert row["minutes"] == pytest.approx(nx.path_weight(graph, path, "minutes"), abs=1e-9)
        assert row["distance_m"] == pytest.approx(nx.path_weight(graph, path, "length"), abs=1e-6)


def split_reference(network: Network, graph: nx.DiGraph, x: float, y: float, name: str, side: str) -> None:
    """Add a point to a NetworkX copy the slow, obvious way: brute-force nearest segment, split it."""
    a, b = network.source, network.target
    ax, ay, bx, by = network.easting[a], network.northing[a], network.easting[b], network.northing[b]
    dx, dy = bx - ax, by - ay
    t = np.clip(((x - ax) * dx + (y - ay) * dy) / (dx * dx + dy * dy), 0, 1)
    dist = np.hypot(ax + t * dx - x, ay + t * dy - y)
    best = np.min(dist)
    # The straight leg: walked when walking; driven when driving, x the detour factor at the access speed.
    metres_per_minute = (
        network.walk_speed_kph * 1000 / 60
        if network.mode == "walk"
        else ACCESS_SPEED_KPH * 1000 / 60 / DETOUR_FACTOR
    )
    leg_m = best if network.mode == "walk" else best * DETOUR_FACTOR
    for e in np.flatnonzero(dist <= best + 1e-9):
        u, v, f = int(a[e]), int(b[e]), float(t[e])
        split = f"{name}@{u}-{v}"
        graph.add_edge(u, split, minutes=f * network.minutes[e], length=f * network.length_m[e])
        graph.add_edge(split, v, minutes=(1 - f) * network.minutes[e], length=(1 - f) * network.length_m[e])
        if side == "origin":
            graph.add_edge(name, split, minutes=best / metres_per_minute, length=leg_m)
        else:
            graph.add_edge(split, name, minutes=best / metres_per_minute, length=leg_m)


@pytest.mark.parametrize("mode", ["walk", "drive"])
def test_off_network_points_match_split_edge_reference(rutland, mode):
    network = dataclasses.replace(rutland[mode], access=None)  # access ways are checked on their own below
    rng = np.random.default_rng(11)
    pick = rng.choice(network.n_nodes, 12, replace=False)
    x = network.easting[pick] + rng.uniform(-300, 300, 12)
    y = network.northing[pick] + rng.uniform(-300, 300, 12)
    x[8], y[8] = network.easting[pick[8]], network.northing[pick[8]]  # a site on a node: a way in of 0 min
    origins = Points(np.array([f"o{i}" for i in range(8)]), x[:8], y[:8])
    sites = Points(np.array([f"d{i}" for i in range(4)]), x[8:], y[8:])
    pairs = pairs_within(
        network, snap(network, origins, side="origin"), snap(network, sites, side="destination"), 1e9
    )
    graph = to_networkx(network)
    for i in range(8):
        split_reference(network, graph, x[i], y[i], f"o{i}", "origin")
    for j in range(4):
        split_reference(network, graph, x[8 + j], y[8 + j], f"d{j}", "destination")
    for _, row in pairs.iterrows():
        expected = nx.shortest_path_length(graph, row["origin_id"], row["destination_id"], weight="minutes")
        # Our engine routes two points on one edge through its end nodes: never quicker than the truth.
        assert row["minutes"] >= expected - 1e-9
        same_edge = {k.split("@")[1] for k in graph.successors(row["origin_id"])} & {
            k.split("@")[1] for k in graph.predecessors(row["destination_id"])
        }
        if not same_edge:
            assert row["minutes"] == pytest.approx(expected, abs=1e-9)
            # The length along the quickest path, ways in and out included (traced on drive).
            path = nx.shortest_path(graph, row["origin_id"], row["destination_id"], weight="minutes")
            assert row["distance_m"] == pytest.approx(nx.path_weight(graph, path, "length"), abs=1e-6)


def test_drive_joins_through_an_access_way_hand_worked():
    """A tiny drive network where the quickest way in is along a private drive, worked by hand.

    Public road (30 km/h = 500 m/min): n0 (0,0) - n1 (1000,0) - n2 (2000,0). A private drive (an
    access way, 15 km/h = 250 m/min) runs from n1 north to (1000,600) and east to (1300,600). The
    origin P stands at (1300,650); the destination D at n0.
    Direct: P is 650 m from the road at (1300,0), 0.3 along n1-n2. Driven leg 650 x 1.3 = 845 m at
    250 m/min = 3.38 min; to n1 another 300 m at 500 m/min = 0.6 min: 3.98 min; then n1->n0 1000 m
    = 2 min: 5.98 min.
    Through the drive: P is 50 m from it; 65 m at 250 m/min = 0.26 min; along it 300 + 600 = 900 m
    at 250 m/min = 3.6 min to n1: 3.86 min; then 2 min: 5.86 min and 65 + 900 + 1000 = 1965 m.
    """
    road_m = np.array([1000.0, 1000.0, 1000.0, 1000.0])
    network = Network(
        "drive",
        np.array([10, 11, 12]),
        np.array([0.0, 1000.0, 2000.0]),
        np.zeros(3),
        np.array([0, 1, 1, 2], np.int32),
        np.array([1, 0, 2, 1], np.int32),
        road_m,
        road_m / 500,
    )
    without = dataclasses.replace(network)
    network.access = AccessWays(
        np.array([11, 21, 22]),
        np.array([1000.0, 1000.0, 1300.0]),
        np.array([0.0, 600.0, 600.0]),
        np.array([0, 1], np.int32),
        np.array([1, 2], np.int32),
        np.array([600.0, 300.0]),
        np.array([1, -1, -1]),
    )
    p = Points(np.array(["P"]), np.array([1300.0]), np.array([650.0]))
    d = Points(np.array(["D"]), np.array([0.0]), np.array([0.0]))
    via_drive = pairs_within(
        network, snap(network, p, side="origin"), snap(network, d, side="destination"), 60
    )
    assert via_drive["minutes"].tolist() == pytest.approx([5.86])
    assert via_drive["distance_m"].tolist() == pytest.approx([1965.0])
    assert nearest(network, snap(network, p, side="origin"), snap(network, d, side="destination"))[
        "minutes"
    ].tolist() == pytest.approx([5.86])
    direct = pairs_within(without, snap(without, p, side="origin"), snap(without, d, side="destination"), 60)
    assert direct["minutes"].tolist() == pytest.approx([5.98])
    assert direct["distance_m"].tolist() == pytest.approx([845.0 + 300 + 1000])
    # The access way carries points only: between two points on the road it is never a through route.
    on_road = Points(np.array(["A", "B"]), np.array([0.0, 2000.0]), np.array([0.0, 0.0]))
    both = pairs_within(
        network, snap(network, on_road, side="origin"), snap(network, on_road, side="destination"), 60
    )
    assert both.set_index(["origin_id", "destination_id"]).loc[("A", "B"), "minutes"] == pytest.approx(4.0)


def test_drive_time_of_e01013787_is_no_longer_mostly_walking(demo_store):
    """E01013787 (Rutland) is 945 m from a public road: that leg was walked (11.8 of its 19.1 minutes).

    Now it is driven, as the rest of the trip: 945 m x 1.3 at 15 km/h is 4.9 minutes, nothing walked.
    """
    network = load_network(demo_store, "drive")
    assert network.access is not None and (network.access.gate >= 0).sum() > 100
    origins = origins_from_store(demo_store, ["E01013787"])
    snapped = snap(network, origins, side="origin")
    assert snapped.snap_m[0] == pytest.approx(945, abs=2)
    off_network_minutes = snapped.snap_m[0] * DETOUR_FACTOR / (ACCESS_SPEED_KPH * 1000 / 60)
    assert off_network_minutes == pytest.approx(4.9, abs=0.05)
    # Each way in costs the driven leg plus a share of a drive edge: no walking left in it.
    assert (snapped.extra_minutes >= off_network_minutes - 1e-9).all()
    minutes = demo_store.scalar(
        "SELECT minutes FROM nearest_services WHERE origin_id = 'E01013787' "
        "AND destination_kind = 'gp' AND mode = 'drive'"
    )
    assert (
        minutes < 19.1 - 11.8 + off_network_minutes + 0.5
    )  # the walk's 11.8 minutes replaced by the drive's 4.9
    assert off_network_minutes / minutes < 0.5
    assert round(minutes, 1) == 12.1  # as the README says


def test_network_command_keeps_access_ways(store):
    from typer.testing import CliRunner

    from nearcare.cli import app

    fresh = read_network(RUTLAND, "drive").access
    store.close()
    result = CliRunner().invoke(app, ["network", "--store", str(store.path), "--mode", "drive"])
    assert result.exit_code == 0, result.output
    assert f"{len(fresh.source):,} access-way edges" in result.output
    from nearcare.store import Store

    with Store(store.path, read_only=True) as reopened:
        loaded = load_network(reopened, "drive").access
        assert reopened.scalar("SELECT count(*) FROM network_edges WHERE mode = 'drive-access'") == len(
            fresh.source
        )
    for field in ("osm_id", "easting", "northing", "source", "target", "length_m", "gate"):
        assert np.array_equal(getattr(loaded, field), getattr(fresh, field)), field


def test_walking_distance_never_below_straight_line(rutland):
    network = rutland["walk"]
    rng = np.random.default_rng(3)
    o = rng.choice(network.n_nodes, 50, replace=False)
    d = rng.choice(network.n_nodes, 20, replace=False)
    origins, sites = node_points(network, o), node_points(network, d)
    pairs = pairs_within(
        network, snap(network, origins, side="origin"), snap(network, sites, side="destination"), 120
    )
    where = (
        pd.DataFrame(
            {
                "id": np.concatenate([origins.ids, sites.ids]),
                "x": np.concatenate([origins.easting, sites.easting]),
                "y": np.concatenate([origins.northing, sites.northing]),
            }
        )
        .drop_duplicates("id")
        .set_index("id")
    )
    straight = np.hypot(
        where.loc[pairs["origin_id"], "x"].to_numpy() - where.loc[pairs["destination_id"], "x"].to_numpy(),
        where.loc[pairs["origin_id"], "y"].to_numpy() - where.loc[pairs["destination_id"], "y"].to_numpy(),
    )
    assert len(pairs) > 100
    assert (pairs["distance_m"].to_numpy() >= straight - 1e-6).all()
    assert pairs["minutes"].to_numpy() == pytest.approx(pairs["distance_m"].to_numpy() / (4.8 * 1000 / 60))


@pytest.mark.parametrize("cutoff", [5.0, 12.5, 30.0])
def test_cutoff_keeps_exactly_the_pairs_within_it(rutland, cutoff):
    network = rutland["drive"]
    rng = np.random.default_rng(5)
    o = rng.choice(network.n_nodes, 40)
    origins = Points(
        np.array([f"o{i}" for i in range(40)]),
        network.easting[o] + rng.uniform(-200, 200, 40),
        network.northing[o] + rng.uniform(-200, 200, 40),
    )
    sites = node_points(network, rng.choice(network.n_nodes, 9, replace=False))
    so, sd = snap(network, origins, side="origin"), snap(network, sites, side="destination")
    full = pairs_within(network, so, sd, 1e9)
    cut = pairs_within(network, so, sd, cutoff)
    expected = full[full["minutes"] <= cutoff].reset_index(drop=True)
    assert (cut["minutes"] <= cutoff).all()
    pd.testing.assert_frame_equal(cut, expected)


def test_parallel_searches_give_the_same_answers(rutland, monkeypatch):
    network = rutland["drive"]
    monkeypatch.setattr("nearcare.network.search._PARALLEL_WORK", 0)  # the cores share any job
    rng = np.random.default_rng(4)
    origins = snap(
        network, node_points(network, rng.choice(network.n_nodes, 300, replace=False)), side="origin"
    )
    sites = snap(
        network, node_points(network, rng.choice(network.n_nodes, 120, replace=False)), side="destination"
    )
    serial = pairs_within(network, origins, sites, 15, workers=1)
    pd.testing.assert_frame_equal(pairs_within(network, origins, sites, 15, workers=2), serial)
    assert len(serial) > 1000


def test_search_direction_does_not_change_answers(rutland):
    """Fewer sites than origins searches from sites on the reversed graph; more searches from origins."""
    network = rutland["drive"]
    rng = np.random.default_rng(9)
    a = node_points(network, rng.choice(network.n_nodes, 5, replace=False))
    b = node_points(network, rng.choice(network.n_nodes, 25, replace=False))
    few_sites = pairs_within(
        network, snap(network, b, side="origin"), snap(network, a, side="destination"), 20
    )
    many_sites = pairs_within(
        network, snap(network, a, side="origin"), snap(network, b, side="destination"), 20
    )
    graph = to_networkx(network)
    for frame in (few_sites, many_sites):
        for _, row in frame.sample(min(30, len(frame)), random_state=2).iterrows():
            expected = nx.shortest_path_length(
                graph, int(row["origin_id"][1:]), int(row["destination_id"][1:]), weight="minutes"
            )
            assert row["minutes"] == pytest.approx(expected, abs=1e-9)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), n_sites=st.integers(1, 12))
def test_nearest_is_the_minimum_over_all_pairs(rutland, seed, n_sites):
    network = rutland["drive"]
    rng = np.random.default_rng(seed)
    o, d = rng.choice(network.n_nodes, 25), rng.choice(network.n_nodes, n_sites)
    origins = Points(
        np.array([f"o{i}" for i in range(25)]), network.easting[o] + 50, network.northing[o] - 50
    )
    sites = Points(
        np.array([f"d{i}" for i in range(n_sites)]),
        network.easting[d] + rng.uniform(-100, 100, n_sites),
        network.northing[d],
    )
    so, sd = snap(network, origins, side="origin"), snap(network, sites, side="destination")
    near = nearest(network, so, sd).set_index("origin_id")
    brute = (
        pairs_within(network, so, sd, 1e9)
        .sort_values("minutes")
        .drop_duplicates("origin_id")
        .set_index("origin_id")
    )
    assert near.index.sort_values().equals(brute.index.sort_values())
    assert near["minutes"].to_numpy() == pytest.approx(brute.loc[near.index, "minutes"].to_numpy(), abs=1e-7)
    assert (
        near["distance_m"].to_numpy()
        == pytest.approx(brute.loc[near.index, "distance_m"].to_numpy(), abs=1e-5)
        or (near["destination_id"] != brute.loc[near.index, "destination_id"]).any()
    )  # ties may pick another site


def test_points_far_from_the_network_are_reported(rutland):
    network = rutland["walk"]
    points = Points(
        np.array(["near", "far"]),
        np.array([network.easting[0], network.easting[0] + 50_000]),
        np.array([network.northing[0], network.northing[0]]),
    )
    snapped = snap(network, points, side="origin", max_snap_m=1000)
    assert list(snapped.ids) == ["near"]
    assert list(snapped.unsnapped["point_id"]) == ["far"] and snapped.unsnapped["snap_m"].iloc[0] > 40_000


def test_no_sites_on_the_network_gives_empty_results(rutland):
    network = rutland["walk"]
    origins = snap(network, node_points(network, np.arange(5)), side="origin")
    far = snap(network, Points(np.array(["x"]), np.array([0.0]), np.array([0.0])), side="destination")
    assert len(far.ids) == 0 and len(pairs_within(network, origins, far, 30)) == 0
    assert nearest(network, origins, far)["minutes"].isna().all()


def test_crowfly_is_labelled_and_scaled():
    origins = Points(np.array(["a", "b"]), np.array([0.0, 3000.0]), np.array([0.0, 4000.0]))
    sites = Points(np.array(["s"]), np.array([0.0]), np.array([0.0]))
    pairs = crowfly_pairs(origins, sites, "drive", max_minutes=60)
    metres = {"a": 0.0, "b": 5000.0 * DETOUR_FACTOR}
    assert dict(zip(pairs["origin_id"], pairs["distance_m"], strict=True)) == pytest.approx(metres)
    assert pairs.set_index("origin_id").loc["b", "minutes"] == pytest.approx(
        metres["b"] / (CROWFLY_SPEED_KPH["drive"] * 1000 / 60)
    )
    assert list(crowfly_pairs(origins, sites, "walk", max_minutes=60)["origin_id"]) == [
        "a"
    ]  # 6.5 km is 81 min
    assert list(crowfly_nearest(origins, sites, "walk")["destination_id"]) == ["s", "s"]


# --- stored results ----------------------------------------------------------------------------


def test_demo_store_has_travel_times(demo_store):
    runs = demo_store.df("SELECT * FROM travel_runs")
    assert set(runs["profile"]) == {"walk", "drive"} and set(runs["mode"]) == {"walk", "drive", "crowfly"}
    near = demo_store.df("SELECT * FROM nearest_services WHERE destination_kind = 'gp' AND mode <> 'crowfly'")
    assert len(near) == 2 * 26 and near["minutes"].notna().all()
    pairs = demo_store.df("SELECT * FROM travel_times WHERE destination_kind = 'gp'")
    # The nearest practice within 30 minutes appears among the pairs with the same time.
    joined = near[near["minutes"] <= 30].merge(
        pairs, on=["origin_id", "destination_id", "profile", "mode"], suffixes=("", "_pair")
    )
    assert len(joined) == (near["minutes"] <= 30).sum()
    assert joined["minutes"].to_numpy() == pytest.approx(joined["minutes_pair"].to_numpy())
    assert demo_store.df("SELECT * FROM networks")["nodes"].min() > 10_000


def test_crowfly_fallback_without_network(demo, tmp_path):
    import shutil

    from nearcare.store import Store

    copy = tmp_path / "s.duckdb"
    shutil.copyfile(demo.store_path, copy)
    with Store(copy) as store:
        store.con.execute("DELETE FROM networks WHERE mode = 'walk'")
        runs = compute_travel_times(store, "walk", ["pharmacy"], max_minutes=20)
        assert runs[0].mode == "crowfly" and runs[0].origins == 634
        modes = store.df(
            "SELECT mode, count(DISTINCT origin_id) AS n FROM nearest_services "
            "WHERE destination_kind = 'pharmacy' AND profile = 'walk' GROUP BY 1"
        ).set_index("mode")["n"]
        # The crow-fly run covers all 634 LSOAs and stands beside the Rutland network run (26 LSOAs).
        assert modes.to_dict() == {"crowfly": 634, "walk": 26}
        with pytest.raises(InputError, match="unknown service kind"):
            compute_travel_times(store, "walk", ["hospital"], max_minutes=20)
        before = store.df("SELECT * FROM travel_times ORDER BY ALL")
        with pytest.raises(InputError, match="positive"):
            compute_travel_times(store, "walk", ["gp"], max_minutes=0)
        pd.testing.assert_frame_equal(before, store.df("SELECT * FROM travel_times ORDER BY ALL"))


def test_network_needs_an_extract(tmp_path):
    from nearcare.network import build_networks, load_network
    from nearcare.store import Store

    with Store(tmp_path / "empty.duckdb") as store:
        with pytest.raises(StoreError, match="no OSM extract"):
            build_networks(store)
        with pytest.raises(StoreError, match="no walk network"):
            load_network(store, "walk")


def test_extract_spoiled_after_import_leaves_networks_as_they_were(tmp_path, demo):
    import shutil

    from nearcare.network import build_networks
    from nearcare.sources import import_files
    from nearcare.store import Store

    copy = tmp_path / "s.duckdb"
    shutil.copyfile(demo.store_path, copy)
    extract = tmp_path / "rutland.osm.pbf"
    shutil.copyfile(RUTLAND, extract)
    with Store(copy) as store:
        import_files(store, "osm", [extract])
        before = store.df("SELECT * FROM networks ORDER BY mode")
        extract.write_bytes(b"\x00" * 64)  # the user's file is overwritten after import
        with pytest.raises(InputError, match="not a readable OpenStreetMap file"):
            build_networks(store)
        pd.testing.assert_frame_equal(before, store.df("SELECT * FROM networks ORDER BY mode"))


def test_empty_extract_is_refused(tmp_path):
    from nearcare.sources import importers

    with pytest.raises(InputError, match="empty"):
        importers()["osm"].parse(write(tmp_path / "empty.osm.pbf", ""))
