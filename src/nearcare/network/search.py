"""Searches between points over a network: snapping, many-to-many within a cutoff, and nearest.

Store-free: a ``Network`` and points (ids with British National Grid coordinates) in, frames of
ids and minutes out. ``nearcare.travel`` runs these for a built area and stores the results.

Points (LSOA centroids, postcodes, sites) snap to the nearest point on the nearest edge and enter
the network at that edge's end nodes, in the directions it allows, with the part of the edge's
length and time. The straight leg between the point and the way is added at both ends: walked at
the walking speed on a walk network; on a drive network driven (x ``DETOUR_FACTOR`` at
``ACCESS_SPEED_KPH``), and a point may also join through the nearest access way (private and
other access-only roads and tracks), whichever is quicker (see nearcare.network). Points farther than
``max_snap_m`` from every way they could join are reported in ``unsnapped``, never joined. Two points on the same edge are routed
through its end nodes (a slight overestimate for neighbours on one street). The nearest edge comes
from one index per network (``SegmentIndex``, kept on the network), built on the first snap and
reused for every kind of point.

Search shapes, by engine (``engine=``; both give the same pairs and minutes, tests/test_engine.py):
- 'cch' (the default for pairs where pyroutingkit is installed and no path lengths are traced):
  the network's customisable contraction hierarchy (network/hierarchy.py), one many-to-many query
  between the distinct origin and destination nodes, in row batches that bound memory; nearest
  (on request only: slower than one SciPy search) is the least network + join time over it.
- 'scipy' (compiled Dijkstra; the fallback and the tests' oracle): nearest is one search from all
  sites at once on the reversed graph, through a virtual node joined to each site's node by its
  snap time, so its cost does not grow with the origins; pairs come from searches bounded by the
  cutoff, run from whichever side needs fewer searches (sites on the reversed graph, or
  origins on the forward graph; where speeds differ, a point's search starts at a virtual node
  joined to both its ways in, one search where its two nodes would take two), in batches that
  bound memory. Where the cutoff's crow-fly reach
  (cutoff x the fastest edge's straight-line speed) is small beside the network, the searches
  from each group of nearby sources run on the sub-graph within that reach (``_Reach``), so that
  their cost follows the area searched, not the network. It alone traces the length of each
  quickest path where speeds differ (drive), walking up the paths to the kept targets only; at
  one speed (walk) length is time x speed.

Where no network is loaded, ``crowfly`` times are straight-line distance times ``DETOUR_FACTOR``
at ``CROWFLY_SPEED_KPH``, always labelled ``mode = 'crowfly'``.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import os
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from nearcare._progress import log, step, steps
from nearcare.network import ACCESS_SPEED_KPH, DETOUR_FACTOR, MINUTES_QUANTUM, Network, hierarchy

MAX_SNAP_M = 1000.0
# Straight-line fallback: DETOUR_FACTOR (nearcare.network) times the straight line. Speeds: the walking
# speed, and an average door-to-door driving speed.
CROWFLY_SPEED_KPH = {"walk": 4.8, "drive": 40.0}
_BATCH_CELLS = 40_000_000  # distances held at once in a bounded search (x 20 bytes)
# Searches x nodes above which the cores share the searches: below it, starting the workers costs
# more than they save (Rutland, 200 searches of 30 min: drive 0.6-0.7 s in one process, 1.0 s
# in two workers; walk 0.07 s against 0.09-0.19 s).
_PARALLEL_WORK = 10_000_000
# A bounded search runs on the sub-graph around its sources where that box covers at most this share
# of the network's box; else on the whole graph (one call, no cutting out). At 4M nodes the two
# took the same time at a share of 0.12 (15 minutes; benchmarks/bench_network_scale.py), the
# sub-graph with far less memory; at England's size a 30-minute box is about 0.03.
_REGION_SHARE = 0.15
# Above this much SciPy work (searches x nodes searched) the default engine is chosen by timing a
# sample of each (``_faster_engine``): which is faster depends on the graph (the hierarchy answered
# 3-4x sooner than SciPy on Rutland's roads, half as fast on a square grid), and at this size a
# sample costs a few per cent. Below it, both answer within a second or so and the hierarchy is used.
_PROBE_WORK = 10_000_000
# The share of SciPy's searches and of the hierarchy's rows timed: at least _PROBE_MIN, so a query of
# fewer than _PROBE_MIN / _PROBE_SHARE searches (where a sample would be much of the work) is not timed.
_PROBE_SHARE = 0.02
_PROBE_MIN = 4
# Timed: that share, but at least this many searches or rows, as a search's cost depends on where it
# starts (100k grid, one at a time: 4 spread searches 9.7 ms each, all 200 11.3 ms); more vary less.
_PROBE_SAMPLE = 10
_PAIR_COLUMNS = {"origin_id": object, "destination_id": object, "distance_m": float, "minutes": float}


@dataclass
class Points:
    """Places to route from or to: an id and British National Grid coordinates (metres)."""

    ids: np.ndarray
    easting: np.ndarray
    northing: np.ndarray

    @classmethod
    def from_frame(
        cls, frame: pd.DataFrame, id_column: str, x: str = "easting", y: str = "northing"
    ) -> Points:
        located = frame[np.isfinite(frame[x].to_numpy(float)) & np.isfinite(frame[y].to_numpy(float))]
        return cls(
            located[id_column].astype(str).to_numpy(), located[x].to_numpy(float), located[y].to_numpy(float)
        )

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class Snapped:
    """Points that reached the network, and how each one joins it.

    A point joins the nearest edge at its nearest point; from there it can reach (as an origin) or
    be reached from (as a destination) the edge's end nodes in the directions the edge allows.
    Each such way in is an *attachment*: a node, and the extra time and distance between the point
    and that node (the straight walk to the edge at walking speed, plus the part of the edge).
    """

    ids: np.ndarray  # one per snapped point
    snap_m: np.ndarray  # straight distance from each point to the network
    point: np.ndarray  # per attachment: index into ids
    node: np.ndarray  # per attachment: the network node
    extra_minutes: np.ndarray
    extra_m: np.ndarray
    unsnapped: pd.DataFrame  # point_id, snap_m: too far from the network

    def only(self, keep_point: np.ndarray, node_map: np.ndarray | None = None) -> Snapped:
        """The points in ``keep_point`` (a mask), renumbered; with ``node_map`` (old node to new, -1:
        gone), their ways in at nodes of a sub-network."""
        new_node = self.node if node_map is None else node_map[self.node]
        keep_att = keep_point[self.point] & (new_node >= 0)
        points = np.flatnonzero(keep_point)
        point_map = np.full(len(self.ids), -1)
        point_map[points] = np.arange(len(points))
        return Snapped(
            ids=self.ids[points],
            snap_m=self.snap_m[points],
            point=point_map[self.point[keep_att]],
            node=new_node[keep_att],
            extra_minutes=self.extra_minutes[keep_att],
            extra_m=self.extra_m[keep_att],
            unsnapped=self.unsnapped.iloc[:0],
        )


def _off_network(network: Network, straight_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(minutes, metres) of the straight leg between a point and the way it joins (see nearcare.network)."""
    if network.mode == "drive":
        metres = straight_m * DETOUR_FACTOR
        return metres / (ACCESS_SPEED_KPH * 1000 / 60), metres
    return straight_m / (network.walk_speed_kph * 1000 / 60), straight_m


class SegmentIndex:
    """The nearest of a set of straight segments (network edges) to each point, exactly.

    A k-d tree over the midpoints of pieces at most ``PIECE_M`` long, built once per network and
    kept on it (``Network.cache``): about 36 bytes a piece, and no geometry objects. The nearest
    midpoint is at distance ``m`` from a point; the nearest segment is then no farther than ``m``,
    so its nearest point lies within half a piece of a midpoint inside ``m + PIECE_M / 2``: every
    segment with a piece there is measured exactly, and the nearest taken (the lowest index of
    equally near ones).
    """

    PIECE_M = 100.0

    def __init__(self, easting: np.ndarray, northing: np.ndarray, u: np.ndarray, v: np.ndarray) -> None:
        self.easting, self.northing = easting, northing  # the network's own arrays, not copies
        self.u, self.v = u, v
        pieces = np.empty(len(u), np.int32)
        half_piece_m = 0.0
        # Worked out a block of segments at a time, so that the temporaries stay small beside the
        # index (England's drive network: about 42 million segments).
        for block in self._blocks(len(u)):
            length = self._length(block)
            pieces[block] = np.maximum(np.ceil(length / self.PIECE_M), 1)
            half_piece_m = max(half_piece_m, float((length / pieces[block]).max(initial=0.0)) / 2)
        self.half_piece_m = half_piece_m
        self.segment_of_piece = np.repeat(np.arange(len(u), dtype=np.int32), pieces)
        middle = np.empty((len(self.segment_of_piece), 2))
        first = np.cumsum(pieces, dtype=np.int32 if len(self.segment_of_piece) < 2**31 else np.int64)
        np.subtract(first, pieces, out=first)
        for block in self._blocks(len(u)):
            at = slice(first[block.start], first[block.stop - 1] + pieces[block.stop - 1])  # its pieces
            seg = self.segment_of_piece[at]
            count = pieces[seg]
            share = (np.arange(at.start, at.stop) - first[seg] + 0.5) / count
            a, b = u[seg], v[seg]
            middle[at, 0] = easting[a] + share * (easting[b] - easting[a])
            middle[at, 1] = northing[a] + share * (northing[b] - northing[a])
        del first, pieces
        # Leaves of 64 pieces: a quarter of the tree's nodes at 16 (-360 MB for England's drive
        # network), and a query no slower (0.4 s for 33,755 points there).
        self.tree = cKDTree(middle, leafsize=64, balanced_tree=False, compact_nodes=False, copy_data=False)

    _BLOCK = 2_000_000

    @classmethod
    def _blocks(cls, count: int):
        return (slice(i, min(i + cls._BLOCK, count)) for i in range(0, count, cls._BLOCK))

    def _length(self, block: slice) -> np.ndarray:
        u, v = self.u[block], self.v[block]
        return np.hypot(self.easting[v] - self.easting[u], self.northing[v] - self.northing[u])

    def nearest(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(point index, segment index, distance m, fraction along u->v) for every point, by point."""
        if len(x) == 0 or len(self.u) == 0:
            empty = np.zeros(0)
            return empty.astype(np.int64), empty.astype(np.int64), empty, empty
        xy = np.column_stack([x, y])
        to_middle, _ = self.tree.query(xy)
        # A hair over the bound, for rounding in the tree's distances.
        reach = to_middle + self.half_piece_m + 1e-6 * (1 + to_middle)
        found = self.tree.query_ball_point(xy, reach)
        counts = np.fromiter((len(f) for f in found), np.int64, len(found))
        piece = np.fromiter((p for f in found for p in f), np.int64, int(counts.sum()))
        point = np.repeat(np.arange(len(x)), counts)
        segment = self.segment_of_piece[piece].astype(np.int64)
        distance, fraction = self._measure(segment, x[point], y[point])
        # Per point, the nearest segment (lowest index among equals).
        order = np.lexsort((segment, distance, point))
        best = order[np.r_[True, point[order][1:] != point[order][:-1]]]
        return point[best], segment[best], distance[best], fraction[best]

    def _measure(self, segment, x, y):
        """Distance (m) from each point to its segment, and the fraction along it of the nearest point."""
        ax, ay = self.easting[self.u[segment]], self.northing[self.u[segment]]
        dx, dy = self.easting[self.v[segment]] - ax, self.northing[self.v[segment]] - ay
        squared = dx * dx + dy * dy
        with np.errstate(invalid="ignore", divide="ignore"):
            fraction = np.where(squared > 0, ((x - ax) * dx + (y - ay) * dy) / squared, 0.0)
        fraction = np.clip(fraction, 0.0, 1.0)
        return np.hypot(ax + fraction * dx - x, ay + fraction * dy - y), fraction


def _snap_index(network: Network) -> SegmentIndex:
    """The network's snapping index over its undirected edges (built on first use, then kept)."""
    if "snap" not in network.cache:
        n = network.n_nodes
        # One key per undirected edge, built and sorted in place (one array of edges at a time).
        pairs = np.minimum(network.source, network.target).astype(np.int64)
        pairs *= n
        pairs += np.maximum(network.source, network.target)
        pairs.sort()  # distinct by sort and compare: NumPy's hashing unique is slower here
        pairs = pairs[np.r_[True, pairs[1:] != pairs[:-1]]]
        kind = np.int32 if n < 2**31 else np.int64
        u = (pairs // n).astype(kind)
        pairs %= n
        v = pairs.astype(kind)
        del pairs  # before the index is built beside it
        network.cache["snap"] = SegmentIndex(network.easting, network.northing, u, v)
    return network.cache["snap"]


def _edge_rows(network: Network) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The network's edges by source, as (row starts, targets in row order, the order that sorts the
    edges, or None where they are sorted already). Built once and kept.

    ``read_network`` leaves edges sorted by source then target, so usually only the row starts are
    new (8 bytes a node), not keys and an ordering of every edge.
    """
    if "edge-rows" not in network.cache:
        source, target = network.source, network.target
        order = None if _sorted_edges(source, target) else np.lexsort((target, source))
        if order is not None:
            source, target = source[order], target[order]
        # Row starts by searching the sorted sources (bincount would copy them all to int64 first).
        indptr = np.searchsorted(source, np.arange(network.n_nodes + 1, dtype=source.dtype))
        if len(source) < 2**31:
            indptr = indptr.astype(np.int32)
        network.cache["edge-rows"] = (indptr, target, order)
    return network.cache["edge-rows"]


def _sorted_edges(source: np.ndarray, target: np.ndarray, block: int = 2_000_000) -> bool:
    """Whether edges are sorted by source, then target, without repeats (checked a block at a time)."""
    for first in range(0, max(len(source) - 1, 0), block):
        s, t = source[first : first + block + 1], target[first : first + block + 1]
        if (s[1:] < s[:-1]).any() or ((s[1:] == s[:-1]) & (t[1:] <= t[:-1])).any():
            return False
    return True


def _directed_edge(network: Network, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Index of edge a->b in the network's arrays, or -1 where there is none."""
    indptr, target, order = _edge_rows(network)
    position = _edge_position(indptr, target, a, b)
    if order is None:
        return position
    return np.where(position >= 0, order[position], -1)


def snap(network: Network, points: Points, *, side: str, max_snap_m: float = MAX_SNAP_M) -> Snapped:
    """Join each point to the nearest point on the network (``side`` is 'origin' or 'destination').

    On a drive network with access ways, a point may also join through the nearest access way (see
    nearcare.network); each way in is an attachment, and the search keeps the quickest.
    """
    if side not in ("origin", "destination"):
        raise ValueError(side)
    index = _snap_index(network)
    point_index, edge_index, distance, fraction = index.nearest(points.easting, points.northing)
    direct_m = np.full(len(points), np.inf)
    direct_m[point_index] = distance
    near = distance <= max_snap_m
    point_index, edge_index, fraction = point_index[near], edge_index[near], fraction[near]
    u, v = index.u[edge_index], index.v[edge_index]
    uv, vu = _directed_edge(network, u, v), _directed_edge(network, v, u)
    parts = []
    slot = point_index  # attachments are numbered by point here, and renumbered at the end
    # Origin: along u->v the point reaches v after (1 - f) of it; along v->u it reaches u after f.
    # Destination: along u->v it is reached from u after f; along v->u from v after (1 - f).
    if side == "origin":
        ways = ((uv, v, 1 - fraction), (vu, u, fraction))
    else:
        ways = ((uv, u, fraction), (vu, v, 1 - fraction))
    for edge, node, share in ways:
        ok = edge >= 0
        parts.append(
            (
                slot[ok],
                node[ok],
                share[ok] * network.minutes[edge[ok]],
                share[ok] * network.length_m[edge[ok]],
            )
        )
    # A point at an end node joins that node directly, whatever the edge's direction.
    for node, share in ((u, fraction), (v, 1 - fraction)):
        at_end = share * network.length_m[np.maximum(uv, vu)] < 1e-6
        parts.append((slot[at_end], node[at_end], np.zeros(at_end.sum()), np.zeros(at_end.sum())))
    slot_of, node, extra_minutes, extra_m = (np.concatenate(x) for x in zip(*parts, strict=True))
    off_minutes, off_m = _off_network(network, direct_m)
    extra_minutes = extra_minutes + off_minutes[slot_of]
    extra_m = extra_m + off_m[slot_of]
    snap_m = direct_m.copy()
    if network.access is not None and len(points):
        # Access ways are searched within the time of the direct join to the far end of its edge (or,
        # for a point too far for a direct join, the off-network leg of one at ``max_snap_m``).
        budget = np.full(len(points), _off_network(network, np.array([max_snap_m]))[0][0])
        np.maximum.at(budget, slot_of, extra_minutes)
        found = _through_access_ways(network, points, direct_m, budget, max_snap_m)
        if found is not None:
            a_slot, a_node, a_minutes, a_m, a_straight = found
            slot_of, node = np.concatenate([slot_of, a_slot]), np.concatenate([node, a_node])
            extra_minutes, extra_m = (
                np.concatenate([extra_minutes, a_minutes]),
                np.concatenate([extra_m, a_m]),
            )
            np.minimum.at(snap_m, a_slot, a_straight)
    joined = np.unique(slot_of)
    far_points = np.setdiff1d(np.arange(len(points)), joined)
    far = pd.DataFrame({"point_id": points.ids[far_points], "snap_m": direct_m[far_points]})
    return Snapped(
        ids=points.ids[joined],
        snap_m=snap_m[joined],
        point=np.searchsorted(joined, slot_of),
        node=node.astype(np.int64),
        extra_minutes=extra_minutes,
        extra_m=extra_m,
        unsnapped=far,
    )


def _through_access_ways(
    network: Network, points: Points, direct_m: np.ndarray, budget_minutes: np.ndarray, max_snap_m: float
):
    """Ways in through the nearest access way: (point, drive node, minutes, metres, straight metres) arrays.

    A point nearer an access way than any drive edge (by ``direct_m``) goes straight to it (within
    ``max_snap_m``), along it to its end nodes, and through access ways to every gate (a drive
    node) reachable within its budget. A point on or nearest a drive edge never uses access ways,
    so they are never through routes.
    """
    access = network.access
    assert access is not None  # the caller joins through access ways only where the network has them
    if "snap-access" not in network.cache:
        network.cache["snap-access"] = SegmentIndex(
            access.easting, access.northing, access.source, access.target
        )
    point, edge, straight, fraction = network.cache["snap-access"].nearest(points.easting, points.northing)
    off_minutes, off_m = _off_network(network, straight)
    useful = (straight <= max_snap_m) & (straight < direct_m[point]) & (off_minutes < budget_minutes[point])
    point, edge, straight, fraction, off_minutes, off_m = (
        x[useful] for x in (point, edge, straight, fraction, off_minutes, off_m)
    )
    if len(point) == 0:
        return None
    a, b = access.source[edge].astype(np.int64), access.target[edge].astype(np.int64)
    speed = ACCESS_SPEED_KPH * 1000 / 60
    # (point, access node, minutes so far) for both ends of each point's access way.
    ends = np.concatenate([a, b])
    along_m = np.concatenate([fraction, 1 - fraction]) * np.tile(access.length_m[edge], 2)
    owner = np.tile(np.arange(len(point)), 2)
    start_minutes = np.tile(off_minutes, 2) + along_m / speed
    start_m = np.tile(off_m, 2) + along_m
    sources, source_of = np.unique(ends, return_inverse=True)
    if "access-graph" not in network.cache:  # undirected: every access way both ways
        network.cache["access-graph"] = csr_matrix(
            (
                np.concatenate([access.minutes(), access.minutes()]),
                (
                    np.concatenate([access.source, access.target]),
                    np.concatenate([access.target, access.source]),
                ),
            ),
            shape=(access.n_nodes, access.n_nodes),
        )
    graph = network.cache["access-graph"]
    gates = np.flatnonzero(access.gate >= 0)
    limit = float(budget_minutes[point].max())
    found = []
    batch = max(1, _BATCH_CELLS // max(access.n_nodes, 1))
    for i in range(0, len(sources), batch):
        minutes = dijkstra(graph, indices=sources[i : i + batch], limit=limit)[:, gates]
        row, col = np.nonzero(np.isfinite(minutes))
        found.append((row + i, col, minutes[row, col]))
    row, col, way_minutes = (np.concatenate(x) for x in zip(*found, strict=True))
    # Join each reached (source, gate) to the point-ends starting at that source.
    pair, end = _expand(row, source_of)
    total = start_minutes[end] + way_minutes[pair]
    ok = total <= budget_minutes[point[owner[end]]]
    pair, end, total = pair[ok], end[ok], total[ok]
    metres = start_m[end] + way_minutes[pair] * speed
    return (point[owner[end]], access.gate[gates[col[pair]]], total, metres, straight[owner[end]])


def _lengths_to(
    pred: np.ndarray,
    targets: np.ndarray,
    graph: csr_matrix,
    lengths: csr_matrix,
    columns: np.ndarray | None = None,
    legs: tuple[csr_matrix, int, np.ndarray] | None = None,
) -> np.ndarray:
    """Length (m) of the shortest path from each search (row of ``pred``) to each of ``targets``.

    Walks up the predecessor tree from the targets only, a step for all of them at once, so
    its cost follows the paths to the targets, not every node the search reached. ``graph`` is the
    searched graph and ``lengths`` the same edges' lengths in the same layout (``Network.matrix``);
    ``columns``, if given, are the network nodes of a sub-graph's columns (``pred`` then holds
    column numbers). ``legs``, where searches start at virtual nodes (``_WaysIn``): the graph
    searched, how many of its nodes are not virtual, and the metres of the virtual nodes' edges in
    their order in it (each point's ways in).
    """
    count = pred.shape[0]
    row = np.repeat(np.arange(count), len(targets))
    at = np.tile(np.asarray(targets, np.int64), count)
    total = np.zeros(len(row))
    # The steps up are gathered first and their edges found in one go: a path has hundreds of
    # edges, and finding each step's edges on its own cost more in calls than in work.
    steps: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    held = 0

    def add_steps() -> None:
        entry, up, here = (np.concatenate(x) for x in zip(*steps, strict=True))
        if legs is not None:
            searched, real, leg_m = legs
            way_in = up >= real
            edge = _edge_position(searched.indptr, searched.indices, up[way_in], here[way_in])
            total[:] += np.bincount(
                entry[way_in], weights=leg_m[edge - searched.indptr[real]], minlength=len(total)
            )
            entry, up, here = entry[~way_in], up[~way_in], here[~way_in]
        if columns is not None:
            up, here = columns[up], columns[here]
        edge = _edge_position(graph.indptr, graph.indices, up, here)
        total[:] += np.bincount(entry, weights=lengths.data[edge], minlength=len(total))
        steps.clear()

    active = np.flatnonzero(pred[row, at] >= 0)
    while len(active):
        up = pred[row[active], at[active]].astype(np.int64)
        steps.append((active, up, at[active]))
        held += len(active)
        if held >= _BATCH_CELLS // 8:  # steps held at once: a few hundred MB at most
            add_steps()
            held = 0
        at[active] = up
        active = active[pred[row[active], up] >= 0]
    if steps:
        add_steps()
    return total.reshape(count, len(targets))


def _edge_position(indptr: np.ndarray, indices: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Where edge a->b sits in a CSR layout (``indptr``, ``indices``), or -1 where there is none: a
    scan along row a, a step per edge (road nodes have a handful)."""
    start = indptr[a].astype(np.int64)
    degree = indptr[a + 1] - start
    position = np.full(len(a), -1, np.int64)
    open_ = np.flatnonzero(degree > 0)
    step = 0
    while len(open_):
        at = start[open_] + step
        hit = indices[at] == b[open_]
        position[open_[hit]] = at[hit]
        open_ = open_[~hit & (degree[open_] > step + 1)]
        step += 1
    return position


def _uniform_speed(network: Network) -> float | None:
    """Metres per minute if every edge has the same speed (walking), else None.

    Edge times are whole quanta, so one speed means each time is its length's to within a quantum.
    """
    if "uniform" not in network.cache:
        speed = float(np.median(network.length_m / network.minutes))
        same = np.abs(network.length_m / speed - network.minutes) <= MINUTES_QUANTUM
        network.cache["uniform"] = speed if bool(same.all()) else None
    return network.cache["uniform"]


# Building a hierarchy takes about 1 s per 20,000 nodes (20 minutes for England's drive network); a
# bounded SciPy search takes milliseconds to a fraction of a second, whatever the network's size. So
# by default the hierarchy is built only for at least one search per this many nodes (and at least
# _CCH_MIN_SEARCHES), or where it is built or kept already: a new hub's few sites never wait for it.
_NODES_PER_SEARCH = 3_000
_CCH_MIN_SEARCHES = 100


def _hierarchy_pays(network: Network, searches: int) -> bool:
    if searches >= max(_CCH_MIN_SEARCHES, network.n_nodes / _NODES_PER_SEARCH):
        return True
    return hierarchy.ready(network)


def _engine(
    network: Network,
    engine: str | None,
    traced: bool,
    max_minutes: float,
    default: str,
    searches: int = 0,
) -> str:
    """The engine to search with: as asked, else ``default`` where it can answer, is installed and,
    for the hierarchy, pays for its build over ``searches`` (see ``_hierarchy_pays``)."""
    if engine not in (None, "cch", "scipy"):
        raise ValueError(f"engine must be 'cch' or 'scipy', not {engine!r}")
    cch_can = not traced and max_minutes <= hierarchy.MAX_MINUTES
    if engine == "cch" and not cch_can:
        raise ValueError(
            "the cch engine gives times only (pass distances=False, or engine='scipy' to trace lengths)"
            if traced
            else f"the cch engine searches up to {hierarchy.MAX_MINUTES:,.0f} minutes"
        )
    if engine is None:
        if default == "cch" and cch_can and hierarchy.available() and _hierarchy_pays(network, searches):
            return "cch"
        return "scipy"
    return engine


def _expand(slots: np.ndarray, attachment_slot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each entry of ``slots``, every attachment in that slot: (entry index, attachment index)."""
    order = np.argsort(attachment_slot, kind="stable")
    counts = np.bincount(attachment_slot, minlength=slots.max(initial=0) + 1)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    per_entry = counts[slots]
    entry = np.repeat(np.arange(len(slots)), per_entry)
    offset = np.arange(len(entry)) - np.repeat(np.cumsum(per_entry) - per_entry, per_entry)
    return entry, order[starts[slots][entry] + offset]


# Each call's inputs, by a key of its own: set in the parent before forking workers, so the graph
# is shared copy-on-write, not pickled, and two threads searching at once (a Dask worker with
# several threads) each read their own.
_SEARCHES: dict[int, dict] = {}
_NEXT_SEARCH = itertools.count()


def _search_batch(job: tuple[int, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Bounded searches from ``chunk``; the reached (search, target, minutes, metres) entries.

    A search starts at a node, or, where the state has ``ways_in`` (``_WaysIn``), at a virtual node
    joined to a point's ways in. With a ``region`` (see ``_Reach``), the searches run on the
    sub-graph within crow-fly reach of the chunk: every node reached within the limit lies there,
    and so does every path to it.
    """
    key, chunk = job
    state = _SEARCHES[key]
    graph, targets, limit = state["graph"], state["targets"], state["limit"]
    reach: _Reach | None = state.get("reach")
    ways_in: _WaysIn | None = state.get("ways_in")
    columns = None
    legs: tuple[csr_matrix, int, np.ndarray] | None = None  # see ``_lengths_to``
    target_of_column = np.arange(len(targets))
    if reach is not None:
        columns = reach.nodes_near(ways_in.nodes_of(chunk) if ways_in is not None else chunk, limit)
        graph = _sub_matrix(graph, columns, state["local"])
        if ways_in is not None:
            graph = ways_in.joined(graph, chunk, columns)
            legs = (graph, len(columns), ways_in.first_legs(chunk))
            chunk = len(columns) + np.arange(len(chunk))
        else:
            chunk = np.searchsorted(columns, chunk)
        at = np.minimum(np.searchsorted(columns, targets), len(columns) - 1)
        inside = columns[at] == targets
        targets, target_of_column = at[inside], target_of_column[inside]
    elif ways_in is not None:
        # Every point's virtual node follows the network's in the graph (``_WaysIn.joined``).
        legs = (graph, state["n_nodes"], ways_in.metres)
        chunk = state["n_nodes"] + chunk
    found = []
    batch = max(1, _BATCH_CELLS // max(graph.shape[0], 1))
    for first in range(0, len(chunk), batch):
        sources = chunk[first : first + batch]
        metres: np.ndarray | None
        if state["traced"]:
            minutes, pred = dijkstra(graph, indices=sources, limit=limit, return_predecessors=True)
            minutes = minutes[:, targets]
            metres = _lengths_to(pred, targets, state["network_graph"], state["lengths"], columns, legs)
        else:
            minutes = dijkstra(graph, indices=sources, limit=limit)[:, targets]
            metres = minutes * state["uniform"] if state["uniform"] is not None else None
        row, col = np.nonzero(np.isfinite(minutes))
        found.append(
            (
                row + first,
                target_of_column[col],
                minutes[row, col],
                (metres[row, col] if metres is not None else np.full(len(row), np.nan)),
            )
        )
    row, col, minutes, metres = (np.concatenate(x) for x in zip(*found, strict=True))
    return row, col, minutes, metres


@dataclass
class _WaysIn:
    """Each point's ways in (``Snapped`` attachments), as the edges of a virtual node per point.

    A search from a point's virtual node reaches everything its two ways in reach, in one search
    instead of one per node (a point joins both ends of its edge), with the way in's time already
    added. Entries are sorted by point; a point's repeated node keeps its quicker way in.
    """

    start: np.ndarray  # per point + 1: where its entries begin
    node: np.ndarray
    minutes: np.ndarray
    metres: np.ndarray

    @classmethod
    def of(cls, points: Snapped) -> _WaysIn:
        order = np.lexsort((points.extra_minutes, points.node, points.point))
        point, node = points.point[order], points.node[order]
        first = np.ones(len(order), bool)
        first[1:] = (point[1:] != point[:-1]) | (node[1:] != node[:-1])
        order, point = order[first], point[first]
        start = np.searchsorted(point, np.arange(len(points.ids) + 1))
        return cls(start, points.node[order], points.extra_minutes[order], points.extra_m[order])

    def _entries(self, points: np.ndarray) -> np.ndarray:
        return _spans(self.start[points], self.start[points + 1] - self.start[points])

    def nodes_of(self, points: np.ndarray) -> np.ndarray:
        return self.node[self._entries(points)]

    def joined(self, graph: csr_matrix, points: np.ndarray, columns: np.ndarray | None = None) -> csr_matrix:
        """``graph`` with a node per point appended after its own, joined to the point's ways in.

        The graph's own edges keep their places (so ``Network.matrix`` layouts still index them);
        ``columns``, if given, are the network nodes of ``graph``'s (a sub-graph around the points).
        Explicit zero times (a point on a node) are kept as edges by SciPy's searches.
        """
        entries = self._entries(points)
        node = self.node[entries]
        if columns is not None:
            node = np.searchsorted(columns, node)
        counts = self.start[points + 1] - self.start[points]
        size = graph.shape[0] + len(points)
        return csr_matrix(
            (
                np.concatenate([graph.data, self.minutes[entries]]),
                np.concatenate([graph.indices, node.astype(graph.indices.dtype)]),
                np.concatenate([graph.indptr, graph.indptr[-1] + np.cumsum(counts)]).astype(
                    graph.indptr.dtype
                ),
            ),
            shape=(size, size),
        )

    def first_legs(self, points: np.ndarray) -> np.ndarray:
        """The metres of each way in of ``points``, in the order ``joined`` appends them."""
        return self.metres[self._entries(points)]


def _spans(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The positions ``starts[i] .. starts[i] + counts[i] - 1`` for every i, in order (CSR rows)."""
    ends = np.cumsum(counts, dtype=starts.dtype)
    return np.repeat(starts - (ends - counts), counts) + np.arange(
        int(ends[-1]) if len(ends) else 0, dtype=starts.dtype
    )


def _sub_matrix(graph: csr_matrix, nodes: np.ndarray, local: np.ndarray) -> csr_matrix:
    """The sub-graph on ``nodes`` (sorted), numbered in their order; edges keep their order in each row.

    ``local`` is a scratch array of -1 per network node, left as it was found.
    """
    # Positions in the graph's own index type (int32 below 2^31 edges): a quarter faster at 25M nodes.
    starts = graph.indptr[nodes]
    counts = graph.indptr[nodes + 1] - starts
    ends = np.cumsum(counts, dtype=starts.dtype)
    edge = _spans(starts, counts)
    local[nodes] = np.arange(len(nodes), dtype=local.dtype)
    try:
        to = local[graph.indices[edge]]
    finally:
        local[nodes] = -1
    inside = to >= 0
    # Each row's kept edges end where the running count of kept edges stands at the row's end.
    kept = np.zeros(len(edge) + 1, starts.dtype)
    np.cumsum(inside, out=kept[1:])
    indptr = kept[np.r_[0, ends]]
    return csr_matrix((graph.data[edge[inside]], to[inside], indptr), shape=(len(nodes), len(nodes)))


class _Reach:
    """A network's nodes by grid cell, to cut out the part within crow-fly reach of some nodes.

    A path of ``t`` minutes ends no farther than ``t`` times the fastest straight-line speed over
    any edge (``metres_per_minute``) from where it began, so a search bounded by ``t`` never
    leaves the box that far around its sources. Built once per network and kept on it.
    """

    def __init__(self, network: Network) -> None:
        self.easting, self.northing = network.easting, network.northing
        self.x0, self.y0 = float(self.easting.min()), float(self.northing.min())
        extent = max(float(self.easting.max()) - self.x0, float(self.northing.max()) - self.y0, 1.0)
        self.extent_m = extent
        self.cell_m = max(extent / 1024, 100.0)
        cx, cy = self._cells(self.easting, self.northing)
        self.nx, self.ny = int(cx.max()) + 1, int(cy.max()) + 1
        cell = cx * self.ny + cy
        self.order = np.argsort(cell, kind="stable").astype(np.int32 if len(cell) < 2**31 else np.int64)
        self.start = np.searchsorted(cell[self.order], np.arange(self.nx * self.ny + 1))
        straight = np.hypot(
            self.easting[network.target] - self.easting[network.source],
            self.northing[network.target] - self.northing[network.source],
        )
        self.metres_per_minute = float((straight / network.minutes).max(initial=0.0))

    def _cells(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return ((x - self.x0) // self.cell_m).astype(np.int64), ((y - self.y0) // self.cell_m).astype(
            np.int64
        )

    def radius_m(self, minutes: float) -> float:
        return minutes * self.metres_per_minute * (1 + 1e-9) + 1e-6  # a hair over, for rounding

    def nodes_near(self, sources: np.ndarray, minutes: float) -> np.ndarray:
        """The nodes (sorted) in the cells within ``minutes`` of crow-fly reach of the sources' box.

        That region is the box widened by the reach with rounded corners (a box widened square
        would hold a fifth more nodes for one source): a column of cells takes the rows within
        reach of the box at its nearest edge to it.
        """
        radius = self.radius_m(minutes)
        x, y = self.easting[sources], self.northing[sources]
        x_min, x_max, y_min, y_max = float(x.min()), float(x.max()), float(y.min()), float(y.max())
        cx_lo, cx_hi = np.clip(
            self._cells(np.array([x_min - radius, x_max + radius]), np.zeros(2))[0], 0, self.nx - 1
        )
        cells = np.arange(int(cx_lo), int(cx_hi) + 1)
        left = self.x0 + cells * self.cell_m  # each column's x extent: [left, left + cell_m)
        gap = np.maximum(0.0, np.maximum(x_min - (left + self.cell_m), left - x_max))
        half = np.sqrt(np.maximum(radius**2 - gap**2, 0.0))
        y_lo = np.clip(((y_min - half - self.y0) // self.cell_m).astype(np.int64), 0, self.ny - 1)
        y_hi = np.clip(((y_max + half - self.y0) // self.cell_m).astype(np.int64), 0, self.ny - 1)
        columns = [
            self.order[self.start[cx * self.ny + lo] : self.start[cx * self.ny + hi + 1]]
            for cx, lo, hi, g in zip(cells, y_lo, y_hi, gap, strict=True)
            if g <= radius
        ]
        return np.sort(np.concatenate(columns)).astype(np.int64)

    def share(self, minutes: float) -> float:
        """About what share of the network's box one search's box covers."""
        return min(1.0, (2 * self.radius_m(minutes) + self.cell_m) / self.extent_m) ** 2


def _reach(network: Network) -> _Reach:
    if "reach" not in network.cache:
        network.cache["reach"] = _Reach(network)
    return network.cache["reach"]


def cores() -> int:
    """The cores this process may run on: its CPU affinity where the system has one (a container or
    a batch scheduler may give it fewer than the machine has), else the machine's."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def pairs_within(
    network: Network,
    origins: Snapped,
    destinations: Snapped,
    max_minutes: float,
    *,
    distances: bool = True,
    workers: int | None = None,
    engine: str | None = None,
) -> pd.DataFrame:
    """Every (origin, destination) pair within ``max_minutes``, door to door, with path length.

    With ``distances=False`` the length of each quickest path is not traced (``distance_m`` is
    NaN), unless the network has one speed throughout, where it is simply time times speed.
    ``engine``: 'cch' (the network's contraction hierarchy, network/hierarchy.py: one many-to-many
    query) or 'scipy' (Dijkstra bounded by the cutoff from whichever side has fewer distinct nodes;
    large jobs use every core, ``workers``, default all); by default 'cch' where pyroutingkit is
    installed, no lengths are traced and the hierarchy is built already or pays for its build
    (``_hierarchy_pays``), else 'scipy', and for a large query whichever a timed sample of each
    says is faster (``_faster_engine``). Both give the same pairs and minutes.
    """
    if len(origins.ids) == 0 or len(destinations.ids) == 0:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in _PAIR_COLUMNS.items()})
    o_nodes, o_slot = np.unique(origins.node, return_inverse=True)
    d_nodes, d_slot = np.unique(destinations.node, return_inverse=True)
    uniform = _uniform_speed(network)
    traced = uniform is None and distances
    searches = min(len(o_nodes), len(d_nodes))
    chosen = _engine(network, engine, traced, max_minutes, "cch", searches)
    if chosen == "cch" and engine is None:
        from_destinations, n_searches = _search_side(origins, destinations, uniform)
        work = n_searches * _searched_nodes(network, max_minutes)
        if work >= _PROBE_WORK and n_searches * _PROBE_SHARE >= _PROBE_MIN:
            threads = workers or cores()
            chosen = _faster_engine(
                network,
                origins,
                destinations,
                max_minutes,
                uniform,
                threads if work >= _PARALLEL_WORK else 1,
                threads,
                from_destinations,
                n_searches,
            )
    if chosen == "cch":
        found = []
        for first, minutes in hierarchy.minutes_matrix(network, o_nodes, d_nodes, workers or cores()):
            row, col = np.nonzero(minutes <= max_minutes)
            found.append((row + first, col, minutes[row, col]))
        node_o, node_d, net_minutes = (np.concatenate(x) for x in zip(*found, strict=True))
        net_m = net_minutes * uniform if uniform is not None else np.full(len(net_minutes), np.nan)
        return _door_to_door(
            origins, destinations, o_slot, d_slot, node_o, node_d, net_minutes, net_m, max_minutes
        )
    return _scipy_pairs(network, origins, destinations, max_minutes, uniform, traced, workers)


def _search_side(origins: Snapped, destinations: Snapped, uniform: float | None) -> tuple[bool, int]:
    """Whether SciPy searches from the destinations (the side needing fewer searches), and how many.

    A search starts from a distinct node, or, not at one speed, from a point's ways in at once
    where the side's points are fewer than their nodes (``_WaysIn``).
    """

    def searches(points: Snapped) -> int:
        nodes = len(np.unique(points.node))
        return min(len(points.ids), nodes) if uniform is None else nodes

    from_o, from_d = searches(origins), searches(destinations)
    return from_d <= from_o, min(from_o, from_d)


def _searched_nodes(network: Network, max_minutes: float) -> int:
    """About how many nodes one bounded search works on: its region's (``_Reach``) or the network's."""
    share = _reach(network).share(max_minutes)
    return max(1, round(network.n_nodes * (share if share <= _REGION_SHARE else 1.0)))


def _spread(n: int, k: int) -> np.ndarray:
    """``k`` of the positions 0..n-1 (k <= n), evenly spread: a sample across a side, not its first few."""
    return np.linspace(0, n - 1, k).round().astype(np.int64)


def _faster_engine(
    network: Network,
    origins: Snapped,
    destinations: Snapped,
    max_minutes: float,
    uniform: float | None,
    processes: int,
    threads: int,
    from_destinations: bool,
    n_searches: int,
) -> str:
    """'cch' or 'scipy', whichever answers these pairs sooner, timed on a sample of each.

    SciPy runs one of its searches, then a share of them (each against every point of the other
    side), in one process: the difference, per search, scaled to all its searches shared by the
    processes the whole query would use (``processes``; the hierarchy, over ``threads``), plus the one
    search's time for what a call costs whatever its searches. The hierarchy runs a share of its
    rows against one query's columns on one thread, scaled to all its rows and to the threads that
    would share them (``hierarchy.seconds_on``). The two give the same pairs, so only the time
    depends on the choice. ``from_destinations`` and ``n_searches``: SciPy's side and searches
    (``_search_side``).
    """
    side = destinations if from_destinations else origins
    sources, targets = np.unique(origins.node), np.unique(destinations.node)
    plan = hierarchy.query_plan(network, sources, targets)
    # What each engine builds once per network is built before the clock starts; the matrix only
    # stays if SciPy is chosen.
    hierarchy.customised(network, plan.reverse)
    matrix_key = ("matrix", "minutes", from_destinations)
    had_matrix = matrix_key in network.cache
    network.matrix("minutes", reverse=from_destinations)

    def scipy_seconds(count: int) -> tuple[float, int]:
        keep = np.zeros(len(side.ids), bool)
        keep[_spread(len(side.ids), count)] = True
        sample = side.only(keep)
        o, d = (origins, sample) if from_destinations else (sample, destinations)
        start = time.perf_counter()
        _scipy_pairs(network, o, d, max_minutes, uniform, False, 1, progress="routing a sample")
        return time.perf_counter() - start, _search_side(o, d, uniform)[1]

    with step("choosing the faster engine (a sample of each)"):
        one, _ = scipy_seconds(1)
        some, sampled = scipy_seconds(
            min(len(side.ids), max(_PROBE_SAMPLE, round(n_searches * _PROBE_SHARE)))
        )
        per_search = max(some - one, 0.0) / max(sampled - 1, 1)
        scipy_s = one + per_search * max(n_searches - 1, 0) / max(1, min(processes, n_searches))
        k = min(len(plan.rows), max(_PROBE_SAMPLE, round(plan.total_rows * _PROBE_SHARE)))
        start = time.perf_counter()
        rows, columns = plan.rows[_spread(len(plan.rows), k)], plan.columns[: plan.per_query]
        for _ in hierarchy.minutes_matrix(
            network, columns if plan.turned else rows, rows if plan.turned else columns
        ):
            pass
        cch_s = hierarchy.seconds_on(
            network, plan.reverse, (time.perf_counter() - start) * plan.total_rows / k, threads
        )
    chosen = "scipy" if scipy_s < cch_s else "cch"
    if chosen == "cch" and not had_matrix:
        network.cache.pop(matrix_key, None)
    log.info(
        "engine: %s (timed on a sample, for the whole query: SciPy %.2f s, hierarchy %.2f s)",
        chosen,
        scipy_s,
        cch_s,
    )
    return chosen


def _scipy_pairs(
    network, origins, destinations, max_minutes, uniform, traced, workers, *, progress: str = "routing"
) -> pd.DataFrame:
    """Bounded Dijkstra searches from whichever side needs fewer, door to door.

    A search starts from a distinct node, or, where points are fewer than their nodes (a point
    joins both ends of its edge), from each point's ways in at once (``_WaysIn``): half the
    searches. Not at one speed (walking), where lengths are time x speed from node to node and
    the ways in keep their own exact lengths.
    """
    o_nodes, o_slot = np.unique(origins.node, return_inverse=True)
    d_nodes, d_slot = np.unique(destinations.node, return_inverse=True)
    by_point = uniform is None
    from_destinations, _ = _search_side(origins, destinations, uniform)
    side, search_nodes, target_nodes = (
        (destinations, d_nodes, o_nodes) if from_destinations else (origins, o_nodes, d_nodes)
    )
    ways_in = _WaysIn.of(side) if by_point and len(side.ids) < len(search_nodes) else None
    # Where the searches are the side's points, each search's own node stands for its point.
    sources = np.arange(len(side.ids)) if ways_in is not None else search_nodes
    # Each search's place: its node, or its point's first way in.
    place = (
        ways_in.node[np.minimum(ways_in.start[:-1], len(ways_in.node) - 1)]
        if ways_in is not None
        else search_nodes
    )
    graph = network.matrix("minutes", reverse=from_destinations)
    lengths = network.matrix("length_m", reverse=from_destinations) if traced else None
    # Searches reaching a small part of the network run on the sub-graph around each group of
    # nearby sources (``_Reach``), so that their cost follows what they reach, not the network.
    reach = _reach(network)
    share = reach.share(max_minutes)
    regional = share <= _REGION_SHARE
    key = next(_NEXT_SEARCH)
    _SEARCHES[key] = {
        # On the whole graph, every point's virtual node is joined once, before any worker forks.
        "graph": ways_in.joined(graph, sources) if ways_in is not None and not regional else graph,
        "network_graph": graph,
        "ways_in": ways_in,
        "targets": target_nodes,
        "limit": max_minutes,
        "traced": traced,
        "lengths": lengths,
        "uniform": uniform,
        "n_nodes": network.n_nodes,
        "reach": reach if regional else None,
        # Scratch for cutting out sub-graphs: one per call (and per forked worker), never shared.
        "local": np.full(network.n_nodes, -1, np.int32 if network.n_nodes < 2**31 else np.int64)
        if regional
        else None,
    }
    searched = _searched_nodes(network, max_minutes)
    workers = workers or cores()
    parallel = workers > 1 and len(sources) * searched >= _PARALLEL_WORK
    batch = max(
        1,
        min(
            _BATCH_CELLS // searched,
            -(-len(sources) // (2 * workers)) if parallel else len(sources),
        ),
    )
    order = np.arange(len(sources))
    if regional:
        # Sources grouped by square, a quarter of the reach across, searched a group at a time.
        square = max(reach.radius_m(max_minutes) / 4, reach.cell_m)
        sx = (network.easting[place] - reach.x0) // square
        sy = (network.northing[place] - reach.y0) // square
        order = np.lexsort((sy, sx))
        group = (sx * (reach.extent_m // square + 2) + sy)[order]
        bounds = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
        cuts = np.unique(
            np.concatenate(
                [
                    bounds,
                    *(
                        np.arange(b, e, batch)
                        for b, e in zip(bounds, np.r_[bounds[1:], len(order)], strict=True)
                    ),
                ]
            )
        )
    else:
        cuts = np.arange(0, len(sources), batch)
    ends = np.r_[cuts[1:], len(order)]
    chunks = [(key, sources[order[b:e]]) for b, e in zip(cuts, ends, strict=True)]
    try:
        if parallel:
            with mp.get_context("fork").Pool(workers) as pool:
                results = list(steps(pool.imap(_search_batch, chunks), progress, total=len(chunks)))
        else:
            results = [_search_batch(c) for c in steps(chunks, progress, total=len(chunks))]
    finally:
        del _SEARCHES[key]
    search = order[np.concatenate([r[0] + off for r, off in zip(results, cuts, strict=True)])]
    target = np.concatenate([r[1] for r in results])
    net_minutes = np.concatenate([r[2] for r in results])
    net_m = np.concatenate([r[3] for r in results])
    if ways_in is not None:
        # The searches' minutes and metres include the points' ways in: each point is its own slot.
        side, slot = _as_own_nodes(side), np.arange(len(side.ids))
        o_slot, d_slot = (o_slot, slot) if from_destinations else (slot, d_slot)
        origins, destinations = (origins, side) if from_destinations else (side, destinations)
    node_o, node_d = (target, search) if from_destinations else (search, target)
    return _door_to_door(
        origins, destinations, o_slot, d_slot, node_o, node_d, net_minutes, net_m, max_minutes
    )


def _as_own_nodes(points: Snapped) -> Snapped:
    """``points`` with each one its own way in at no extra time or distance."""
    count = len(points.ids)
    return Snapped(
        ids=points.ids,
        snap_m=points.snap_m,
        point=np.arange(count),
        node=np.arange(count),
        extra_minutes=np.zeros(count),
        extra_m=np.zeros(count),
        unsnapped=points.unsnapped,
    )


def _door_to_door(origins, destinations, o_slot, d_slot, node_o, node_d, net_minutes, net_m, max_minutes):
    """Network pairs (slots of unique nodes) to pairs of points, with each point's way in and out."""
    # Join each node pair to the points attached at either end, door to door.
    pair, o_att = _expand(node_o, o_slot)
    minutes = net_minutes[pair] + origins.extra_minutes[o_att]
    metres = net_m[pair] + origins.extra_m[o_att]
    pair2, d_att = _expand(node_d[pair], d_slot)
    minutes = minutes[pair2] + destinations.extra_minutes[d_att]
    metres = metres[pair2] + destinations.extra_m[d_att]
    o_point = origins.point[o_att][pair2]
    d_point = destinations.point[d_att]
    keep = minutes <= max_minutes
    o_point, d_point, minutes, metres = o_point[keep], d_point[keep], minutes[keep], metres[keep]
    # A point may join the network at two nodes: keep the quicker way in for each pair of points.
    order = np.lexsort((minutes, d_point, o_point))
    o_point, d_point, minutes, metres = o_point[order], d_point[order], minutes[order], metres[order]
    first = np.ones(len(order), bool)
    first[1:] = (o_point[1:] != o_point[:-1]) | (d_point[1:] != d_point[:-1])
    o_point, d_point, minutes, metres = o_point[first], d_point[first], minutes[first], metres[first]
    order = np.lexsort((d_point, minutes, o_point))  # by origin as given, then quickest first
    return pd.DataFrame(
        {
            "origin_id": origins.ids[o_point[order]],
            "destination_id": destinations.ids[d_point[order]],
            "distance_m": metres[order],
            "minutes": minutes[order],
        }
    )


def nearest(
    network: Network,
    origins: Snapped,
    destinations: Snapped,
    *,
    distances: bool = True,
    engine: str | None = None,
    workers: int | None = None,
) -> pd.DataFrame:
    """For each origin: the nearest destination by time, door to door.

    ``engine``: 'scipy' (the default) is one search from all sites at once; 'cch' one many-to-many
    query from the origins' nodes to the sites' nodes (slower: it finds every origin-site time),
    shared over up to ``workers`` threads (default all cores). Where two sites are equally near,
    either may be named (the minutes are the same).
    """
    if len(destinations.ids) == 0:
        return pd.DataFrame(
            {"origin_id": origins.ids, "destination_id": None, "distance_m": np.nan, "minutes": np.nan}
        )
    # Several sites joining at one node: the one with the least extra time is nearest from everywhere.
    joins = pd.DataFrame(
        {
            "id": destinations.ids[destinations.point],
            "node": destinations.node,
            "minutes": destinations.extra_minutes,
            "metres": destinations.extra_m,
        }
    )
    joins = joins.sort_values(["node", "minutes", "id"]).drop_duplicates("node")
    uniform = _uniform_speed(network)
    traced = uniform is None and distances
    # One search from all sites beats a matrix to each (benchmarks/bench_travel_query.py): SciPy by default.
    if _engine(network, engine, traced, 0.0, "scipy") == "cch":
        found = _cch_nearest(network, origins, joins, uniform, workers or cores())
        if found is not None:
            return _best_per_origin(origins, found)
    return _best_per_origin(origins, _scipy_nearest(network, origins, joins, distances, uniform))


def _cch_nearest(
    network: Network, origins: Snapped, joins: pd.DataFrame, uniform: float | None, threads: int
):
    """Per origin attachment: (minutes, metres, site id) to its nearest site; None if any is beyond reach."""
    o_nodes, o_slot = np.unique(origins.node, return_inverse=True)
    site_nodes, site_minutes = joins["node"].to_numpy(), joins["minutes"].to_numpy()
    best_col = np.empty(len(o_nodes), np.int64)
    net_minutes = np.empty(len(o_nodes))
    for first, minutes in hierarchy.minutes_matrix(network, o_nodes, site_nodes, threads):
        total = minutes + site_minutes
        col = np.argmin(total, axis=1)
        best_col[first : first + len(col)] = col
        net_minutes[first : first + len(col)] = minutes[np.arange(len(col)), col]
    if not np.isfinite(net_minutes).all():
        return None  # saturated (a site farther than the hierarchy counts): SciPy searches unbounded
    col = best_col[o_slot]
    minutes = net_minutes[o_slot] + site_minutes[col] + origins.extra_minutes
    if uniform is None:
        metres = np.full(len(minutes), np.nan)
    else:
        metres = net_minutes[o_slot] * uniform + joins["metres"].to_numpy()[col] + origins.extra_m
    return minutes, metres, joins["id"].to_numpy()[col]


def _best_per_origin(origins: Snapped, found) -> pd.DataFrame:
    minutes, metres, site = found
    ways = pd.DataFrame(
        {
            "origin_id": origins.ids[origins.point],
            "minutes": minutes,
            "distance_m": metres,
            "destination_id": site,
        }
    )
    ways = ways[np.isfinite(ways["minutes"])]
    best = ways.sort_values(["origin_id", "minutes"]).drop_duplicates("origin_id").set_index("origin_id")
    result = pd.DataFrame({"origin_id": origins.ids})
    for column in ("destination_id", "distance_m", "minutes"):
        result[column] = result["origin_id"].map(best[column])
    return result


def _scipy_nearest(
    network: Network, origins: Snapped, joins: pd.DataFrame, distances: bool, uniform: float | None
):
    """Per origin attachment: (minutes, metres, site id), in one search from all sites at once.

    Lengths are traced along the paths if ``distances``; else, at one speed, time x speed. Only the
    origins' paths are walked (their lengths, and the site each starts from), not the whole tree.
    """
    n = network.n_nodes
    reverse = network.matrix("minutes", reverse=True)
    # A virtual node n joins every site's node at its extra time (+ a hair, as zero weights vanish):
    # one more row on the matrix, appended as arrays (no coordinate copy of every edge).
    site_nodes = joins["node"].to_numpy()
    graph = csr_matrix(
        (
            np.concatenate([reverse.data, joins["minutes"].to_numpy() + 1e-9]),
            np.concatenate([reverse.indices, site_nodes.astype(reverse.indices.dtype)]),
            np.append(reverse.indptr, reverse.indptr[-1] + len(joins)),
        ),
        shape=(n + 1, n + 1),
    )
    minutes, up = dijkstra(graph, indices=n, return_predecessors=True)  # one source: 1-D arrays
    o_nodes, o_slot = np.unique(origins.node, return_inverse=True)
    net_minutes = minutes[o_nodes] - 1e-9
    del minutes
    # The site each origin's path starts from: walk up its predecessors to the node after the
    # virtual one (a step for all origins at once; a path has hundreds of edges, not millions).
    start = o_nodes.copy()
    active = np.flatnonzero((up[start] >= 0) & (up[start] != n))
    while len(active):
        step_up = up[start[active]]
        start[active] = step_up
        active = active[up[step_up] != n]
    site_row = pd.Series(np.arange(len(joins)), index=site_nodes).reindex(start).to_numpy()
    reached = np.isfinite(net_minutes)
    if distances:
        # Cut the tree at the sites (the virtual node's row holds every site: too long to scan for
        # an edge), walk up to them, and add each site's way in.
        up[site_nodes[up[site_nodes] == n]] = -9999
        along = _lengths_to(up[None, :n], o_nodes, reverse, network.matrix("length_m", reverse=True))[0]
        metres = along + joins["metres"].to_numpy()[np.where(reached, site_row, 0).astype(np.int64)]
    elif uniform is not None:  # at one speed, from the time on the network and the site's way in
        at_site = np.where(reached, site_row, 0).astype(np.int64)
        metres = (net_minutes - joins["minutes"].to_numpy()[at_site]) * uniform + joins["metres"].to_numpy()[
            at_site
        ]
    else:
        metres = np.full(len(o_nodes), np.nan)
    del graph, up
    metres = np.where(reached, metres, np.nan)
    site = np.where(reached, joins["id"].to_numpy()[np.where(reached, site_row, 0).astype(np.int64)], None)
    return (
        net_minutes[o_slot] + origins.extra_minutes,
        metres[o_slot] + origins.extra_m,
        site[o_slot],
    )


def crowfly_pairs(origins: Points, destinations: Points, profile: str, max_minutes: float) -> pd.DataFrame:
    """Straight-line pairs within ``max_minutes`` (distance x detour factor at the profile's speed)."""
    metres_per_minute = CROWFLY_SPEED_KPH[profile] * 1000 / 60
    reach_m = max_minutes * metres_per_minute / DETOUR_FACTOR
    tree = cKDTree(np.column_stack([destinations.easting, destinations.northing]))
    matrix = tree.sparse_distance_matrix(
        cKDTree(np.column_stack([origins.easting, origins.northing])), reach_m, output_type="coo_matrix"
    ).tocsr()
    coo = matrix.tocoo()
    # sparse_distance_matrix drops exact zeros; a site at the centroid itself is 0 m away.
    same = tree.query_ball_point(np.column_stack([origins.easting, origins.northing]), 1e-9)
    zero_d = [d for lst in same for d in lst]
    zero_o = [o for o, lst in enumerate(same) for _ in lst]
    d_idx = np.concatenate([coo.row, np.asarray(zero_d, int)])
    o_idx = np.concatenate([coo.col, np.asarray(zero_o, int)])
    straight = np.concatenate([coo.data, np.zeros(len(zero_d))])
    frame = pd.DataFrame(
        {
            "origin_id": origins.ids[o_idx],
            "destination_id": destinations.ids[d_idx],
            "distance_m": straight * DETOUR_FACTOR,
        }
    )
    frame["minutes"] = frame["distance_m"] / metres_per_minute
    return (
        frame.drop_duplicates(["origin_id", "destination_id"])
        .sort_values(["origin_id", "minutes", "destination_id"])
        .reset_index(drop=True)
    )


def crowfly_nearest(origins: Points, destinations: Points, profile: str) -> pd.DataFrame:
    metres_per_minute = CROWFLY_SPEED_KPH[profile] * 1000 / 60
    tree = cKDTree(np.column_stack([destinations.easting, destinations.northing]))
    straight, index = tree.query(np.column_stack([origins.easting, origins.northing]))
    return pd.DataFrame(
        {
            "origin_id": origins.ids,
            "destination_id": destinations.ids[index],
            "distance_m": straight * DETOUR_FACTOR,
            "minutes": straight * DETOUR_FACTOR / metres_per_minute,
        }
    )
