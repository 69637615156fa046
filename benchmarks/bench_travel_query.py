"""Benchmark the travel-time engine on the query it is really asked: many-to-many within a cutoff.

Shape: 500 origins x 200 destinations (random nodes, seeded), pairs within 30 minutes, and the
nearest destination of each origin (no cutoff), on the Rutland walk and drive networks (bundled
extract) and a generated grid of 100,000 nodes (random edge times, both directions; see
bench_travel.py). Engines, on the same graph and nodes:
- nearcare cch: ``pairs_within``/``nearest`` with ``engine="cch"`` (query; the one-off hierarchy
  build is timed apart and kept on the network);
- nearcare scipy: the same calls with ``engine="scipy"``;
- plain SciPy: ``dijkstra(limit=30)`` from the 200 destinations on the reversed matrix (nearest:
  ``min_only=True`` from all of them), built before timing;
- igraph: ``distances`` from the destinations (it has no cutoff; pairs filtered after).
Every engine's pairs and minutes are checked against plain SciPy's (same pairs; minutes to 1e-9
relative). Times are the median of interleaved rounds; ratio = peer time / nearcare cch time.

Run (on an otherwise idle machine):  .venv/bin/python benchmarks/bench_travel_query.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from bench_travel import grid_network, snapped_at_nodes

ORIGINS, DESTINATIONS, CUTOFF = 500, 200, 30.0


def graphs():
    from nearcare.bundle import bundle_dir
    from nearcare.network import read_network

    pbf = bundle_dir() / "rutland-latest.osm.pbf"
    yield "Rutland walk", read_network(pbf, "walk")
    yield "Rutland drive", read_network(pbf, "drive")
    yield "grid 100k", grid_network(100_000)


def as_matrix(pairs, n_o, n_d):
    matrix = np.full((n_o, n_d), np.inf)
    o = pairs["origin_id"].str[1:].astype(int).to_numpy()
    d = pairs["destination_id"].str[1:].astype(int).to_numpy()
    matrix[o, d] = pairs["minutes"].to_numpy()
    return matrix


def same(matrix, oracle, what):
    assert np.array_equal(np.isfinite(matrix), np.isfinite(oracle)), f"{what}: different pairs"
    ok = np.isfinite(oracle)
    assert np.allclose(matrix[ok], oracle[ok], rtol=1e-9, atol=0), f"{what}: different minutes"


def measure(name, network, rounds):
    """(build s, median seconds by engine, pairs kept) for one graph; answers checked against plain SciPy."""
    import igraph as ig
    from scipy.sparse.csgraph import dijkstra

    from nearcare.network import hierarchy
    from nearcare.network.search import nearest, pairs_within

    rng = np.random.default_rng(1)
    o_nodes = rng.choice(network.n_nodes, ORIGINS, replace=False)
    d_nodes = rng.choice(network.n_nodes, DESTINATIONS, replace=False)
    origins, sites = snapped_at_nodes(o_nodes, "o"), snapped_at_nodes(d_nodes, "d")
    start = time.perf_counter()
    hierarchy.metric(network)
    build = time.perf_counter() - start
    reverse = network.matrix("minutes", reverse=True)
    graph = ig.Graph(
        n=network.n_nodes, edges=np.column_stack([network.source, network.target]).tolist(), directed=True
    )
    graph.es["w"] = network.minutes.tolist()

    def plain_scipy():
        return dijkstra(reverse, indices=d_nodes, limit=CUTOFF)[:, o_nodes].T

    def igraph_pairs():
        m = np.array(
            graph.distances(source=d_nodes.tolist(), target=o_nodes.tolist(), weights="w", mode="in")
        ).T
        m[m > CUTOFF] = np.inf
        return m

    pair_runs = {
        "cch": lambda: pairs_within(network, origins, sites, CUTOFF, distances=False, engine="cch"),
        "scipy": lambda: pairs_within(network, origins, sites, CUTOFF, distances=False, engine="scipy"),
        "plain SciPy": plain_scipy,
        "igraph": igraph_pairs,
    }
    near_runs = {
        "cch": lambda: nearest(network, origins, sites, distances=False, engine="cch"),
        "scipy": lambda: nearest(network, origins, sites, distances=False, engine="scipy"),
        "plain SciPy": lambda: dijkstra(reverse, indices=d_nodes, min_only=True)[o_nodes],
    }
    times: dict[str, list[float]] = {f"pairs {k}": [] for k in pair_runs} | {
        f"nearest {k}": [] for k in near_runs
    }
    answers = {}
    for _ in range(rounds):  # interleaved, so load drifts hit every engine alike
        for runs, prefix in ((pair_runs, "pairs"), (near_runs, "nearest")):
            for engine, run in runs.items():
                start = time.perf_counter()
                answers[f"{prefix} {engine}"] = run()
                times[f"{prefix} {engine}"].append(time.perf_counter() - start)
    oracle = answers["pairs plain SciPy"]
    for engine in ("cch", "scipy"):
        same(as_matrix(answers[f"pairs {engine}"], ORIGINS, DESTINATIONS), oracle, f"{name} pairs {engine}")
    same(answers["pairs igraph"], oracle, f"{name} pairs igraph")
    for engine in ("cch", "scipy"):
        got = (
            answers[f"nearest {engine}"]
            .set_index("origin_id")
            .loc[[f"o{i}" for i in range(ORIGINS)], "minutes"]
        )
        same(got.to_numpy()[:, None], answers["nearest plain SciPy"][:, None], f"{name} nearest {engine}")
    median = {k: statistics.median(v) for k, v in times.items()}
    return build, median, int(np.isfinite(oracle).sum())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(
        f"{ORIGINS} origins x {DESTINATIONS} destinations, pairs within {CUTOFF:g} min; median of {args.rounds}"
    )
    rows = []
    for name, network in graphs():
        build, median, kept = measure(name, network, args.rounds)
        rows.append((name, network.n_nodes, build, median, kept))
    print(
        f"\n{'graph':<14} {'nodes':>8} {'build s':>7} {'pairs':>7} | {'cch s':>7} {'scipy s':>7} {'plain s':>7} "
        f"{'igraph s':>8} | {'x scipy':>7} {'x plain':>7} {'x igraph':>8} | nearest {'cch s':>6} {'scipy s':>7} "
        f"{'plain s':>7} {'x plain':>7}"
    )
    for name, nodes, build, m, kept in rows:
        cch = m["pairs cch"]
        print(
            f"{name:<14} {nodes:>8,} {build:>7.2f} {kept:>7,} | {cch:>7.4f} {m['pairs scipy']:>7.3f} "
            f"{m['pairs plain SciPy']:>7.3f} {m['pairs igraph']:>8.3f} | {m['pairs scipy'] / cch:>6.0f}x "
            f"{m['pairs plain SciPy'] / cch:>6.0f}x {m['pairs igraph'] / cch:>7.0f}x | {m['nearest cch']:>13.4f} "
            f"{m['nearest scipy']:>7.3f} {m['nearest plain SciPy']:>7.3f} {m['nearest plain SciPy'] / m['nearest cch']:>6.1f}x"
        )


if __name__ == "__main__":
    main()
