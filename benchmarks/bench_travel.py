"""Benchmark the travel-time engine against NetworkX and igraph on the same graphs and queries.

Query: minutes from every origin to every destination (no cutoff), as a long table, on the real
Rutland drive network and on generated square grids of about 10k, 100k and 1M nodes (random
edge times, both directions). Every engine's answers are checked against ours. NetworkX is run on
a few destinations on the larger grids and its time scaled to all of them (said in the output).
Peak memory is the rise of the process's resident size during the query above its size before it
(Linux: the peak is reset through /proc/self/clear_refs), each engine in a fresh process; for our
engine it includes the forked workers' own peaks. Then the nearest-service search is timed for growing numbers of origins.

Run:  .venv/bin/python benchmarks/bench_travel.py [--sizes 10000 100000 1000000]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time
from pathlib import Path

import numpy as np

ORIGINS = 1000
DESTINATIONS = 50


def grid_network(n_nodes: int, seed: int = 0):
    from nearcare.network import Network

    side = round(n_nodes**0.5)
    rng = np.random.default_rng(seed)
    index = np.arange(side * side).reshape(side, side)
    right = np.column_stack([index[:, :-1].ravel(), index[:, 1:].ravel()])
    down = np.column_stack([index[:-1, :].ravel(), index[1:, :].ravel()])
    pairs = np.vstack([right, down])
    source = np.concatenate([pairs[:, 0], pairs[:, 1]]).astype(np.int32)
    target = np.concatenate([pairs[:, 1], pairs[:, 0]]).astype(np.int32)
    length = rng.uniform(50, 150, len(source))
    minutes = length / rng.uniform(200, 1000, len(source))  # 12-60 km/h
    y, x = np.divmod(np.arange(side * side), side)
    return Network("drive", np.arange(side * side), x * 100.0, y * 100.0, source, target, length, minutes)


def rutland_network():
    from nearcare.bundle import bundle_dir
    from nearcare.network import read_network

    return read_network(bundle_dir() / "rutland-latest.osm.pbf", "drive")


def make_graph(spec):
    return rutland_network() if spec == "rutland" else grid_network(spec)


def query_nodes(network, seed=1):
    rng = np.random.default_rng(seed)
    origins = rng.choice(network.n_nodes, min(ORIGINS, network.n_nodes), replace=False)
    destinations = rng.choice(network.n_nodes, DESTINATIONS, replace=False)
    return origins, destinations


def snapped_at_nodes(nodes, prefix):
    import pandas as pd

    from nearcare.network.search import Snapped

    count = len(nodes)
    return Snapped(
        np.array([f"{prefix}{i}" for i in range(count)]),
        np.zeros(count),
        np.arange(count),
        np.asarray(nodes, np.int64),
        np.zeros(count),
        np.zeros(count),
        pd.DataFrame(columns=["point_id", "snap_m"]),
    )


def _status_kb(field: str, pid: str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> int:
    """Reset this process's peak resident size to its current size; return that size (kB)."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_kb("VmRSS")


def _children_peak_kb() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss


def run_engine(engine, spec, destinations_used, queue, distances=False):
    network = make_graph(spec)
    origins, destinations = query_nodes(network)
    destinations = destinations[:destinations_used]
    if engine == "networkx":
        import networkx as nx

        graph = nx.DiGraph()
        graph.add_weighted_edges_from(
            zip(network.target.tolist(), network.source.tolist(), network.minutes.tolist(), strict=True)
        )
    elif engine == "igraph":
        import igraph as ig

        graph = ig.Graph(
            n=network.n_nodes, edges=np.column_stack([network.source, network.target]).tolist(), directed=True
        )
        graph.es["w"] = network.minutes.tolist()
    else:
        from nearcare.network.search import pairs_within

        snapped_origins, snapped_sites = snapped_at_nodes(origins, "o"), snapped_at_nodes(destinations, "d")
    base = _reset_peak()
    start = time.perf_counter()
    if engine == "nearcare":
        pairs = pairs_within(network, snapped_origins, snapped_sites, np.inf, distances=distances)
    elif engine == "networkx":
        matrix = np.empty((len(origins), len(destinations)))
        for j, dest in enumerate(destinations):  # one search per destination on the reversed graph
            reach = nx.single_source_dijkstra_path_length(graph, int(dest), weight="weight")
            matrix[:, j] = [reach.get(int(o), np.inf) for o in origins]
    else:
        matrix = np.array(
            graph.distances(source=destinations.tolist(), target=origins.tolist(), weights="w", mode="in")
        ).T
    elapsed = time.perf_counter() - start
    # Forked workers share the parent's pages; count each worker's peak above that shared base.
    peak_mb = (_status_kb("VmHWM") - base + max(0, _children_peak_kb() - base)) / 1024
    if engine == "nearcare":  # the long table as a matrix, for the cross-check (not timed)
        o = pairs["origin_id"].str[1:].astype(int).to_numpy()
        d = pairs["destination_id"].str[1:].astype(int).to_numpy()
        matrix = np.full((len(origins), len(destinations)), np.inf)
        matrix[o, d] = pairs["minutes"].to_numpy()
    queue.put((elapsed, peak_mb, matrix))


def measure(engine, spec, destinations_used=DESTINATIONS, distances=False):
    context = mp.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=run_engine, args=(engine, spec, destinations_used, queue, distances))
    process.start()
    result = queue.get()
    process.join()
    return result


def nearest_flatness(spec):
    from nearcare.network.search import nearest

    network = make_graph(spec)
    rng = np.random.default_rng(2)
    sites = snapped_at_nodes(rng.choice(network.n_nodes, DESTINATIONS, replace=False), "d")
    rows = []
    for count in sorted({100, 1_000, 10_000, min(100_000, network.n_nodes)}):
        origins = snapped_at_nodes(rng.choice(network.n_nodes, count, replace=False), "o")
        start = time.perf_counter()
        nearest(network, origins, sites)
        rows.append((count, time.perf_counter() - start))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", nargs="*", type=int, default=[10_000, 100_000, 1_000_000])
    parser.add_argument(
        "--networkx-destinations",
        type=int,
        default=None,
        help="destinations NetworkX runs on grids of 100k nodes or more (default 5; all on smaller)",
    )
    args = parser.parse_args()
    print(
        f"query: {ORIGINS} origins x {DESTINATIONS} destinations, minutes, no cutoff (as igraph and NetworkX "
        "answer it); 'with m' adds the length of each quickest path, which they do not give"
    )
    print(
        f"{'network':>10} {'nodes':>9} {'nearcare s':>10} {'MB':>6} {'with m s':>9} {'igraph s':>9} {'MB':>6} "
        f"{'networkx s':>11} {'vs igraph':>9} {'vs networkx':>11}"
    )
    for spec in ["rutland", *args.sizes]:
        nodes = make_graph(spec).n_nodes
        ours, our_mb, ours_matrix = measure("nearcare", spec)
        with_metres, _, _ = measure("nearcare", spec, distances=True)
        theirs, ig_mb, ig_matrix = measure("igraph", spec)
        assert np.allclose(ours_matrix, ig_matrix, rtol=0, atol=1e-6), "igraph disagrees"
        used = args.networkx_destinations or (5 if nodes >= 100_000 else DESTINATIONS)
        nx_time, _, nx_matrix = measure("networkx", spec, used)
        assert np.allclose(ours_matrix[:, :used], nx_matrix, rtol=0, atol=1e-6), "networkx disagrees"
        nx_scaled = nx_time * DESTINATIONS / used
        note = "" if used == DESTINATIONS else f" (NetworkX on {used} destinations, scaled)"
        print(
            f"{spec!s:>10} {nodes:>9,} {ours:>10.3f} {our_mb:>6.0f} {with_metres:>9.3f} {theirs:>9.3f} {ig_mb:>6.0f} "
            f"{nx_scaled:>11.2f} "
            f"{theirs / ours:>8.1f}x {nx_scaled / ours:>10.1f}x{note}"
        )
    spec = max(args.sizes) if args.sizes else "rutland"
    print(
        f"\nnearest service ({DESTINATIONS} sites, one search) on the {spec} network, by number of origins:"
    )
    for count, seconds in nearest_flatness(spec):
        print(f"  {count:>7,} origins: {seconds:.3f} s")


if __name__ == "__main__":
    main()
