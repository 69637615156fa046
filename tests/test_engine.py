"""The contraction-hierarchy engine against SciPy's Dijkstra (the oracle), on Rutland and generated graphs."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nearcare.bundle import bundle_dir
from nearcare.network import MINUTES_QUANTUM, Network, hierarchy, read_network
from nearcare.network.search import Points, nearest, pairs_within, snap

pytest.importorskip("pyroutingkit")  # the hierarchy is optional; SciPy is the fallback

RUTLAND = bundle_dir() / "rutland-latest.osm.pbf"


@pytest.fixture(scope="module")
def rutland():
    return {mode: read_network(RUTLAND, mode) for mode in ("walk", "drive")}


def scattered(network: Network, count: int, seed: int, prefix: str) -> Points:
    """Points near random nodes, off the way by up to 150 m, so they join part-way along edges."""
    rng = np.random.default_rng(seed)
    nodes = rng.choice(network.n_nodes, count, replace=False)
    return Points(
        np.array([f"{prefix}{i}" for i in range(count)]),
        network.easting[nodes] + rng.uniform(-150, 150, count),
        network.northing[nodes] + rng.uniform(-150, 150, count),
    )


def assert_same_pairs(cch: pd.DataFrame, scipy: pd.DataFrame) -> None:
    key = ["origin_id", "destination_id"]
    a, b = cch.set_index(key).sort_index(), scipy.set_index(key).sort_index()
    assert a.index.equals(b.index)  # the same pairs within the cutoff
    np.testing.assert_allclose(a["minutes"], b["minutes"], rtol=1e-9, atol=0)
    np.testing.assert_allclose(a["distance_m"], b["distance_m"], rtol=1e-9, atol=0)


def assert_same_nearest(cch: pd.DataFrame, scipy: pd.DataFrame, atol_m: float = 1e-9) -> None:
    assert cch["origin_id"].tolist() == scipy["origin_id"].tolist()
    np.testing.assert_allclose(cch["minutes"], scipy["minutes"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(cch["distance_m"], scipy["distance_m"], rtol=1e-9, atol=atol_m)
    # Which site is named may differ only between equally near ones (same minutes, checked above).


@pytest.mark.parametrize("mode", ["walk", "drive"])
def test_hierarchy_and_scipy_agree_on_rutland(rutland, mode):
    network = rutland[mode]
    origins = snap(network, scattered(network, 500, 1, "o"), side="origin")
    sites = snap(network, scattered(network, 200, 2, "s"), side="destination")
    for cutoff in (5.0, 30.0):
        cch = pairs_within(network, origins, sites, cutoff, distances=False, engine="cch")
        scipy = pairs_within(network, origins, sites, cutoff, distances=False, engine="scipy", workers=1)
        assert 0 < len(scipy) < 500 * 200 or cutoff == 30.0
        assert_same_pairs(cch, scipy)
    assert_same_nearest(
        nearest(network, origins, sites, distances=False, engine="cch"),
        nearest(network, origins, sites, distances=False, engine="scipy"),
    )
    assert "cch" in network.cache  # built once and kept on the network


def test_walk_lengths_come_with_the_hierarchy(rutland):
    """One walking speed: lengths are time x speed, so the hierarchy answers with distances too."""
    network = rutland["walk"]
    origins = snap(network, scattered(network, 60, 3, "o"), side="origin")
    sites = snap(network, scattered(network, 20, 4, "s"), side="destination")
    traced = pairs_within(network, origins, sites, 30.0, engine="scipy", workers=1)
    assert traced["distance_m"].notna().all()
    assert_same_pairs(pairs_within(network, origins, sites, 30.0, engine="cch"), traced)
    assert_same_nearest(nearest(network, origins, sites, engine="cch"), nearest(network, origins, sites))


def test_drive_lengths_need_scipy(rutland):
    """The hierarchy gives times only: tracing lengths on a drive network asks for SciPy."""
    network = rutland["drive"]
    origins = snap(network, scattered(network, 20, 5, "o"), side="origin")
    sites = snap(network, scattered(network, 5, 6, "s"), side="destination")
    with pytest.raises(ValueError, match="times only"):
        pairs_within(network, origins, sites, 30.0, engine="cch")
    by_default = pairs_within(network, origins, sites, 30.0)  # chooses SciPy, to trace lengths
    assert by_default["distance_m"].notna().all()
    assert_same_pairs(by_default, pairs_within(network, origins, sites, 30.0, engine="scipy", workers=1))


@st.composite
def small_graphs(draw):
    n = draw(st.integers(2, 25))
    edges = draw(
        st.lists(
            st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), min_size=1, max_size=4 * n, unique=True
        )
    )
    edges = [(a, b) for a, b in edges if a != b] or [(0, 1)]
    symmetric = draw(st.booleans())  # every edge both ways at the same minutes, as walking
    if symmetric:
        edges = sorted({(min(a, b), max(a, b)) for a, b in edges})
    minutes = draw(
        st.lists(
            st.floats(1e-6, 20.0, allow_nan=False, allow_infinity=False),
            min_size=len(edges),
            max_size=len(edges),
        )
    )
    xy = draw(st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 2000)), min_size=n, max_size=n))
    if symmetric:
        edges += [(b, a) for a, b in edges]
        minutes += minutes
    source, target = (np.array(x, np.int32) for x in zip(*edges, strict=True))
    easting, northing = (np.array(v, float) for v in zip(*xy, strict=True))
    length = np.hypot(easting[target] - easting[source], northing[target] - northing[source]) + 1.0
    network = Network("drive", np.arange(n), easting, northing, source, target, length, np.array(minutes))
    cutoff = draw(st.floats(0.5, 60.0))
    return network, cutoff, draw(st.integers(0, 2**32 - 1))


def two_lanes(hierarchy_, reverse, threads, seconds_left):
    """``hierarchy._lanes`` as if a query's rest always paid for a second thread."""
    return min(threads, 2)


@settings(max_examples=150, deadline=None)
@given(small_graphs())
def test_hierarchy_and_scipy_agree_on_generated_graphs(case):
    network, cutoff, seed = case
    rng = np.random.default_rng(seed)

    def points(count, prefix):
        return Points(
            np.array([f"{prefix}{i}" for i in range(count)]),
            rng.uniform(-100, 2100, count),
            rng.uniform(-100, 2100, count),
        )

    # More origins than sites, and fewer: the hierarchy queries from the fewer, turned round on the
    # reverse network's metric where the graph is not the same both ways (here for any rows saved),
    # and shared over two threads, each with its own metric.
    n_origins, n_sites = (12, 4) if seed % 2 else (3, 9)
    origins = snap(network, points(n_origins, "o"), side="origin", max_snap_m=1e5)
    sites = snap(network, points(n_sites, "s"), side="destination", max_snap_m=1e5)
    scipy = pairs_within(network, origins, sites, cutoff, distances=False, engine="scipy", workers=1)
    assert_same_pairs(pairs_within(network, origins, sites, cutoff, distances=False, engine="cch"), scipy)
    with mock.patch.object(hierarchy, "_TURN_ROWS", 1), mock.patch.object(hierarchy, "_lanes", two_lanes):
        turned = pairs_within(network, origins, sites, cutoff, distances=False, engine="cch", workers=2)
    assert_same_pairs(turned, scipy)
    assert_same_nearest(
        nearest(network, origins, sites, distances=False, engine="cch"),
        nearest(network, origins, sites, distances=False, engine="scipy"),
        # At one speed a length is time x speed, and times are whole quanta: two equally quick paths
        # may differ by up to a quantum's metres an edge (1.5 m where an edge of 1.5 m takes one).
        atol_m=float((network.length_m / network.minutes).max()) * MINUTES_QUANTUM * len(network.source),
    )


def test_engine_is_checked():
    network = Network(
        "walk", np.arange(2), np.array([0.0, 100.0]), np.zeros(2), np.array([0, 1]), np.array([1, 0]),
        np.array([100.0, 100.0]), np.array([1.25, 1.25]),
    )  # fmt: skip
    p = snap(network, Points(np.array(["a"]), np.array([0.0]), np.array([0.0])), side="origin")
    with pytest.raises(ValueError, match="engine must be"):
        pairs_within(network, p, p, 5.0, engine="igraph")
    with pytest.raises(ValueError, match="searches up to"):
        pairs_within(network, p, p, hierarchy.MAX_MINUTES * 2, engine="cch")


def test_hierarchy_is_kept_beside_the_store_and_reused(rutland, tmp_path, monkeypatch):
    """The topology is built once per network and read back by a fresh copy (no rebuild), with the
    same answers; a damaged file is built again; another network does not read this one's file."""
    import dataclasses

    def fresh(mode: str) -> Network:
        network = dataclasses.replace(rutland[mode])  # same arrays, empty cache
        network.hierarchy_folder = tmp_path / "store.duckdb.cch"
        return network

    network = fresh("drive")
    origins = snap(network, scattered(network, 120, 3, "o"), side="origin")
    sites = snap(network, scattered(network, 30, 4, "s"), side="destination")
    first = pairs_within(network, origins, sites, 12.0, distances=False, engine="cch")
    (kept,) = (tmp_path / "store.duckdb.cch").glob("drive-*")

    built = []
    original = hierarchy._build_topology
    monkeypatch.setattr(hierarchy, "_build_topology", lambda n: built.append(n) or original(n))
    again = pairs_within(fresh("drive"), origins, sites, 12.0, distances=False, engine="cch")
    assert built == []  # read from the files
    pd.testing.assert_frame_equal(first, again)

    order = kept / "order"
    order.write_bytes(order.read_bytes()[:-64] + bytes(64))  # damaged in place
    damaged = pairs_within(fresh("drive"), origins, sites, 12.0, distances=False, engine="cch")
    assert len(built) == 1  # the checksum failed: built again, and kept again
    pd.testing.assert_frame_equal(first, damaged)
    assert (kept / "sha256").read_text().strip() == hierarchy._checksum(kept)

    walk = fresh("walk")
    hierarchy.customised(walk)
    assert len(built) == 2  # its own edges, its own folder
    kept_now = sorted(p.name.split("-")[0] for p in (tmp_path / "store.duckdb.cch").iterdir())
    assert kept_now == ["drive", "walk"]  # no partial folder left


def test_the_hierarchy_is_built_by_default_only_where_it_pays(rutland, tmp_path, monkeypatch):
    """A few searches (a new hub's sites) use SciPy rather than wait for a build; many searches build
    it; once built, or kept beside the store, even one search uses it. The answers never differ."""
    import dataclasses

    def fresh() -> Network:
        network = dataclasses.replace(rutland["drive"])  # same arrays, empty cache
        network.hierarchy_folder = tmp_path / "store.duckdb.cch"
        return network

    built, queried = [], []
    build, query = hierarchy._build_topology, hierarchy.minutes_matrix
    monkeypatch.setattr(hierarchy, "_build_topology", lambda n: built.append(n) or build(n))
    monkeypatch.setattr(hierarchy, "minutes_matrix", lambda *a: queried.append(a) or query(*a))
    network = fresh()
    origins = snap(network, scattered(network, 400, 5, "o"), side="origin")
    one_site = snap(network, scattered(network, 1, 6, "s"), side="destination")
    few = pairs_within(network, origins, one_site, 12.0, distances=False)
    assert (built, queried) == ([], [])  # SciPy: no build for one site
    oracle = pairs_within(network, origins, one_site, 12.0, distances=False, engine="scipy")
    pd.testing.assert_frame_equal(few, oracle)

    many = snap(network, scattered(network, 150, 7, "s"), side="destination")
    assert len(np.unique(many.node)) >= 100 > network.n_nodes / 3_000  # enough searches to pay
    assert_same_pairs(
        pairs_within(network, origins, many, 12.0, distances=False),
        pairs_within(network, origins, many, 12.0, distances=False, engine="scipy"),
    )
    assert len(built) == 1 and len(queried) == 1

    assert_same_pairs(pairs_within(network, origins, one_site, 12.0, distances=False), oracle)
    assert len(built) == 1 and len(queried) == 2  # built already: used for one site too
    pairs_within(fresh(), origins, one_site, 12.0, distances=False)
    assert len(built) == 1 and len(queried) == 3  # kept beside the store: read back, not built


@pytest.mark.parametrize("slow", ["hierarchy", "scipy"])
def test_a_large_query_uses_the_engine_a_sample_times_faster(rutland, monkeypatch, caplog, slow):
    """Above _PROBE_WORK the default engine is timed on a sample of each (which is faster depends on
    the graph): the one made slow here, per search or per row, is left out, the other answers the
    whole query, and the pairs are the same either way."""
    import dataclasses
    import time

    from nearcare.network import search

    caplog.set_level("INFO", logger="nearcare")
    network = dataclasses.replace(rutland["drive"])  # a fresh cache: what is made here is all there is
    origins = snap(network, scattered(network, 300, 8, "o"), side="origin")
    sites = snap(network, scattered(network, 250, 9, "s"), side="destination")
    oracle = pairs_within(network, origins, sites, 15.0, distances=False, engine="scipy", workers=1)
    # Built, with both metrics: the hierarchy is the default unless a sample says otherwise, and its
    # query is turned round onto the reverse metric (the 50 rows saved would not pay for making it).
    hierarchy.customised(network)
    hierarchy.customised(network, reverse=True)
    caplog.clear()
    pairs_within(network, origins, sites, 15.0, distances=False)
    assert "routing" not in caplog.text  # the hierarchy answered, SciPy never ran
    assert "timed on a sample" not in caplog.text  # below _PROBE_WORK (Rutland): no sample is timed
    caplog.clear()

    # A pause per search or per row: far longer than either engine takes for one on Rutland.
    rows, searches = [], []
    query = hierarchy.minutes_matrix

    def counted_query(network, sources, targets, threads=1):
        plan = hierarchy.query_plan(network, sources, targets)  # its rows: the targets, if turned
        rows.append((plan.total_rows, sum(searches)))  # with the searches run so far (the sample's)
        if slow == "hierarchy":
            time.sleep(0.002 * plan.total_rows)
        yield from query(network, sources, targets, threads)

    def counted_search(graph, indices, **kwargs):
        searches.append(len(indices))
        if slow == "scipy":
            time.sleep(0.002 * len(indices))
        return dijkstra(graph, indices=indices, **kwargs)

    dijkstra = search.dijkstra
    monkeypatch.setattr(hierarchy, "minutes_matrix", counted_query)
    monkeypatch.setattr(search, "dijkstra", counted_search)
    monkeypatch.setattr(search, "_PROBE_WORK", 0)
    chosen = pairs_within(network, origins, sites, 15.0, distances=False, workers=1)
    expected = "scipy" if slow == "hierarchy" else "cch"
    assert f"engine: {expected} (timed on a sample" in caplog.text
    (sampled_rows, sampled_searches), *whole_query = rows
    o_nodes, s_nodes = np.unique(origins.node), np.unique(sites.node)
    plan = hierarchy.query_plan(network, o_nodes, s_nodes)
    query_rows = plan.total_rows
    assert plan.turned and len(s_nodes) < len(o_nodes) and query_rows == len(s_nodes)
    assert sampled_rows < query_rows / 10 and sampled_searches < len(sites.ids) / 10
    if expected == "scipy":  # the whole query: every search, and no more hierarchy rows
        assert not whole_query and sum(searches) - sampled_searches >= len(s_nodes) // 2
    else:
        assert sum(searches) == sampled_searches
        assert sum(n for n, _ in whole_query) == query_rows
    assert_same_pairs(chosen, oracle)


def test_walking_is_symmetric_and_driving_is_not(rutland):
    assert hierarchy.symmetric(rutland["walk"]) and not hierarchy.symmetric(rutland["drive"])
    walk = rutland["walk"]
    # One edge made slower one way breaks it, as would a parallel quicker edge.
    slower = Network(
        "walk",
        walk.osm_id,
        walk.easting,
        walk.northing,
        walk.source,
        walk.target,
        walk.length_m,
        np.r_[walk.minutes[:-1], walk.minutes[-1] * 2],
    )
    assert not hierarchy.symmetric(slower)
    parallel = Network(
        "walk",
        walk.osm_id,
        walk.easting,
        walk.northing,
        np.r_[walk.source, walk.source[:1]],
        np.r_[walk.target, walk.target[:1]],
        np.r_[walk.length_m, walk.length_m[:1]],
        np.r_[walk.minutes, walk.minutes[:1] / 2],
    )
    assert not hierarchy.symmetric(parallel)


def test_a_turned_query_in_many_batches_gives_the_same_pairs(rutland, monkeypatch):
    """Walking, the hierarchy queries from the fewer sites and turns the answer round, a batch of
    origins at a time: in batches of 150 origins, still SciPy's pairs and nearest."""
    network = rutland["walk"]
    origins = snap(network, scattered(network, 400, 10, "o"), side="origin")
    sites = snap(network, scattered(network, 30, 11, "s"), side="destination")
    scipy = pairs_within(network, origins, sites, 30.0, engine="scipy", workers=1)
    near = nearest(network, origins, sites, engine="scipy")
    monkeypatch.setattr(hierarchy, "_BATCH_CELLS", len(np.unique(sites.node)) * 150)  # 150 origins a batch
    assert hierarchy.query_plan(network, np.unique(origins.node), np.unique(sites.node)).turned
    assert_same_pairs(pairs_within(network, origins, sites, 30.0, engine="cch"), scipy)
    assert_same_nearest(nearest(network, origins, sites, engine="cch"), near)


def oracle_minutes(network: Network, sources: np.ndarray, targets: np.ndarray) -> np.ndarray:
    from scipy.sparse.csgraph import dijkstra

    return dijkstra(network.matrix("minutes"), indices=sources)[:, targets]


@pytest.mark.parametrize("mode", ["walk", "drive"])
def test_a_query_shared_over_threads_gives_the_same_minutes(rutland, monkeypatch, mode):
    """Shared over two threads, each customising a metric of its own (the reverse network's where a
    drive query is turned round), in many small batches: SciPy's minutes, to the quantum."""
    import dataclasses

    network = dataclasses.replace(rutland[mode])  # a fresh cache: its own hierarchy and metrics
    rng = np.random.default_rng(12)
    sources = np.sort(rng.choice(network.n_nodes, 700, replace=False))
    targets = np.sort(rng.choice(network.n_nodes, 90, replace=False))
    monkeypatch.setattr(hierarchy, "_lanes", two_lanes)
    monkeypatch.setattr(hierarchy, "_BATCH_CELLS", 90 * 250)  # three batches of sources
    plan = hierarchy.query_plan(network, sources, targets)
    assert plan.turned and plan.reverse == (mode == "drive")
    got = np.vstack([m for _, m in hierarchy.minutes_matrix(network, sources, targets, threads=2)])
    np.testing.assert_allclose(got, oracle_minutes(network, sources, targets), rtol=1e-12, atol=1e-9)
    assert network.cache["cch"].made(plan.reverse) == 2  # two metrics: one a thread


def test_a_drive_query_turns_round_only_where_it_pays(rutland):
    """On a network not the same both ways, turning round needs the reverse network's metric: made
    where the rows saved pay for it, then used for any query it shortens."""
    import dataclasses

    network = dataclasses.replace(rutland["drive"])
    nodes = np.arange(0, network.n_nodes, 7)
    few, some, many = nodes[:50], nodes[:200], nodes[: 50 + hierarchy._TURN_ROWS]
    # With no metric made yet, turning round makes only the reverse one: it turns for any rows saved.
    assert hierarchy.query_plan(network, some, few).turned
    hierarchy.customised(network)  # the forward metric made
    assert not hierarchy.query_plan(network, some, few).turned  # 150 rows saved: not worth a metric
    plan = hierarchy.query_plan(network, many, few)
    assert plan.turned and plan.reverse and plan.total_rows == 50
    for _ in hierarchy.minutes_matrix(network, many, few):
        pass
    assert hierarchy.query_plan(network, some, few).turned  # the reverse metric is made now
    assert not hierarchy.query_plan(network, few, some).turned  # already from the fewer side


def test_nodes_given_as_a_strided_view_are_read_as_they_are(rutland):
    """RoutingKit reads an array's buffer as it lies in memory: a strided view (every other node)
    must reach it as the nodes it holds, not as the buffer's first ones."""
    network = rutland["drive"]
    nodes = np.arange(0, 4000, 10, dtype=np.uint32)
    sources, targets = nodes[::2], nodes[1::2][:40]
    got = np.vstack([m for _, m in hierarchy.minutes_matrix(network, sources, targets)])
    np.testing.assert_allclose(got, oracle_minutes(network, sources, targets), rtol=1e-12, atol=1e-9)


def test_a_query_takes_more_threads_only_where_they_pay(rutland, monkeypatch):
    """A thread more costs a metric's customisation and memory: taken for what is left of a query
    if that is at least twice a customisation (and _LANE_MIN_SECONDS) and the metric fits in half
    the free memory; metrics made already are used whatever is left."""
    import dataclasses

    network = dataclasses.replace(rutland["walk"])
    hierarchy.customised(network)
    made = network.cache["cch"]
    made.customise_seconds, made.metric_bytes = 1.0, 1_000_000
    assert hierarchy._lanes(made, False, 1, 100.0) == 1  # one thread asked for
    assert hierarchy._lanes(made, False, 2, 1.9) == 1  # the rest takes less than two customisations
    assert hierarchy._lanes(made, False, 2, 2.1) == 2
    assert hierarchy._lanes(made, False, 4, 2.1) == 2  # each thread more must save two customisations
    assert hierarchy._lanes(made, False, 4, 6.1) == 4
    assert hierarchy._lanes(made, False, 8, 6.1) == 4
    made.metric_bytes = 10**15  # more than the machine has free
    assert hierarchy._lanes(made, False, 2, 100.0) == 1
    assert hierarchy.seconds_on(network, False, 10.0, 2) == 10.0
    made.metric_bytes = 1_000_000
    assert hierarchy.seconds_on(network, False, 10.0, 2) == pytest.approx(1.0 + 9.0 / 2)
    with made.metric(network, False, 2), made.metric(network, False, 2):
        pass  # a second metric, made by a query shared over two threads
    assert hierarchy._lanes(made, False, 2, 0.0) == 2  # made already: used however little is left
    assert hierarchy.seconds_on(network, False, 10.0, 2) == pytest.approx(10.0 / 2)


def test_a_metric_that_fails_to_customise_is_not_counted(rutland, monkeypatch):
    """A customisation that fails (out of memory, say) leaves no metric counted that does not exist:
    the next query makes one and answers, and a thread waiting for a metric is woken to make it."""
    import dataclasses
    import threading

    network = dataclasses.replace(rutland["walk"])
    made = hierarchy._hierarchy(network)
    customise, calls = made._customise, []

    def fails_once(network, reverse):
        calls.append(reverse)
        if len(calls) == 1:
            raise MemoryError("no room for a metric")
        return customise(network, reverse)

    monkeypatch.setattr(made, "_customise", fails_once)
    nodes = np.arange(0, 3000, 30)
    with pytest.raises(MemoryError):
        next(hierarchy.minutes_matrix(network, nodes, nodes[:20]))
    assert made.made(False) == 0 and made.made(True) == 0
    got = np.vstack([m for _, m in hierarchy.minutes_matrix(network, nodes, nodes[:20])])
    np.testing.assert_allclose(got, oracle_minutes(network, nodes, nodes[:20]), rtol=1e-12, atol=1e-9)

    # Shared over two threads, the second thread's metric fails to customise: the query is answered
    # on the one metric made.
    calls.clear()
    monkeypatch.setattr(hierarchy, "_lanes", two_lanes)
    monkeypatch.setattr(made, "_customise", fails_once)  # the first customisation from now fails
    got_two = np.vstack([m for _, m in hierarchy.minutes_matrix(network, nodes, nodes[:20], threads=2)])
    np.testing.assert_allclose(got_two, got, rtol=1e-12, atol=1e-9)
    assert calls  # a second metric was tried
    monkeypatch.undo()

    # One metric, held by one thread: another waits for it, and gets it once it is given back.
    reverse = hierarchy.query_plan(network, nodes, nodes[:20]).reverse
    assert made.made(reverse) == 1
    answered: list = []
    with made.metric(network, reverse) as metric:
        waiter = threading.Thread(
            target=lambda: answered.append(
                [m for _, m in hierarchy.minutes_matrix(network, nodes, nodes[:20])]
            )
        )
        waiter.start()
        waiter.join(0.2)
        assert waiter.is_alive() and not answered  # waiting: the only metric is held here
        assert metric is not None
    waiter.join(30)
    assert answered and made.made(reverse) == 1
    np.testing.assert_allclose(np.vstack(answered[0]), got, rtol=1e-12, atol=1e-9)


def test_an_edge_too_long_for_the_hierarchy_is_not_read_as_a_short_one():
    """2^32 quanta is 4,294.967296 minutes: an edge of 4,294.968 must not wrap round to 0.0007
    minutes in the hierarchy's 32-bit weights and put its far end within the cutoff."""
    source, target = np.array([0, 1, 1, 2], np.int32), np.array([1, 0, 2, 1], np.int32)
    minutes = np.array([1.0, 1.0, 4294.968, 4294.968])
    xy = np.array([0.0, 100.0, 200.0])
    network = Network("drive", np.arange(3), xy, np.zeros(3), source, target, np.full(4, 100.0), minutes)
    here = snap(network, Points(np.array(["o"]), np.array([0.0]), np.array([0.0])), side="origin")
    there = snap(network, Points(np.array(["s"]), np.array([200.0]), np.array([0.0])), side="destination")
    for engine in ("cch", "scipy"):
        assert pairs_within(network, here, there, 30.0, distances=False, engine=engine).empty
    got = np.vstack([m for _, m in hierarchy.minutes_matrix(network, np.array([0]), np.array([1, 2]))])
    assert got[0, 0] == pytest.approx(1.0) and got[0, 1] == np.inf  # beyond what the hierarchy counts


def test_the_hierarchy_saturates_where_routingkit_does():
    """``_INF`` stands for RoutingKit's INF_WEIGHT in weights and answers: they must be the same."""
    import pyroutingkit

    assert hierarchy._INF == pyroutingkit.INF_WEIGHT
