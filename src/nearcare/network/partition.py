"""Partitioned road-network runs: route a large extract piece by piece, with the same pairs as one run.

Origins (LSOAs) are split into partitions: by a label (ICB, local authority) or by a square grid
(``grid_labels``). Each partition is routed on its own *sub-network*: the nodes within a buffer of
the places where its origins join the network, and the edges between them. The results are merged:
pairs found in two partitions (only where partitions overlap) keep the quickest.

Why the buffer finds every pair (the derivation)
    Every edge's time is at least its length over the fastest speed on the network,
    ``v_max = max(length_m / minutes)`` (for walking the walking speed, 4.8 km/h; for driving at
    most the motorway class speed, 100 km/h in ``DRIVE_SPEED_KPH``; it is read off the edges so it
    also covers the rounding of times to whole quanta). A path that takes at most ``cutoff``
    minutes is therefore at most ``cutoff x v_max`` metres long, and every node on it lies within
    that straight distance of the node it starts from. So with ``buffer_m = cutoff x v_max``
    around every node an origin of the partition joins at, each quickest path within the cutoff
    lies wholly in the sub-network, and the search there finds it with the same time. Walk, 30
    minutes: 2.4 km; drive, 30 minutes: at most 50 km.

Snapping is done once on the whole network (it needs only the edges near each point, not routing
memory); each partition receives its origins' and the destinations' ways in, renumbered to its own
nodes. Destinations joining only outside the sub-network are out of reach within the cutoff.

Memory
    The search structures (sparse matrices, the contraction hierarchy, the distance batches) are
    built per sub-network, so routing's peak memory is bounded by the largest partition (its
    core plus buffer), not the whole extract; only the network's edge arrays (about 40 bytes an
    edge) and the snapped points are whole. A partition is a plain ``Task`` of arrays, so it can be
    run in another process or on another machine (nearcare.distributed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from nearcare.network import Network
from nearcare.network.search import (  # _uniform_speed: see sub_network
    Points,
    Snapped,
    _uniform_speed,
    pairs_within,
    snap,
)

_KEY = ["origin_id", "destination_id"]


def fastest_kph(network: Network) -> float:
    """The fastest speed of any edge (km/h): length over its (quantised) time."""
    if len(network.minutes) == 0:
        return 0.0
    return float(np.max(network.length_m / network.minutes)) * 60 / 1000


def buffer_m(network: Network, max_minutes: float) -> float:
    """The buffer that keeps every path within ``max_minutes``: cutoff x fastest speed (module notes)."""
    return max_minutes * fastest_kph(network) * 1000 / 60


def grid_labels(points: Points, cell_m: float) -> np.ndarray:
    """A partition label per point: the ``cell_m`` grid square it falls in."""
    if cell_m <= 0:
        raise ValueError("cell_m must be positive")
    col = np.floor(points.easting / cell_m).astype(np.int64)
    row = np.floor(points.northing / cell_m).astype(np.int64)
    return np.array([f"{c}_{r}" for c, r in zip(col, row, strict=True)], dtype=object)


@dataclass
class Task:
    """One partition's routing job: its sub-network and its points' ways in (picklable arrays)."""

    label: str
    network: Network
    origins: Snapped
    destinations: Snapped
    max_minutes: float
    distances: bool = True
    engine: str | None = None


def sub_network(network: Network, keep_node: np.ndarray) -> tuple[Network, np.ndarray]:
    """The nodes in ``keep_node`` and the edges between them; and the old-to-new node index (-1: out)."""
    node_map = np.full(network.n_nodes, -1, dtype=np.int64)
    node_map[keep_node] = np.arange(int(keep_node.sum()))
    edge = keep_node[network.source] & keep_node[network.target]
    sub = Network(
        mode=network.mode,
        osm_id=network.osm_id[keep_node],
        easting=network.easting[keep_node],
        northing=network.northing[keep_node],
        source=node_map[network.source[edge]].astype(np.int32),
        target=node_map[network.target[edge]].astype(np.int32),
        length_m=network.length_m[edge],
        minutes=network.minutes[edge],
        walk_speed_kph=network.walk_speed_kph,
    )
    # A piece of a drive network may happen to have one speed; it must still route as the whole does
    # (trace lengths rather than take time x speed), so it inherits the whole network's answer.
    sub.cache["uniform"] = _uniform_speed(network)
    return sub, node_map


def tasks(
    network: Network,
    origins: Snapped,
    destinations: Snapped,
    labels: np.ndarray,
    max_minutes: float,
    *,
    distances: bool = True,
    engine: str | None = None,
) -> list[Task]:
    """One ``Task`` per label (``labels``: one per snapped origin, as ``origins.ids``)."""
    labels = np.asarray(labels, dtype=object)
    if len(labels) != len(origins.ids):
        raise ValueError("one label per snapped origin")
    reach_m = buffer_m(network, max_minutes)
    out = []
    for label in pd.unique(labels):
        keep_origin = labels == label
        att_nodes = origins.node[keep_origin[origins.point]]
        if len(att_nodes) == 0:
            continue
        # Nodes within the buffer of any node the partition's origins join at (a k-d tree keeps it exact).
        keep_node = _within(network, att_nodes, reach_m)
        sub, node_map = sub_network(network, keep_node)
        # Destinations with a way in inside the sub-network (the others are out of reach).
        reached = np.zeros(len(destinations.ids), bool)
        reached[destinations.point[keep_node[destinations.node]]] = True
        sub_destinations = destinations.only(reached, node_map)
        out.append(
            Task(
                str(label),
                sub,
                origins.only(keep_origin, node_map),
                sub_destinations,
                max_minutes,
                distances,
                engine,
            )
        )
    return out


def _within(network: Network, nodes: np.ndarray, radius_m: float) -> np.ndarray:
    """Nodes within ``radius_m`` (straight line) of any of ``nodes``."""
    # lazy: SciPy's spatial module is only needed here
    from scipy.spatial import cKDTree

    xy = np.column_stack([network.easting, network.northing])
    tree = cKDTree(xy[np.unique(nodes)])
    distance, _ = tree.query(xy, k=1, distance_upper_bound=radius_m * (1 + 1e-9) + 1e-6)
    return np.isfinite(distance)


def run_task(task: Task) -> pd.DataFrame:
    """Route one partition (in one process; several threads of a Dask worker may route at once)."""
    return pairs_within(
        task.network,
        task.origins,
        task.destinations,
        task.max_minutes,
        distances=task.distances,
        workers=1,
        engine=task.engine,
    ).assign(partition=task.label)


def merge(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Partitions' pairs as one frame: a pair found in two keeps the quickest (then the shorter)."""
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in _EMPTY.items()})
    pairs = pd.concat(frames, ignore_index=True).drop(columns="partition", errors="ignore")
    pairs = pairs.sort_values([*_KEY, "minutes", "distance_m"], kind="stable")
    pairs = pairs.drop_duplicates(_KEY, keep="first")
    return pairs.sort_values(["origin_id", "minutes", "destination_id"], kind="stable").reset_index(drop=True)


_EMPTY = {"origin_id": object, "destination_id": object, "distance_m": float, "minutes": float}


def partitioned_pairs(
    network: Network,
    origins: Points,
    destinations: Points,
    labels: np.ndarray,
    max_minutes: float,
    *,
    distances: bool = True,
    engine: str | None = None,
    max_snap_m: float = 1000.0,
    run: Callable[[Callable[[Task], pd.DataFrame], list[Task]], list[pd.DataFrame]] | None = None,
) -> pd.DataFrame:
    """``pairs_within`` over the whole network, computed per partition and merged (same pairs).

    ``labels``: a partition per origin point (as ``origins.ids``). ``run(function, tasks)`` runs
    the tasks (default: one after another here; nearcare.distributed runs them on Dask).
    """
    snapped_o = snap(network, origins, side="origin", max_snap_m=max_snap_m)
    snapped_d = snap(network, destinations, side="destination", max_snap_m=max_snap_m)
    label_of = dict(zip(origins.ids, np.asarray(labels, dtype=object), strict=True))
    jobs = tasks(
        network,
        snapped_o,
        snapped_d,
        np.array([label_of[i] for i in snapped_o.ids], dtype=object),
        max_minutes,
        distances=distances,
        engine=engine,
    )
    results = run(run_task, jobs) if run is not None else [run_task(t) for t in jobs]
    return merge(results)


__all__ = [
    "Task",
    "buffer_m",
    "fastest_kph",
    "grid_labels",
    "merge",
    "partitioned_pairs",
    "run_task",
    "sub_network",
    "tasks",
]
