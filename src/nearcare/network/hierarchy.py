"""A customisable contraction hierarchy (RoutingKit's CCH, through pyroutingkit) for many-to-many searches.

The hierarchy's topology (a node order from nested dissection) is built once per network and kept
on it (``Network.cache``); the weights, whole ``MINUTES_QUANTUM`` units, are customised onto it
(a metric: about as long as 70 to 300 rows of a query). Queries give exact integer
sums of the same quantised edge times that SciPy's Dijkstra adds up, so the two engines agree to
rounding (tests/test_engine.py checks every pair). RoutingKit saturates at ``INF_WEIGHT`` (2^31 - 1
quanta, about 35 hours); longer searches use SciPy.

The topology's arcs are the network's edges and the reverse of every one-way pair of nodes, so one
topology also carries the reverse network's metric: on any network a query can run from the side
with fewer nodes and be turned round (``query_plan`` says where that pays). A metric answers one
query at a time (RoutingKit's query object keeps its search state), so threads querying at once
each take one of their own (``_lanes`` says how many are worth making).

pyroutingkit is optional at run time: ``available()`` says whether it imports.
"""

from __future__ import annotations

import hashlib
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import numpy as np
import psutil

from nearcare._progress import log, step
from nearcare.network import MINUTES_QUANTUM, Network

_BATCH_CELLS = 20_000_000  # distances held at once (x 4 bytes)
MAX_MINUTES = 2_000_000_000 * MINUTES_QUANTUM  # below RoutingKit's saturation, with room to add
_INF = 2**31 - 1  # RoutingKit's INF_WEIGHT: an arc that is not there

# Customising a metric takes about as long as 70-300 rows of a query (Rutland, a 100k grid, a 1M
# road-like graph: benchmarks/bench_travel_query.py). So the reverse network's metric is made for a
# query turned round only where that saves at least this many rows (or it is made already), ...
_TURN_ROWS = 300
# ... and a query is shared over more threads, each with a metric of its own, only where what is
# left of it would take one thread twice a customisation and at least this long.
_LANE_MIN_SECONDS = 0.05
_PIECES_PER_LANE = 4  # pieces of a batch per thread, so that threads finish together
# A metric's memory per node, at least: Rutland walk about 40 bytes, a 1M-node road-like graph about 270.
_METRIC_BYTES_PER_NODE = 64


def available() -> bool:
    try:
        import pyroutingkit  # noqa: F401  # optional: only probing whether it is installed
    except ImportError:
        return False
    return True


# Two threads building one network's hierarchy would race: each network has a lock for its build.
_BUILDING = threading.Lock()


def _build_lock(network: Network) -> threading.Lock:
    with _BUILDING:
        return network.cache.setdefault("cch_lock", threading.Lock())


class _Hierarchy:
    """A network's topology and its customised metrics, forward and reverse, each kept for reuse."""

    def __init__(self, topology, n_nodes: int) -> None:
        self.topology = topology
        self._idle: dict[bool, list] = {False: [], True: []}
        self._made = {False: 0, True: 0}
        self._weights: dict[bool, np.ndarray] = {}
        self._free = threading.Condition()
        self._weighing = threading.Lock()
        self.customise_seconds = 0.0  # the slowest metric's so far, weights included: what another costs
        # What a metric holds: at least this, or the rise in resident memory seen while one was made
        # (a build's freed memory may be reused, so that rise can read low).
        self.metric_bytes = _METRIC_BYTES_PER_NODE * n_nodes

    def made(self, reverse: bool) -> int:
        with self._free:
            return self._made[reverse]

    @contextmanager
    def metric(self, network: Network, reverse: bool, most: int = 1):
        """A customised metric of ``network`` (``reverse``: of its reversed edges) for this thread's
        query: an idle one, else a new one while fewer than ``most`` are made, else the next freed."""
        metric, counted = None, False
        try:
            with self._free:
                while not self._idle[reverse] and self._made[reverse] >= most:
                    self._free.wait()
                if self._idle[reverse]:
                    metric = self._idle[reverse].pop()
                else:
                    self._made[reverse] += 1
                    counted = True
            if metric is None:
                metric = self._customise(network, reverse)
            yield metric
        finally:
            with self._free:
                if metric is not None:
                    self._idle[reverse].append(metric)
                elif counted:  # its customisation failed: another may be made in its place
                    self._made[reverse] -= 1
                self._free.notify_all()  # waiters of either direction look again

    def _customise(self, network: Network, reverse: bool):
        from pyroutingkit import CCHMetric  # optional dependency, imported where used

        before, start = psutil.Process().memory_info().rss, time.perf_counter()
        with self._weighing:
            if reverse not in self._weights:
                self._weights[reverse] = _weights(network, reverse)
        metric = CCHMetric(self.topology)
        metric.customize(self._weights[reverse])
        seconds, grown = time.perf_counter() - start, psutil.Process().memory_info().rss - before
        with self._free:
            self.customise_seconds = max(self.customise_seconds, seconds)
            self.metric_bytes = max(self.metric_bytes, grown)
        return metric


def ready(network: Network) -> bool:
    """Whether ``network``'s hierarchy is built already (in memory, or kept beside its store)."""
    if "cch" in network.cache:
        return True
    folder = _topology_folder(network)
    return folder is not None and (folder / "sha256").exists()


def _hierarchy(network: Network) -> _Hierarchy:
    """``network``'s hierarchy (its topology built on first use, then kept on the network).

    The topology (the nested-dissection order: about 1 s per 20,000 nodes, so minutes for a
    region) depends only on the network's edges. With ``network.hierarchy_folder`` set (a stored
    network: beside its store) it is kept there once built and read back by later runs, in a
    folder named by a digest of the arcs, so a rebuilt network never reads another's. The walk
    or drive minutes are customised onto it afresh each run.
    """
    if "cch" not in network.cache:
        with _build_lock(network):
            if "cch" not in network.cache:
                topology = _kept_topology(network)
                if topology is None:
                    topology = _build_topology(network)
                    _keep_topology(network, topology)
                network.cache["cch"] = _Hierarchy(topology, network.n_nodes)
    return network.cache["cch"]


def customised(network: Network, reverse: bool = False) -> None:
    """Build (or read back) ``network``'s hierarchy and, unless one is made already, customise a
    metric of the direction a query will use, now rather than inside a timed query."""
    hierarchy = _hierarchy(network)
    if not hierarchy.made(reverse):
        with hierarchy.metric(network, reverse):
            pass


def _added_arcs(network: Network) -> tuple[np.ndarray, np.ndarray]:
    """The reverse of each one-way pair of nodes (an edge with none back), once per pair, sorted:
    the arcs that the topology adds to the network's edges so that it carries the reverse network."""
    if "cch_added" not in network.cache:
        n = np.int64(network.n_nodes)
        there = np.unique(network.source.astype(np.int64) * n + network.target)
        back = np.unique(network.target.astype(np.int64) * n + network.source)
        added = back[~np.isin(back, there, assume_unique=True)]
        network.cache["cch_added"] = (
            (added // n).astype(np.uint32),
            (added % n).astype(np.uint32),
        )
    return network.cache["cch_added"]


def _arcs(network: Network) -> tuple[np.ndarray, np.ndarray]:
    """The topology's arcs (tail, head): the network's edges in their order, then ``_added_arcs``."""
    tail, head = _added_arcs(network)
    return (
        np.concatenate([network.source.astype(np.uint32), tail]),
        np.concatenate([network.target.astype(np.uint32), head]),
    )


def _weights(network: Network, reverse: bool) -> np.ndarray:
    """Each arc's quanta: forward, an edge's own (an added arc is not there); reverse, the quickest
    edge's from the arc's head back to its tail, if there is one."""
    # An edge of INF or more quanta (35 hours: no road, but a long ferry or a damaged file) is not
    # there for the hierarchy, rather than wrapped round 2^32 to a short one; any path with it
    # saturates anyway.
    quanta = np.minimum(np.rint(network.minutes / MINUTES_QUANTUM), _INF).astype(np.uint32)
    if not reverse:
        return np.concatenate([quanta, np.full(len(_added_arcs(network)[0]), _INF, np.uint32)])
    n = np.int64(network.n_nodes)
    key = network.source.astype(np.int64) * n + network.target
    order = np.lexsort((quanta, key))
    key, quickest = key[order], quanta[order]
    first = np.r_[True, key[1:] != key[:-1]]
    key, quickest = key[first], quickest[first]
    arc_tail, arc_head = _arcs(network)
    back = arc_head.astype(np.int64) * n + arc_tail
    at = np.minimum(np.searchsorted(key, back), len(key) - 1)
    return np.where(key[at] == back, quickest[at], np.uint32(_INF)).astype(np.uint32)


def _build_topology(network: Network):
    from pyroutingkit import CCHTopology  # optional dependency, imported where used

    tail, head = _arcs(network)
    topology = CCHTopology()
    with step(f"contraction hierarchy of the {network.mode} network ({network.n_nodes:,} nodes)"):
        # Nested dissection cuts by geometry; BNG metres serve as well as degrees.
        topology.build(
            tail,
            head,
            np.asarray(network.northing, np.float32),
            np.asarray(network.easting, np.float32),
            network.n_nodes,
        )
    return topology


def _topology_folder(network: Network) -> Path | None:
    folder = network.hierarchy_folder
    if folder is None:
        return None
    if "cch_digest" not in network.cache:
        tail, head = _arcs(network)
        digest = hashlib.blake2b(digest_size=16)
        digest.update(np.int64(network.n_nodes).tobytes())
        digest.update(tail.tobytes())
        digest.update(head.tobytes())
        network.cache["cch_digest"] = digest.hexdigest()
    return folder / f"{network.mode}-{network.cache['cch_digest']}"


def _checksum(folder: Path) -> str:
    """One digest of the topology's files (RoutingKit writes one file per array into ``folder``)."""
    digest = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        if path.name != "sha256":
            digest.update(path.name.encode() + b"\0")
            with path.open("rb") as file:
                digest.update(hashlib.file_digest(file, "sha256").digest())
    return digest.hexdigest()


def _kept_topology(network: Network):
    """The topology kept for this network's arcs, if there is one whose checksum holds."""
    folder = _topology_folder(network)
    if folder is None or not (folder / "sha256").exists():
        return None
    from pyroutingkit import CCHTopology  # optional dependency, imported where used

    # RoutingKit reads the files without checking them: a damaged or partly written one is rebuilt.
    if (folder / "sha256").read_text().strip() != _checksum(folder):
        log.info("the kept hierarchy in %s does not match its checksum: building it again", folder)
        return None
    topology = CCHTopology()
    topology.load(str(folder))
    if topology.node_count != network.n_nodes or topology.arc_count != len(network.source) + len(
        _added_arcs(network)[0]
    ):
        return None
    log.info("hierarchy read from %s", folder)
    return topology


def _keep_topology(network: Network, topology) -> None:
    """Write the topology beside the store (a cache: if the folder cannot be written, go on)."""
    folder = _topology_folder(network)
    if folder is None:
        return
    partial = folder.with_name(folder.name + ".partial")
    try:
        for old in folder.parent.glob(
            f"{network.mode}-*"
        ):  # an earlier network of this mode, or this one damaged
            shutil.rmtree(old)
        partial.mkdir(parents=True)
        topology.save(str(partial))
        (partial / "sha256").write_text(_checksum(partial) + "\n")
        partial.rename(folder)  # in place only once whole, with its checksum
    except (OSError, RuntimeError) as exc:
        log.info("could not keep the hierarchy in %s (%s): it is built again next time", folder.parent, exc)
        shutil.rmtree(partial, ignore_errors=True)


def symmetric(network: Network) -> bool:
    """Whether every edge has a reverse of the same minutes (walking): then b is as far from a as a from b.

    Compared on the quickest edge of each ordered pair of nodes (as both engines route), from the
    edge arrays, with no matrix kept; most drive networks fail at once on a node's edges out and in.
    """
    if "symmetric" not in network.cache:
        n = network.n_nodes
        same = np.array_equal(
            np.bincount(network.source, minlength=n), np.bincount(network.target, minlength=n)
        )
        if same:
            source, target = network.source.astype(np.int64), network.target.astype(np.int64)

            def quickest(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
                order = np.lexsort((network.minutes, key))
                key, minutes = key[order], network.minutes[order]
                first = np.r_[True, key[1:] != key[:-1]]
                return key[first], minutes[first]

            forward, backward = quickest(source * n + target), quickest(target * n + source)
            same = np.array_equal(forward[0], backward[0]) and np.array_equal(forward[1], backward[1])
        network.cache["symmetric"] = bool(same)
    return network.cache["symmetric"]


def _sources_per_batch(n_targets: int) -> int:
    return max(1, _BATCH_CELLS // max(n_targets, 1))


class Plan(NamedTuple):
    """How ``minutes_matrix`` queries: its rows' nodes and its columns', the rows it runs in all
    (the targets' once per batch of sources where it turns the query round), the columns of each
    query, whether it is turned round, and whether on the reverse network's metric (turned, on a
    network not the same both ways)."""

    rows: np.ndarray
    columns: np.ndarray
    total_rows: int
    per_query: int
    turned: bool
    reverse: bool


def query_plan(network: Network, sources: np.ndarray, targets: np.ndarray) -> Plan:
    """Query from the targets and turn the answer round where that runs fewer rows: on a network
    the same both ways with the same metric, else with the reverse network's, where it is made
    already or the rows saved pay for making it (``_TURN_ROWS``)."""
    batch = _sources_per_batch(len(targets))
    batches = -(-len(sources) // batch)
    saved = len(sources) - batches * len(targets)
    if saved > 0:
        same = symmetric(network)
        made = network.cache["cch"].made if "cch" in network.cache else lambda reverse: 0
        # Turned, the reverse network's metric is made only where it pays, or where it is made
        # already, or where no metric is made yet (then only that one is).
        if same or saved >= _TURN_ROWS or made(True) or not made(False):
            return Plan(targets, sources, batches * len(targets), min(batch, len(sources)), True, not same)
    return Plan(sources, targets, len(sources), len(targets), False, False)


def _lanes(hierarchy: _Hierarchy, reverse: bool, threads: int, seconds_left: float) -> int:
    """How many threads share what is left of a query (``seconds_left`` on one): as many as there
    are metrics made already, and more, each customising its own, while each new one saves at
    least twice its customisation (and ``_LANE_MIN_SECONDS``) and their memory fits in half of
    what is free."""
    made = hierarchy.made(reverse)
    lanes = min(threads, max(made, 1))
    if threads > lanes and seconds_left >= _LANE_MIN_SECONDS:
        room = psutil.virtual_memory().available // 2
        pays = int(seconds_left // max(2 * hierarchy.customise_seconds, 1e-9))
        lanes += max(0, min(threads - lanes, room // hierarchy.metric_bytes, pays))
    return int(lanes)


def seconds_on(network: Network, reverse: bool, seconds_one_thread: float, threads: int) -> float:
    """About how long a query that takes ``seconds_one_thread`` on one thread takes on as many as
    ``minutes_matrix`` would share it over (new threads start after customising their metric)."""
    hierarchy = _hierarchy(network)
    lanes = _lanes(hierarchy, reverse, threads, seconds_one_thread)
    if lanes <= 1:
        return seconds_one_thread
    late = hierarchy.customise_seconds if lanes > hierarchy.made(reverse) else 0.0
    return late + max(seconds_one_thread - late, 0.0) / lanes


def minutes_matrix(network: Network, sources: np.ndarray, targets: np.ndarray, threads: int = 1):
    """Network minutes from each source node to each target node, by row batches (inf: not reached).

    Yields (first row, minutes) per batch so that callers reduce each batch before the next. A
    query's time follows its rows more than its columns, so it runs from the fewer side
    (``query_plan``). The first piece runs on this thread; what is left is shared over up to
    ``threads`` threads where it pays (``_lanes``).
    """
    plan = query_plan(network, sources, targets)
    customised(network, plan.reverse)  # before the first piece is timed
    hierarchy = _hierarchy(network)
    targets32 = np.ascontiguousarray(targets, np.uint32)  # RoutingKit reads the buffer as it lies
    lanes, rows_done, spent = 1, 0, 0.0
    pool: ThreadPoolExecutor | None = None
    batch = _sources_per_batch(len(targets))

    def run(rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
        try:
            with hierarchy.metric(network, plan.reverse, lanes) as metric:
                return metric.distances_many_to_many(rows, columns)
        except MemoryError:
            if lanes == 1:
                raise
            # No room for this thread's metric after all: wait for one of those made.
            with hierarchy.metric(network, plan.reverse) as metric:
                return metric.distances_many_to_many(rows, columns)

    try:
        for first in range(0, len(sources), batch):
            chunk = np.ascontiguousarray(sources[first : first + batch], np.uint32)
            rows, columns = (targets32, chunk) if plan.turned else (chunk, targets32)
            pieces = np.array_split(np.arange(len(rows)), max(1, min(len(rows), _PIECES_PER_LANE * threads)))
            units = np.empty((len(rows), len(columns)), np.uint32)

            def answer(piece: np.ndarray, units=units, rows=rows, columns=columns) -> None:
                if len(piece):
                    units[piece[0] : piece[-1] + 1] = run(np.ascontiguousarray(rows[piece]), columns)

            for i, piece in enumerate(pieces):
                if pool is not None:
                    list(pool.map(answer, pieces[i:]))
                    break
                start = time.perf_counter()
                answer(piece)
                spent += time.perf_counter() - start
                rows_done += len(piece)
                if threads > 1 and rows_done < plan.total_rows:
                    left = spent / rows_done * (plan.total_rows - rows_done)
                    lanes = _lanes(hierarchy, plan.reverse, threads, left)
                    if lanes > 1:
                        pool = ThreadPoolExecutor(lanes, thread_name_prefix="hierarchy")
            if plan.turned:
                units = units.T
            minutes = units * MINUTES_QUANTUM
            minutes[units >= _INF] = np.inf
            yield first, minutes
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
