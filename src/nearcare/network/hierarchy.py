"""A customisable contraction hierarchy (RoutingKit's CCH, through pyroutingkit) for many-to-many searches.

The hierarchy's topology (a node order from nested dissection) is built once per network and kept
on it (``Network.cache``); the weights, whole ``MINUTES_QUANTUM`` units, are customised onto it in
milliseconds. Queries give exact integer sums of the same quantised edge times that SciPy's Dijkstra
adds up, so the two engines agree to rounding (tests/test_travel.py checks every pair). RoutingKit
saturates at ``INF_WEIGHT`` (2^31 - 1 quanta, about 35 hours); longer searches use SciPy.

pyroutingkit is optional at run time: ``available()`` says whether it imports.
"""

from __future__ import annotations

import threading

import numpy as np

from nearcare.network import MINUTES_QUANTUM, Network

_BATCH_CELLS = 20_000_000  # distances held at once (x 4 bytes)
MAX_MINUTES = 2_000_000_000 * MINUTES_QUANTUM  # below RoutingKit's saturation, with room to add


def available() -> bool:
    try:
        import pyroutingkit  # noqa: F401  # optional: only probing whether it is installed
    except ImportError:
        return False
    return True


# A customised hierarchy answers one query at a time (RoutingKit's query object keeps its search
# state), and two threads building one would race: each network's hierarchy is used under a lock.
_BUILDING = threading.Lock()


def _lock(network: Network) -> threading.Lock:
    with _BUILDING:
        return network.cache.setdefault("cch_lock", threading.Lock())


def metric(network: Network):
    """The customised hierarchy of ``network`` (built on first use, then kept on the network).
    Hold ``_lock(network)`` while using it."""
    if "cch" not in network.cache:
        from pyroutingkit import CCHMetric, CCHTopology  # optional dependency, imported where used

        topology = CCHTopology()
        # Nested dissection cuts by geometry; BNG metres serve as well as degrees.
        topology.build(
            network.source.astype(np.uint32),
            network.target.astype(np.uint32),
            np.asarray(network.northing, np.float32),
            np.asarray(network.easting, np.float32),
            network.n_nodes,
        )
        customised = CCHMetric(topology)
        customised.customize(np.rint(network.minutes / MINUTES_QUANTUM).astype(np.uint32))
        network.cache["cch"] = (topology, customised)  # the metric refers to the topology: keep both
    return network.cache["cch"][1]


def minutes_matrix(network: Network, sources: np.ndarray, targets: np.ndarray):
    """Network minutes from each source node to each target node, by row batches (inf: not reached).

    Yields (first row, minutes) per batch so that callers reduce each batch before the next.
    """
    from pyroutingkit import INF_WEIGHT  # optional dependency, imported where used

    t = np.asarray(targets, np.uint32)
    batch = max(1, _BATCH_CELLS // max(len(t), 1))
    for i in range(0, len(sources), batch):
        with _lock(network):
            units = metric(network).distances_many_to_many(np.asarray(sources[i : i + batch], np.uint32), t)
        minutes = units * MINUTES_QUANTUM
        minutes[units >= INF_WEIGHT] = np.inf
        yield i, minutes
