"""Benchmark the network at England scale (#20): build, snapping, bounded searches, nearest, pair table.

No download: a road-like drive network is generated and written as an OSM ``.pbf`` (kept in
``--cache``), so the build is measured through ``read_network`` like a real extract. The network
is a jittered grid at England's drive-network density (about 25M nodes over 130,000 km2: a node
every 72 m), cut into ways of 4-30 nodes with 15% of them left out (dead ends, gaps); every 5th
row and column is a tertiary road (45 km/h), every 40th a secondary (55), every 100th a primary
(65), every 250th a trunk road (80) and every 1000th (72 km) a two-way motorway (100), the rest
residential (30 km/h): about 1 km of A road per 3.6 km2, near England's 1 per 4.3.

Measured, each as wall time and the rise of the process's peak resident size above its size before
the step (Linux: the peak is reset through /proc/self/clear_refs; osmium's and SciPy's memory
included):
- build: ``read_network(pbf, "drive")``;
- snapping 33,755 points (LSOA-like origins, scattered up to 300 m off the nodes), the first call
  (which builds the network's index) and then 6,300 sites (which reuses it);
- one bounded 30-minute search: ``pairs_within`` from one site to the origins at England's
  density (33,755 per 25M nodes; SciPy, one worker, lengths traced as ``travel-times`` does);
- nearest site for the 33,755 origins from 6,300 sites (one multi-source SciPy search);
- the England pair table: ``pairs_within`` to ``--sites`` sites, its time per site projected to
  6,300 GP practices on 2 cores; once for sites scattered over the graph (each searched on its
  own), and once for the ``--sites`` sites nearest the middle, a patch at England's density of
  practices (6,300 over the graph), which the search takes group by group as it takes England's. A 30-minute search reaches the same area at England's density
  whatever the graph's size, so the per-site time carries over once the graph is larger than
  the search's reach.
With ``--compare-whole``, the searches are timed again on the whole graph (the pre-#20 shape), by
setting ``search._REGION_SHARE = 0``.

Run:  .venv/bin/python benchmarks/bench_network_scale.py [--sizes 1000000 4000000] [--england]
(``--england`` adds 25M nodes: about 10-20 GB and an hour on a shared machine.)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

SPACING_M = 72.0
ORIGINS, SITES, CUTOFF = 33_755, 6_300, 30.0
ENGLAND_SITES = 6_300
CORES = 2


def write_road_pbf(n_nodes: int, path: Path, seed: int = 0, other_nodes: int = 0) -> None:
    """A road-like drive network of about ``n_nodes`` nodes as an OSM .pbf (see the module notes).

    ``other_nodes`` adds that many nodes per road node that no highway references (as buildings'
    outlines are in a real extract), next to it in id and within 30 m of it.
    """
    import osmium
    from pyproj import Transformer

    side = round(n_nodes**0.5)
    rng = np.random.default_rng(seed)
    y, x = np.divmod(np.arange(side * side), side)
    easting = 300_000 + x * SPACING_M + rng.uniform(-20, 20, side * side)
    northing = 150_000 + y * SPACING_M + rng.uniform(-20, 20, side * side)
    lon, lat = Transformer.from_crs(27700, 4326, always_xy=True).transform(easting, northing)
    index = np.arange(side * side).reshape(side, side)
    tmp = path.with_suffix(".tmp.pbf")
    tmp.unlink(missing_ok=True)
    writer = osmium.SimpleWriter(str(tmp))
    try:
        stride = other_nodes + 1  # road node i is id i * stride + 1, its neighbours the ids after it
        jitter = rng.uniform(-0.0003, 0.0003, (other_nodes, 2))
        for i in range(side * side):
            at = (float(lon[i]), float(lat[i]))
            writer.add_node(osmium.osm.mutable.Node(id=i * stride + 1, location=at))
            for j in range(other_nodes):
                near = (at[0] + jitter[j, 0], at[1] + jitter[j, 1])
                writer.add_node(osmium.osm.mutable.Node(id=i * stride + 2 + j, location=near))
        way_id = 1
        for lines in (index, index.T):  # rows, then columns
            for r, line in enumerate(lines):
                if r % 1000 == 500:
                    tags = {"highway": "motorway", "oneway": "no"}
                elif r % 250 == 125:
                    tags = {"highway": "trunk"}
                elif r % 100 == 50:
                    tags = {"highway": "primary"}
                elif r % 40 == 20:
                    tags = {"highway": "secondary"}
                elif r % 10 == 5:
                    tags = {"highway": "tertiary"}
                else:
                    tags = {"highway": "residential"}
                start = 0
                while start < side - 1:
                    stop = min(side, start + int(rng.integers(4, 31)))
                    if rng.random() >= 0.15:
                        refs = [int(v) * stride + 1 for v in line[start:stop]]
                        writer.add_way(osmium.osm.mutable.Way(id=way_id, nodes=refs, tags=tags))
                        way_id += 1
                    start = stop - 1
    finally:
        writer.close()
    tmp.rename(path)


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def measured(what: str, run, rows: list):
    """Run ``run()``; record its wall time and peak memory rise; return its result."""
    Path("/proc/self/clear_refs").write_text("5")
    base = _status_kb("VmRSS")
    start = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - start
    peak_mb = (_status_kb("VmHWM") - base) / 1024
    rows.append((what, seconds, peak_mb))
    print(f"  {what:<58} {seconds:9.2f} s  {peak_mb:8.0f} MB", flush=True)
    return result


def scattered(network, count: int, seed: int, prefix: str):
    from nearcare.network.search import Points

    rng = np.random.default_rng(seed)
    nodes = rng.choice(network.n_nodes, count, replace=False)
    return Points(
        np.array([f"{prefix}{i}" for i in range(count)]),
        network.easting[nodes] + rng.uniform(-300, 300, count),
        network.northing[nodes] + rng.uniform(-300, 300, count),
    )


def run(
    size: int,
    cache: Path,
    sites_for_table: int,
    compare_whole: bool,
    cutoff: float = CUTOFF,
    other_nodes: int = 0,
) -> list:
    from nearcare.network import read_network
    from nearcare.network import search as search_module
    from nearcare.network.search import nearest, pairs_within, snap

    pbf = cache / (f"road2-{size}.osm.pbf" if not other_nodes else f"road2-{size}-other{other_nodes}.osm.pbf")
    if not pbf.exists():
        start = time.perf_counter()
        write_road_pbf(size, pbf, other_nodes=other_nodes)
        print(f"  (wrote {pbf.name} in {time.perf_counter() - start:.0f} s)")
    rows: list = []
    network = measured("build read_network(drive)", lambda: read_network(pbf, "drive"), rows)
    print(f"  {network.n_nodes:,} nodes, {len(network.source):,} edges")
    origin_points = scattered(network, ORIGINS, 1, "o")
    site_points = scattered(network, SITES, 2, "s")
    origins = measured(
        f"snap {ORIGINS:,} origins (first call)", lambda: snap(network, origin_points, side="origin"), rows
    )
    sites = measured(
        f"snap {SITES:,} sites (index kept)", lambda: snap(network, site_points, side="destination"), rows
    )

    measured(
        f"nearest of {SITES:,} sites for {ORIGINS:,} origins",
        lambda: nearest(network, origins, sites, engine="scipy"),
        rows,
    )

    def first(snapped, k: int):
        """The first ``k`` snapped points (they are scattered at random, so spread evenly)."""
        from nearcare.network.search import Snapped

        keep = snapped.point < k
        return Snapped(
            snapped.ids[:k],
            snapped.snap_m[:k],
            snapped.point[keep],
            snapped.node[keep],
            snapped.extra_minutes[keep],
            snapped.extra_m[keep],
            snapped.unsnapped,
        )

    def one_site(k: int):
        return first(sites, k)

    def neighbouring_sites(k: int):
        """The ``k`` sites nearest the middle of the graph: a patch at England's density of GP
        practices (6,300 over the graph), as the England table searches them, group by group."""
        from nearcare.network.search import Snapped

        assert len(sites.ids) == len(site_points.ids)  # every site snapped: positions agree
        x, y = site_points.easting, site_points.northing
        chosen = np.argsort(np.hypot(x - x.mean(), y - y.mean()))[:k]
        keep = np.isin(sites.point, chosen)
        renumber = np.full(len(sites.ids), -1)
        renumber[chosen] = np.arange(k)
        return Snapped(
            sites.ids[chosen],
            sites.snap_m[chosen],
            renumber[sites.point[keep]],
            sites.node[keep],
            sites.extra_minutes[keep],
            sites.extra_m[keep],
            sites.unsnapped,
        )

    # Searches and the pair table use origins at England's density: 33,755 over 25M nodes.
    at_density = max(1, round(ORIGINS * network.n_nodes / 25_000_000))
    dense_origins = first(origins, at_density)

    measured(
        "search structures (matrix, reach grid; once a network)",
        lambda: pairs_within(network, dense_origins, one_site(1), 1.0, engine="scipy", workers=1),
        rows,
    )
    shapes = [("sub-graph", None)]
    if compare_whole and hasattr(search_module, "_REGION_SHARE"):
        shapes.append(("whole graph", 0.0))
    for label, share in shapes:
        old = getattr(search_module, "_REGION_SHARE", None)
        if share is not None:
            search_module._REGION_SHARE = share
        try:
            single = one_site(1)
            found = measured(
                f"one {cutoff:.0f}-min search, 1 site x {at_density:,} origins ({label})",
                lambda s=single: pairs_within(network, dense_origins, s, cutoff, engine="scipy", workers=1),
                rows,
            )
            print(f"    {len(found):,} origins within {cutoff:.0f} min")
            table_sites = one_site(sites_for_table)
            start = time.perf_counter()
            pairs = measured(
                f"pair table, {sites_for_table} sites x {at_density:,} origins ({label})",
                lambda t=table_sites: pairs_within(
                    network, dense_origins, t, cutoff, engine="scipy", workers=1
                ),
                rows,
            )
            per_site = (time.perf_counter() - start) / sites_for_table
            projected_min = per_site * ENGLAND_SITES / CORES / 60
            print(
                f"    {len(pairs):,} pairs; {per_site * 1000:.0f} ms a site: England, {ENGLAND_SITES:,} "
                f"practices on {CORES} cores, about {projected_min:.0f} min"
            )
            rows.append((f"projected England pair table ({label})", projected_min * 60, float("nan")))
            patch = neighbouring_sites(sites_for_table)
            start = time.perf_counter()
            pairs = measured(
                f"pair table, {sites_for_table} neighbouring sites x {at_density:,} origins ({label})",
                lambda t=patch: pairs_within(network, dense_origins, t, cutoff, engine="scipy", workers=1),
                rows,
            )
            per_site = (time.perf_counter() - start) / sites_for_table
            projected_min = per_site * ENGLAND_SITES / CORES / 60
            print(
                f"    {len(pairs):,} pairs; {per_site * 1000:.0f} ms a site: England, {ENGLAND_SITES:,} "
                f"practices on {CORES} cores, about {projected_min:.0f} min (sites searched as neighbours)"
            )
            rows.append(
                (f"projected England pair table, neighbours ({label})", projected_min * 60, float("nan"))
            )
        finally:
            if share is not None:
                search_module._REGION_SHARE = old
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 4_000_000])
    parser.add_argument("--england", action="store_true", help="add 25M nodes (10-20 GB, about an hour)")
    parser.add_argument("--sites", type=int, default=20, help="sites in the timed pair table")
    parser.add_argument("--compare-whole", action="store_true", help="also time searches on the whole graph")
    parser.add_argument("--cutoff", type=float, default=CUTOFF, help="minutes (default 30)")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/nearcare-bench"))
    parser.add_argument(
        "--other-nodes",
        type=int,
        default=0,
        help="nodes on no highway per road node, as in a real extract (England: about 9)",
    )
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    sizes = args.sizes + ([25_000_000] if args.england else [])
    for size in sizes:
        print(f"road-like graph, {size:,} nodes requested", flush=True)
        run(size, args.cache, args.sites, args.compare_whole, args.cutoff, args.other_nodes)


if __name__ == "__main__":
    main()
