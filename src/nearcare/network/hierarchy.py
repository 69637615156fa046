"""A customisable contraction hierarchy (RoutingKit's CCH, through pyroutingkit) for many-to-many searches.

The hierarchy's topology (a node order from nested dissection) is built once per network and kept
on it (``Network.cache``); the weights, whole ``MINUTES_QUANTUM`` units, are customised onto it in
milliseconds. Queries give exact integer sums of the same quantised edge times that SciPy's Dijkstra
adds up, so the two engines agree to rounding (tests/test_travel.py checks every pair). RoutingKit
saturates at ``INF_WEIGHT`` (2^31 - 1 quanta, about 35 hours); longer searches use SciPy.

pyroutingkit is optional at run time: ``available()`` says whether it imports.
"""

from __future__ import annotations

import hashlib
import shutil
import threading
from pathlib import Path

import numpy as np

from nearcare._progress import log, step
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


def ready(network: Network) -> bool:
    """Whether ``network``'s hierarchy is built already (in memory, or kept beside its store)."""
    if "cch" in network.cache:
        return True
    folder = _topology_folder(network)
    return folder is not None and (folder / "sha256").exists()


def metric(network: Network):
    """The customised hierarchy of ``network`` (built on first use, then kept on the network).
    Hold ``_lock(network)`` while using it.

    The topology (the nested-dissection order: about 1 s per 20,000 nodes, so minutes for a
    region) depends only on the network's edges. With ``network.hierarchy_folder`` set (a stored
    network: beside its store) it is kept there once built and read back by later runs, in a
    folder named by a digest of the edges, so a rebuilt network never reads another's. The walk
    or drive minutes are customised onto it afresh each time, in milliseconds.
    """
    if "cch" not in network.cache:
        from pyroutingkit import CCHMetric  # optional dependency, imported where used

        topology = _kept_topology(network)
        if topology is None:
            topology = _build_topology(network)
            _keep_topology(network, topology)
        customised = CCHMetric(topology)
        customised.customize(np.rint(network.minutes / MINUTES_QUANTUM).astype(np.uint32))
        network.cache["cch"] = (topology, customised)  # the metric refers to the topology: keep both
    return network.cache["cch"][1]


def customised(network: Network) -> None:
    """Build (or read back) and customise ``network``'s hierarchy now, not inside a timed query."""
    with _lock(network):
        metric(network)


def _build_topology(network: Network):
    from pyroutingkit import CCHTopology  # optional dependency, imported where used

    topology = CCHTopology()
    with step(f"contraction hierarchy of the {network.mode} network ({network.n_nodes:,} nodes)"):
        # Nested dissection cuts by geometry; BNG metres serve as well as degrees.
        topology.build(
            network.source.astype(np.uint32),
            network.target.astype(np.uint32),
            np.asarray(network.northing, np.float32),
            np.asarray(network.easting, np.float32),
            network.n_nodes,
        )
    return topology


def _topology_folder(network: Network) -> Path | None:
    folder = network.hierarchy_folder
    if folder is None:
        return None
    digest = hashlib.blake2b(digest_size=16)
    digest.update(np.int64(network.n_nodes).tobytes())
    digest.update(np.ascontiguousarray(network.source, np.uint32).tobytes())
    digest.update(np.ascontiguousarray(network.target, np.uint32).tobytes())
    return folder / f"{network.mode}-{digest.hexdigest()}"


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
    """The topology kept for this network's edges, if there is one whose checksum holds."""
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
    if topology.node_count != network.n_nodes:
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


def _turned(network: Network, n_sources: int, n_targets: int) -> bool:
    """Whether to query from the targets and turn the answer round (see ``minutes_matrix``)."""
    batches = -(-n_sources // _sources_per_batch(n_targets))
    return batches * n_targets < n_sources and symmetric(network)


def query_plan(
    network: Network, sources: np.ndarray, targets: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """How ``minutes_matrix`` queries: its rows' nodes, its columns', the rows it runs in all (the
    targets' once per batch of sources where it turns the query round) and the columns of each."""
    if not _turned(network, len(sources), len(targets)):
        return sources, targets, len(sources), len(targets)
    batch = _sources_per_batch(len(targets))
    batches = -(-len(sources) // batch)
    return targets, sources, batches * len(targets), min(batch, len(sources))


def minutes_matrix(network: Network, sources: np.ndarray, targets: np.ndarray):
    """Network minutes from each source node to each target node, by row batches (inf: not reached).

    Yields (first row, minutes) per batch so that callers reduce each batch before the next. A
    query's time follows its rows more than its columns (Rutland walk, 3,000 x 300: 66 ms; 300 x
    3,000: 42 ms), so on a symmetric network it runs from the targets and is turned round where
    they are fewer than the sources, counting the targets' rows once per batch of sources.
    """
    from pyroutingkit import INF_WEIGHT  # optional dependency, imported where used

    turned = _turned(network, len(sources), len(targets))
    batch = _sources_per_batch(len(targets))
    for i in range(0, len(sources), batch):
        rows = np.asarray(sources[i : i + batch], np.uint32)
        with _lock(network):
            query = metric(network).distances_many_to_many
            units = (
                query(np.asarray(targets, np.uint32), rows).T
                if turned
                else query(rows, np.asarray(targets, np.uint32))
            )
        minutes = units * MINUTES_QUANTUM
        minutes[units >= INF_WEIGHT] = np.inf
        yield i, minutes
