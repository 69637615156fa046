"""Network search at scale (#20): one snapping index per network, and bounded searches on the sub-graph
they can reach, each checked against a brute-force or whole-graph oracle."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nearcare.bundle import bundle_dir
from nearcare.network import Network, read_network
from nearcare.network import search as search_module
from nearcare.network.search import Points, SegmentIndex, pairs_within, snap

RUTLAND = bundle_dir() / "rutland-latest.osm.pbf"


@pytest.fixture(scope="module")
def rutland():
    return {mode: read_network(RUTLAND, mode) for mode in ("walk", "drive")}


def scattered(network: Network, count: int, seed: int, prefix: str, spread_m: float = 400.0) -> Points:
    rng = np.random.default_rng(seed)
    nodes = rng.choice(network.n_nodes, count, replace=False)
    return Points(
        np.array([f"{prefix}{i}" for i in range(count)]),
        network.easting[nodes] + rng.uniform(-spread_m, spread_m, count),
        network.northing[nodes] + rng.uniform(-spread_m, spread_m, count),
    )


def brute_force_nearest(ax, ay, bx, by, x, y):
    """Distance from each point to every segment, the slow obvious way: (least distance, its segments)."""
    dx, dy = bx - ax, by - ay
    squared = dx * dx + dy * dy
    least, which = [], []
    for px, py in zip(x, y, strict=True):
        with np.errstate(invalid="ignore", divide="ignore"):
            t = np.clip(np.where(squared > 0, ((px - ax) * dx + (py - ay) * dy) / squared, 0), 0, 1)
        d = np.hypot(ax + t * dx - px, ay + t * dy - py)
        least.append(d.min())
        which.append(set(np.flatnonzero(d <= d.min() + 1e-9)))
    return np.array(least), which


@pytest.mark.parametrize("mode", ["walk", "drive"])
def test_snapping_index_finds_the_nearest_edge(rutland, mode):
    network = rutland[mode]
    index = search_module._snap_index(network)
    points = scattered(network, 300, 7, "p", spread_m=1500)
    point, segment, distance, fraction = index.nearest(points.easting, points.northing)
    assert np.array_equal(point, np.arange(len(points)))
    e, n = network.easting, network.northing
    least, which = brute_force_nearest(
        e[index.u], n[index.u], e[index.v], n[index.v], points.easting, points.northing
    )
    np.testing.assert_allclose(distance, least, rtol=0, atol=1e-9)
    assert all(s in w for s, w in zip(segment, which, strict=True))
    assert ((fraction >= 0) & (fraction <= 1)).all()


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_segments=st.integers(1, 40),
    scale=st.sampled_from([1.0, 50.0, 5_000.0]),
    block=st.sampled_from([1, 3, 7, SegmentIndex._BLOCK]),
)
def test_segment_index_matches_brute_force_on_random_segments(seed, n_segments, scale, block):
    """Also built a few segments at a time (England's is built in blocks): the same nearest."""
    rng = np.random.default_rng(seed)
    coords = rng.uniform(0, scale, (2 * n_segments, 2))
    u = np.arange(0, 2 * n_segments, 2)
    v = u + 1
    if n_segments > 2:
        v[0] = u[0]  # a zero-length segment
    whole = SegmentIndex._BLOCK
    SegmentIndex._BLOCK = block
    try:
        index = SegmentIndex(coords[:, 0], coords[:, 1], u, v)
    finally:
        SegmentIndex._BLOCK = whole
    if block != whole:  # the same pieces, in the same order, as built in one block
        np.testing.assert_array_equal(
            index.tree.data, SegmentIndex(coords[:, 0], coords[:, 1], u, v).tree.data
        )
    x, y = rng.uniform(-scale, 2 * scale, 25), rng.uniform(-scale, 2 * scale, 25)
    _, segment, distance, _ = index.nearest(x, y)
    least, which = brute_force_nearest(coords[u, 0], coords[u, 1], coords[v, 0], coords[v, 1], x, y)
    np.testing.assert_allclose(distance, least, rtol=0, atol=1e-9 * scale)
    assert all(s in w for s, w in zip(segment, which, strict=True))


@settings(max_examples=80, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_nodes=st.integers(1, 30),
    n_edges=st.integers(0, 120),
    shuffled=st.booleans(),
    block=st.sampled_from([1, 2, 5, 2_000_000]),
)
def test_directed_edge_lookup_matches_a_dictionary(seed, n_nodes, n_edges, shuffled, block):
    """Edges as read_network leaves them (sorted by source, target) are looked up through row starts
    alone; any other order through a sorting permutation; both give each edge's own index, -1 if absent."""
    rng = np.random.default_rng(seed)
    pairs = np.unique(rng.integers(0, n_nodes, (n_edges, 2)), axis=0)  # sorted, distinct
    if shuffled:
        pairs = pairs[rng.permutation(len(pairs))]
    source, target = pairs[:, 0].astype(np.int32), pairs[:, 1].astype(np.int32)
    network = Network(
        "drive",
        np.arange(n_nodes),
        rng.uniform(0, 1000, n_nodes),
        rng.uniform(0, 1000, n_nodes),
        source,
        target,
        np.full(len(source), 100.0),
        np.full(len(source), 1.0),
    )
    a, b = rng.integers(0, n_nodes, 200), rng.integers(0, n_nodes, 200)
    a, b = np.concatenate([a, source]), np.concatenate([b, target])
    index_of = {(int(s), int(t)): i for i, (s, t) in enumerate(zip(source, target, strict=True))}
    expected = np.array([index_of.get((int(x), int(y)), -1) for x, y in zip(a, b, strict=True)])
    np.testing.assert_array_equal(search_module._directed_edge(network, a, b), expected)
    is_sorted = not shuffled or bool(np.all(np.diff(source.astype(np.int64) * n_nodes + target) > 0))
    assert (network.cache["edge-rows"][2] is None) == is_sorted
    assert search_module._sorted_edges(source, target, block=block) == is_sorted  # checked in blocks


def test_snapping_index_is_built_once_per_network(rutland, monkeypatch):
    network = read_network(RUTLAND, "drive")  # a fresh network: nothing cached yet
    built = []
    original = SegmentIndex.__init__

    def counting(self, *args, **kwargs):
        built.append(len(args[2]))
        original(self, *args, **kwargs)

    monkeypatch.setattr(SegmentIndex, "__init__", counting)
    for seed, side in ((1, "origin"), (2, "destination"), (3, "destination"), (4, "origin")):
        snap(network, scattered(network, 200, seed, "p"), side=side)
    # One index over the drive edges and one over the access ways, whatever the calls.
    assert network.access is not None
    assert len(built) == 2
    assert sorted(built) == sorted([len(search_module._snap_index(network).u), len(network.access.source)])


def same_pairs(a: pd.DataFrame, b: pd.DataFrame) -> None:
    key = ["origin_id", "destination_id"]
    a, b = a.set_index(key).sort_index(), b.set_index(key).sort_index()
    assert a.index.equals(b.index)
    np.testing.assert_array_equal(a["minutes"].to_numpy(), b["minutes"].to_numpy())
    np.testing.assert_allclose(a["distance_m"], b["distance_m"], rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("mode", ["walk", "drive"])
def test_regional_searches_give_the_whole_graph_pairs_on_rutland(rutland, mode, monkeypatch):
    network = rutland[mode]
    origins = snap(network, scattered(network, 400, 11, "o"), side="origin")
    sites = snap(network, scattered(network, 60, 12, "s"), side="destination")
    for cutoff in (3.0, 10.0):
        monkeypatch.setattr(search_module, "_REGION_SHARE", 0.0)  # always the whole graph
        whole = pairs_within(network, origins, sites, cutoff, engine="scipy", workers=1)
        monkeypatch.setattr(search_module, "_REGION_SHARE", 1.0)  # always the sub-graph around sources
        regional = pairs_within(network, origins, sites, cutoff, engine="scipy", workers=1)
        assert len(whole) > 0
        same_pairs(regional, whole)


def whole_and_regional(network, origins, destinations, cutoff):
    """The pairs searched on the whole graph, and on the sub-graphs around the sources."""
    old = search_module._REGION_SHARE
    try:
        search_module._REGION_SHARE = 0.0
        whole = pairs_within(network, origins, destinations, cutoff, engine="scipy", workers=1)
        search_module._REGION_SHARE = 1.0
        regional = pairs_within(network, origins, destinations, cutoff, engine="scipy", workers=1)
    finally:
        search_module._REGION_SHARE = old
    return whole, regional


@st.composite
def road_like_graphs(draw):
    """Nodes on a jittered plane, joined to near neighbours, some one way, speeds that differ."""
    seed = draw(st.integers(0, 100_000))
    n = draw(st.integers(4, 120))
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 5_000, (n, 2))
    a = rng.integers(0, n, 4 * n)
    b = np.array([np.argsort(np.hypot(*(xy - xy[i]).T))[rng.integers(1, min(n, 5))] for i in a])
    straight = np.hypot(*(xy[a] - xy[b]).T)
    keep = straight > 0
    a, b, straight = a[keep], b[keep], straight[keep]
    both = rng.random(len(a)) < 0.8
    source = np.concatenate([a, b[both]]).astype(np.int32)
    target = np.concatenate([b, a[both]]).astype(np.int32)
    length = np.concatenate([straight, straight[both]]) * rng.uniform(1.0, 1.5, len(source))
    kph = rng.choice([10.0, 30.0, 60.0, 100.0], len(source))
    frame = pd.DataFrame({"s": source, "t": target, "l": length, "m": length / (kph * 1000 / 60)})
    frame = frame.sort_values("m").drop_duplicates(["s", "t"])
    network = Network(
        "drive",
        np.arange(n),
        xy[:, 0],
        xy[:, 1],
        frame["s"].to_numpy(np.int32),
        frame["t"].to_numpy(np.int32),
        frame["l"].to_numpy(),
        frame["m"].to_numpy(),
    )
    cutoff = draw(st.sampled_from([0.5, 2.0, 6.0]))
    return network, rng.integers(0, 1_000_000), cutoff


@settings(max_examples=80, deadline=None)
@given(road_like_graphs())
def test_regional_searches_give_the_whole_graph_pairs_on_generated_graphs(case):
    network, seed, cutoff = case
    rng = np.random.default_rng(seed)

    def at_nodes(count, prefix):
        nodes = rng.choice(network.n_nodes, min(count, network.n_nodes), replace=False)
        return Points(
            np.array([f"{prefix}{i}" for i in range(len(nodes))]),
            network.easting[nodes],
            network.northing[nodes],
        )

    origins = snap(network, at_nodes(30, "o"), side="origin")
    sites = snap(network, at_nodes(8, "s"), side="destination")
    whole, regional = whole_and_regional(network, origins, sites, cutoff)
    same_pairs(regional, whole)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 100_000), roads=st.integers(2, 12), cutoff=st.sampled_from([2.0, 5.0]))
def test_regional_searches_reach_as_far_as_straight_roads_allow(seed, roads, cutoff):
    """Straight roads at one speed radiating from a centre, out to three times the cutoff's reach: a
    node is reached about when its crow-fly distance is within that reach, in any direction, so a
    sub-graph cut even a little short of the reach (a corner rounded too far) loses pairs."""
    rng = np.random.default_rng(seed)
    metres_per_minute = 1000.0
    reach_m = cutoff * metres_per_minute
    angles = rng.uniform(0, 2 * np.pi, roads)
    along = np.linspace(0, 3 * reach_m, 61)[1:]  # a node every 5% of the reach
    x = np.concatenate([[0.0], *(along * np.cos(a) for a in angles)])
    y = np.concatenate([[0.0], *(along * np.sin(a) for a in angles)])
    first = 1 + len(along) * np.arange(roads)
    a = np.concatenate([[0, *(f + np.arange(len(along) - 1))] for f in first])
    b = np.concatenate([[f, *(f + np.arange(1, len(along)))] for f in first])
    source, target = np.concatenate([a, b]).astype(np.int32), np.concatenate([b, a]).astype(np.int32)
    length = np.hypot(x[target] - x[source], y[target] - y[source])
    network = Network("drive", np.arange(len(x)), x, y, source, target, length, length / metres_per_minute)
    everyone = Points(np.array([f"o{i}" for i in range(len(x))]), x, y)
    near_centre = np.r_[0, first[:3] + rng.integers(0, 3, min(3, roads))]  # the centre and a few nodes by it
    sites = Points(np.array([f"s{i}" for i in range(len(near_centre))]), x[near_centre], y[near_centre])
    origins = snap(network, everyone, side="origin")
    destinations = snap(network, sites, side="destination")
    whole, regional = whole_and_regional(network, origins, destinations, cutoff)
    # Reached out to about the reach on every road, and nothing much farther: the bound is tight.
    reached = whole.merge(pd.DataFrame({"origin_id": everyone.ids, "r": np.hypot(x, y)}), on="origin_id")
    assert reached["r"].max() > 0.9 * reach_m
    assert reached["r"].max() < 1.2 * reach_m
    same_pairs(regional, whole)


def reference_network(path, mode: str):
    """The network built the slow, obvious way (dicts per node and edge), from the documented rules."""
    import networkx as nx
    import osmium

    from nearcare.geo import to_bng
    from nearcare.network import (
        MINUTES_QUANTUM,
        WALK_SPEED_KPH,
        drive_allowed,
        drive_direction,
        drive_speed_kph,
        walk_allowed,
    )

    allowed = walk_allowed if mode == "walk" else drive_allowed
    lonlat: dict[int, tuple[float, float]] = {}
    raw: list[tuple[int, int, float, float]] = []  # (from, to, speed kph, ...) filled below
    processor = (
        osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY)
        .with_locations()
        .with_filter(osmium.filter.EntityFilter(osmium.osm.WAY))
        .with_filter(osmium.filter.KeyFilter("highway"))
    )
    for way in processor:
        tags = dict(way.tags)
        if not allowed(tags):
            continue
        if mode == "walk":
            fwd, bwd, speed = True, True, WALK_SPEED_KPH
        else:
            (fwd, bwd), speed = drive_direction(tags), drive_speed_kph(tags)
        refs = []
        for node in way.nodes:
            if node.location.valid():
                lonlat[node.ref] = (node.location.lon, node.location.lat)
                refs.append(node.ref)
            else:
                refs.append(None)
        for p, q in itertools.pairwise(refs):
            if p is None or q is None or p == q:
                continue
            if fwd:
                raw.append((p, q, speed, 0))
            if bwd:
                raw.append((q, p, speed, 0))
    ids = sorted(lonlat)
    easting, northing = to_bng(np.array([lonlat[i][0] for i in ids]), np.array([lonlat[i][1] for i in ids]))
    where = {i: (e, n) for i, e, n in zip(ids, easting, northing, strict=True)}
    best: dict[tuple[int, int], tuple[float, float]] = {}
    for p, q, speed, _ in raw:
        length = float(np.hypot(where[q][0] - where[p][0], where[q][1] - where[p][1]))
        minutes = length / (speed * 1000 / 60)
        if (p, q) not in best or minutes < best[(p, q)][0]:
            best[(p, q)] = (minutes, length)
    graph = nx.DiGraph()
    graph.add_edges_from(best)
    largest = max(nx.strongly_connected_components(graph), key=len)
    edges = {}
    for (p, q), (minutes, length) in best.items():
        if p in largest and q in largest:
            minutes = max(round(minutes / MINUTES_QUANTUM), 1) * MINUTES_QUANTUM
            length = minutes * (WALK_SPEED_KPH * 1000 / 60) if mode == "walk" else max(length, 1e-3)
            edges[(p, q)] = (minutes, length)
    return {i: where[i] for i in largest}, edges


@pytest.mark.parametrize("mode", ["walk", "drive"])
def test_streamed_build_gives_the_reference_graph_on_rutland(rutland, mode):
    assert_reference_graph(rutland[mode], RUTLAND, mode)


def assert_reference_graph(network: Network, path, mode: str) -> None:
    """``network`` has exactly the nodes, coordinates, edges, times and lengths of ``reference_network``."""
    nodes, edges = reference_network(path, mode)
    assert sorted(nodes) == network.osm_id.tolist()
    np.testing.assert_array_equal(network.easting, [nodes[i][0] for i in network.osm_id])
    np.testing.assert_array_equal(network.northing, [nodes[i][1] for i in network.osm_id])
    built = {
        (network.osm_id[s], network.osm_id[t]): (m, length)
        for s, t, m, length in zip(
            network.source, network.target, network.minutes, network.length_m, strict=True
        )
    }
    assert built.keys() == edges.keys()
    key = sorted(edges)
    np.testing.assert_allclose([built[k][0] for k in key], [edges[k][0] for k in key], rtol=1e-12, atol=0)
    np.testing.assert_allclose([built[k][1] for k in key], [edges[k][1] for k in key], rtol=1e-9, atol=0)


def test_build_holds_few_bytes_per_node():
    """The build streams into typed arrays: its Python-side peak stays a small multiple of the network.

    (osmium's buffers, outside Python's heap, are not counted here; the build keeps no index of node
    locations.) The list-based build held about 540 bytes per node at its peak on Rutland.
    """
    import tracemalloc

    tracemalloc.start()
    try:
        network = read_network(RUTLAND, "drive")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak / network.n_nodes < 160


def opl(text: str) -> str:
    """OPL's escaping: anything but letters, digits and plain punctuation as %hex%."""
    return "".join(c if c.isascii() and (c.isalnum() or c in "-_.:;/()") else f"%{ord(c):x}%" for c in text)


@pytest.mark.parametrize(
    "mode, seed, shuffled, how",
    [
        ("walk", 1, True, "filtered"),
        ("drive", 2, True, "indexed"),
        ("drive", 3, False, "filtered"),
        ("walk", 4, False, "indexed"),
    ],
)
def test_build_from_a_clipped_and_unsorted_real_extract(tmp_path, monkeypatch, mode, seed, shuffled, how):
    """Rutland with some of its road nodes gone (as where an extract is clipped) and, half the time, its
    nodes out of id order: the ways read first, then their nodes' locations either way (by id, or from
    osmium's index of every node), still give the reference graph, the missing nodes break their ways,
    and the nodes on no highway change nothing."""
    import osmium

    from nearcare import network as network_module

    monkeypatch.setattr(network_module, "_READ_LOCATIONS_BY", how)

    rng = np.random.default_rng(seed)
    referenced = set()
    for way in osmium.FileProcessor(str(RUTLAND), osmium.osm.WAY).with_filter(
        osmium.filter.KeyFilter("highway")
    ):
        referenced.update(node.ref for node in way.nodes)
    dropped = set(rng.choice(sorted(referenced), len(referenced) // 50, replace=False).tolist())
    # Written as OPL text by hand (osmium's own writer is not needed to make a test file).
    nodes = [
        f"n{node.id} v1 x{node.location.x / 1e7:.7f} y{node.location.y / 1e7:.7f}"
        for node in osmium.FileProcessor(str(RUTLAND), osmium.osm.NODE)
        if node.id not in dropped
    ]
    assert len(nodes) > 2 * (len(referenced) - len(dropped))  # most of the extract is off the roads
    if shuffled:
        nodes = [nodes[i] for i in rng.permutation(len(nodes))]
    ways = [
        f"w{way.id} v1 T{','.join(f'{opl(k)}={opl(v)}' for k, v in way.tags)} "
        f"N{','.join(f'n{node.ref}' for node in way.nodes)}"
        for way in osmium.FileProcessor(str(RUTLAND), osmium.osm.WAY)
    ]
    clipped = tmp_path / "rutland-clipped.osm.opl"
    clipped.write_text("\n".join(nodes + ways) + "\n", encoding="utf-8")
    network = read_network(clipped, mode)
    assert_reference_graph(network, clipped, mode)
    assert not dropped & set(network.osm_id.tolist())
    # Fewer edges than the whole extract gives: the dropped nodes did break ways.
    assert len(network.source) < len(read_network(RUTLAND, mode).source)


def test_a_node_without_a_location_breaks_its_way(tmp_path):
    """A node listed without coordinates (osmium reads it as an invalid location) is not placed at 0, 0:
    the way breaks there, as where the node is missing."""
    nodes = "".join(f"<node id='{i}' version='1' lat='52.6' lon='{-0.7 + i * 0.001}'/>" for i in (1, 2, 4, 5))
    nodes = nodes.replace("<node id='4'", "<node id='3' version='1'/><node id='4'")
    way = "".join(f"<nd ref='{i}'/>" for i in (1, 2, 3, 4, 5)) + "<tag k='highway' v='residential'/>"
    path = tmp_path / "gap.osm"
    path.write_text(
        f"<?xml version='1.0'?><osm version='0.6'>{nodes}<way id='1' version='1'>{way}</way></osm>"
    )
    network = read_network(path, "walk")
    assert network.osm_id.tolist() in ([1, 2], [4, 5])
    assert network.dropped_nodes == 2
    assert np.all(np.abs(network.easting - network.easting[0]) < 100)


def test_locations_are_read_the_way_that_needs_less_memory():
    """osmium's id set costs about 512 KiB for every 2**22 ids from the least to the greatest (measured);
    its index of all locations 16 bytes a node of the file (about one node per 10 bytes of .pbf)."""
    import osmium

    from nearcare.network import _Locations

    refs = set()
    for way in osmium.FileProcessor(str(RUTLAND), osmium.osm.WAY).with_filter(
        osmium.filter.KeyFilter("highway")
    ):
        refs.update(node.ref for node in way.nodes)
    rutland = np.array(sorted(refs))
    span = int(rutland[-1] >> 22) - int(rutland[0] >> 22) + 1
    assert span > 1000  # a county's road nodes span the ids of 17 years of mapping
    assert _Locations.cheaper(rutland, RUTLAND.stat().st_size) == "indexed"
    # The same ids in a national file (1.5 GB, about 150M nodes): the id set is cheaper.
    assert _Locations.cheaper(rutland, 1_500_000_000) == "filtered"
    # On each side of where the id set and the index cost the same, the cheaper one.
    equal = span * (1 << 19) // 16 * 10
    assert _Locations.cheaper(rutland, equal + 1000) == "filtered"
    assert _Locations.cheaper(rutland, equal - 1000) == "indexed"
    # Dense ids (a generated extract): a few ranges, so filtered whatever the file.
    assert _Locations.cheaper(np.arange(1, 1_000_001), 5_000_000) == "filtered"
