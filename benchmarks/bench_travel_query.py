"""Benchmark the travel-time engine on the query it is really asked: many-to-many within a cutoff.

Shapes (``--shapes``): 500 origins x 200 destinations (random nodes, seeded): pairs within 30
minutes and the nearest destination of each origin (no cutoff); and 33,755 x 6,300 (England's
LSOAs and GP practices): the nearest only (a pair table of that shape is bench_network_scale's
projection). Graphs (``--graphs``): the Rutland walk and drive networks (bundled extract), a
generated grid of 100,000 nodes (random edge times, both directions; see bench_travel.py), and
road-like drive networks of 1M and 4M nodes (``road1m``, ``road4m``: bench_network_scale.py's
generator, written as .pbf into ``--cache`` and read through ``read_network``). Engines, on the
same graph and nodes:
- nearcare default: ``pairs_within`` as users call it (no engine named: the hierarchy, built here,
  unless a large query's timed sample says SciPy is faster);
- nearcare cch: ``pairs_within``/``nearest`` with ``engine="cch"`` (query; the one-off hierarchy
  build is timed apart and kept on the network);
- nearcare scipy: the same calls with ``engine="scipy"``;
- plain SciPy: ``dijkstra(limit=30)`` from the destinations on the reversed matrix (nearest:
  ``min_only=True`` from all of them), built before timing;
- igraph: ``distances`` from the destinations (it has no cutoff; pairs filtered after), 500 x 200
  on graphs under 1M nodes (its edge list is built from Python lists).
Every engine's pairs and minutes are checked against plain SciPy's (same pairs; minutes to 1e-9
relative), and every nearest time likewise. Times are the median of interleaved rounds; ratio =
peer time / nearcare default's time. Peak memory: the rise of the process's peak resident size during the
nearest search (Linux: /proc/self/clear_refs), nearcare's engines only.

Run (on an otherwise idle machine):
  .venv/bin/python benchmarks/bench_travel_query.py [--rounds 3] [--graphs rutland grid road1m road4m]
      [--shapes 500x200 33755x6300] [--no-cch-nearest]
(``--no-cch-nearest``: the hierarchy's nearest for 33,755 x 6,300 on a grid-like graph of 1M nodes
takes most of an hour a round.)
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
from pathlib import Path

import numpy as np

from bench_travel import grid_network, snapped_at_nodes

CUTOFF = 30.0
IGRAPH_UP_TO = 1_000_000  # nodes: igraph's graph is built from Python lists


def graphs(names: list[str], cache: Path):
    from nearcare.bundle import bundle_dir
    from nearcare.network import read_network

    pbf = bundle_dir() / "rutland-latest.osm.pbf"
    if "rutland" in names:
        yield "Rutland walk", read_network(pbf, "walk")
        yield "Rutland drive", read_network(pbf, "drive")
    if "grid" in names:
        yield "grid 100k", grid_network(100_000)
    for name, size in (("road1m", 1_000_000), ("road4m", 4_000_000)):
        if name in names:
            from bench_network_scale import write_road_pbf

            road = cache / f"road2-{size}.osm.pbf"  # the file bench_network_scale.py writes and reuses
            if not road.exists():
                write_road_pbf(size, road)
            yield f"road {size // 1_000_000}M", read_network(road, "drive")


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def peak_rise_mb(run):
    """``run()``'s result and the rise of peak resident memory during it, MB."""
    Path("/proc/self/clear_refs").write_text("5")
    base = _status_kb("VmRSS")
    result = run()
    return result, (_status_kb("VmHWM") - base) / 1024


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


def measure(name, network, rounds, n_origins, n_destinations, cch_nearest=True):
    """Times by engine (median), peak memory of the nearest search, pairs kept and the hierarchy's
    build time, for one graph and shape; answers checked against plain SciPy."""
    import igraph as ig
    from scipy.sparse.csgraph import dijkstra

    from nearcare.network import hierarchy
    from nearcare.network.search import nearest, pairs_within

    rng = np.random.default_rng(1)
    o_nodes = rng.choice(network.n_nodes, n_origins, replace=n_origins > network.n_nodes)
    d_nodes = rng.choice(network.n_nodes, n_destinations, replace=False)
    origins, sites = snapped_at_nodes(o_nodes, "o"), snapped_at_nodes(d_nodes, "d")
    start = time.perf_counter()
    hierarchy.customised(network)
    build = time.perf_counter() - start
    made = network.cache["cch"]  # what the README's "a metric takes ... s and ... MB" reads
    print(
        f"{name}: a metric customised in {made.customise_seconds:.2f} s, "
        f"{made.metric_bytes / 1e6:.0f} MB (resident memory it added, at least "
        f"{hierarchy._METRIC_BYTES_PER_NODE} bytes a node)",
        flush=True,
    )
    reverse = network.matrix("minutes", reverse=True)
    with_pairs = n_origins * n_destinations <= 500 * 200  # a bigger pair table: bench_network_scale

    def plain_scipy():
        return dijkstra(reverse, indices=d_nodes, limit=CUTOFF)[:, o_nodes].T

    pair_runs = {}
    if with_pairs:
        pair_runs = {
            "default": lambda: pairs_within(network, origins, sites, CUTOFF, distances=False),
            "cch": lambda: pairs_within(network, origins, sites, CUTOFF, distances=False, engine="cch"),
            "scipy": lambda: pairs_within(network, origins, sites, CUTOFF, distances=False, engine="scipy"),
            "plain SciPy": plain_scipy,
        }
        if network.n_nodes < IGRAPH_UP_TO:
            graph = ig.Graph(
                n=network.n_nodes,
                edges=np.column_stack([network.source, network.target]).tolist(),
                directed=True,
            )
            graph.es["w"] = network.minutes.tolist()

            def igraph_pairs():
                m = np.array(
                    graph.distances(source=d_nodes.tolist(), target=o_nodes.tolist(), weights="w", mode="in")
                ).T
                m[m > CUTOFF] = np.inf
                return m

            pair_runs["igraph"] = igraph_pairs
    near_runs = {
        "cch": lambda: nearest(network, origins, sites, distances=False, engine="cch"),
        "scipy": lambda: nearest(network, origins, sites, distances=False, engine="scipy"),
        "plain SciPy": lambda: dijkstra(reverse, indices=d_nodes, min_only=True)[o_nodes],
    }
    if not cch_nearest:
        del near_runs["cch"]
    times: dict[str, list[float]] = {f"pairs {k}": [] for k in pair_runs} | {
        f"nearest {k}": [] for k in near_runs
    }
    memory: dict[str, float] = {}
    answers = {}
    for _ in range(rounds):  # interleaved, so load drifts hit every engine alike
        for runs, prefix in ((pair_runs, "pairs"), (near_runs, "nearest")):
            for engine, run in runs.items():
                start = time.perf_counter()
                answers[f"{prefix} {engine}"], rise = peak_rise_mb(run)
                times[f"{prefix} {engine}"].append(time.perf_counter() - start)
                memory[f"{prefix} {engine}"] = max(memory.get(f"{prefix} {engine}", 0.0), rise)
    kept = 0
    if with_pairs:
        oracle = answers["pairs plain SciPy"]
        for engine in pair_runs:
            if engine != "plain SciPy":
                got = answers[f"pairs {engine}"]
                got = got if engine == "igraph" else as_matrix(got, n_origins, n_destinations)
                same(got, oracle, f"{name} pairs {engine}")
        kept = int(np.isfinite(oracle).sum())
    for engine in [e for e in ("cch", "scipy") if e in near_runs]:
        got = (
            answers[f"nearest {engine}"]
            .set_index("origin_id")
            .loc[[f"o{i}" for i in range(n_origins)], "minutes"]
        )
        same(got.to_numpy()[:, None], answers["nearest plain SciPy"][:, None], f"{name} nearest {engine}")
    median = {k: statistics.median(v) for k, v in times.items()}
    return build, median, memory, kept


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--graphs", nargs="+", default=["rutland", "grid"], help="rutland grid road1m road4m")
    parser.add_argument(
        "--shapes", nargs="+", default=["500x200"], help="origins x destinations, e.g. 33755x6300"
    )
    parser.add_argument("--cache", type=Path, default=Path("/tmp/nearcare-bench"))
    parser.add_argument(
        "--no-cch-nearest",
        action="store_true",
        help="skip the hierarchy's nearest (on grid-like graphs of 1M nodes, 33,755 x 6,300 takes most of an hour)",
    )
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    # The default engine's choice on a large query, with both estimates (nearcare's log line).
    choices = logging.StreamHandler()
    choices.addFilter(lambda record: record.getMessage().startswith("engine:"))
    logging.getLogger("nearcare").addHandler(choices)
    logging.getLogger("nearcare").setLevel(logging.INFO)
    shapes = [tuple(int(v) for v in shape.split("x")) for shape in args.shapes]
    print(
        f"pairs within {CUTOFF:g} min (500 x 200 and smaller); nearest for every shape; median of {args.rounds}"
    )
    header = (
        f"{'graph':<14} {'nodes':>10} {'shape':>11} {'build s':>7} {'pairs':>7} | {'default s':>9} {'cch s':>7} "
        f"{'scipy s':>7} {'plain s':>7} {'igraph s':>8} | {'plain/def':>9} {'igraph/def':>10} | nearest {'cch s':>6} "
        f"{'scipy s':>7} {'plain s':>7} {'plain/best':>10} {'cch MB':>7} {'scipy MB':>8}"
    )
    rows = []
    for name, network in graphs(args.graphs, args.cache):
        for n_origins, n_destinations in shapes:
            build, m, memory, kept = measure(
                name, network, args.rounds, n_origins, n_destinations, not args.no_cch_nearest
            )
            na = float("nan")
            default, cch, plain, igraph = (
                m.get("pairs default", na),
                m.get("pairs cch", na),
                m.get("pairs plain SciPy", na),
                m.get("pairs igraph", na),
            )
            near_cch = m.get("nearest cch", na)
            best = np.nanmin([near_cch, m["nearest scipy"]])
            row = (
                f"{name:<14} {network.n_nodes:>10,} {f'{n_origins}x{n_destinations}':>11} {build:>7.2f} {kept:>7,} | "
                f"{default:>9.4f} {cch:>7.4f} {m.get('pairs scipy', na):>7.3f} {plain:>7.3f} {igraph:>8.3f} | "
                f"{plain / default:>8.1f}x {igraph / default:>9.1f}x | {near_cch:>13.3f} {m['nearest scipy']:>7.3f} "
                f"{m['nearest plain SciPy']:>7.3f} {m['nearest plain SciPy'] / best:>9.2f}x "
                f"{memory.get('nearest cch', na):>7.0f} {memory['nearest scipy']:>8.0f}"
            )
            print(row, flush=True)
            rows.append(row)
    print("\n" + header)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
