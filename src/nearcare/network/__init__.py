"""Walk and drive networks from an OpenStreetMap extract, built once and kept in the store.

Which ways each mode may use
    walk: the ``highway`` values in ``WALK_HIGHWAYS`` (no motorways), unless ``foot=no`` or
    ``access=no|private`` without ``foot=yes|designated|permissive|destination``. Walking ignores
    ``oneway``.
    drive: the ``highway`` values in ``DRIVE_SPEED_KPH``, unless ``motor_vehicle``/``motorcar``/
    ``vehicle`` or ``access`` is ``no|private`` (``destination`` is allowed). ``oneway=yes|true|1``,
    ``junction=roundabout`` and motorways are one way; ``oneway=-1`` runs against the drawing order.

Speeds
    walk: ``walk_speed_kph`` (default 4.8 km/h, the usual planning figure).
    drive: the typical speed of the road class in ``DRIVE_SPEED_KPH``, lowered to the posted
    ``maxspeed`` where that is lower (UK limits are in mph: ``30 mph``; ``GB:nsl_single`` and
    friends are read as the national limits). A posted limit is a ceiling, not a typical speed,
    so it never raises the class speed. No congestion or junction delay is modelled.

Joining points to the drive network (``network.search.snap``)
    A point (an LSOA's population-weighted centroid, a site) joins the drive network at the nearest
    drive edge, as for walking; and, where it is nearer to one, through the nearest *access way* as
    well (the route search keeps whichever way in is quicker). Access ways are the ways people
    drive to reach homes and premises that the drive network leaves out: drive road classes closed
    to through traffic (``access``/``motor_vehicle`` = ``private``, ``permit``, ...) and tracks,
    unless motor access is ``no``, ``agricultural`` or ``forestry``. They are never through routes:
    they only carry a point, undirected, to the drive nodes they touch (*gates*), at
    ``ACCESS_SPEED_KPH``: 15 km/h, the speed nearcare gives service roads, and about the 10 mph
    posted on private estates, car parks and farm drives. Gates are searched within the time of the
    direct join to the far end of the nearest drive edge (or of a ``max_snap_m`` join, if the
    direct one is too far), so an access way is used where it can compete with the direct join.
    The straight, off-network leg from the point to the way it joins is driven, not walked: it
    stands for the unmapped drives and yards between the homes a centroid averages and the mapped
    ways. It is ``DETOUR_FACTOR`` (1.3, the usual ratio of road to straight-line distance in
    England, as for crow-fly estimates) times the straight distance, at ``ACCESS_SPEED_KPH``
    (an effective 11.5 km/h), so in drive mode nothing is walked. Walking is unchanged: the
    straight leg is walked at the walking speed and there are no access ways.

Only the largest strongly connected part is kept (for walking every edge runs both ways, so this is
the largest connected part); how much was dropped is recorded. Nodes are OSM nodes, with
coordinates in British National Grid (EPSG:27700) metres; edges carry ``length_m`` and ``minutes``.

The build reads the extract twice, into typed arrays (a machine number per node reference: no Python
object per node): the highway ways' node references, then the locations of the nodes they
reference, whichever way needs less memory (``_Locations``): osmium's index of every node's
location costs 16 bytes a node of the file, and in England nine in ten nodes are on no highway
(some 4 GB there, 2 MB for Rutland); a pass that osmium filters by id costs up to 1.6 GB whatever
the extract. The graph is then assembled with NumPy, freeing each array as it is replaced
(benchmarks/bench_network_scale.py).
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np
import osmium
import pandas as pd
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from nearcare._errors import InputError, StoreError
from nearcare.geo import to_bng
from nearcare.sources.osm import latest_extract
from nearcare.store import Store

MODES = ("walk", "drive")
WALK_SPEED_KPH = 4.8
MPH = 1.609344
ACCESS_SPEED_KPH = 15.0  # access ways and the off-network leg in drive mode (see the module notes)
# Road distance over straight-line distance: typically 1.2-1.4 in England; 1.3 is the middle. Used for
# the off-network leg in drive mode and for crow-fly estimates (network/search.py).
DETOUR_FACTOR = 1.3
ACCESS_MODE = "drive-access"  # how access ways are kept in network_nodes/network_edges
# Edge times are held to whole microminutes (60 us), the integer unit of the contraction hierarchy
# (network/hierarchy.py), so that it and SciPy's Dijkstra add up exactly the same weights.
MINUTES_QUANTUM = 1e-6

WALK_HIGHWAYS = frozenset(
    {
        "trunk",
        "trunk_link",
        "primary",
        "primary_link",
        "secondary",
        "secondary_link",
        "tertiary",
        "tertiary_link",
        "unclassified",
        "residential",
        "living_street",
        "service",
        "road",
        "pedestrian",
        "footway",
        "path",
        "steps",
        "track",
        "bridleway",
        "cycleway",
        "crossing",
        "corridor",
    }
)
# Typical speeds by road class (km/h): below the national limits, since traffic rarely runs at them.
DRIVE_SPEED_KPH = {
    "motorway": 100.0,
    "motorway_link": 60.0,
    "trunk": 80.0,
    "trunk_link": 50.0,
    "primary": 65.0,
    "primary_link": 45.0,
    "secondary": 55.0,
    "secondary_link": 40.0,
    "tertiary": 45.0,
    "tertiary_link": 35.0,
    "unclassified": 40.0,
    "residential": 30.0,
    "living_street": 10.0,
    "service": 15.0,
    "road": 30.0,
}
_NATIONAL_LIMITS_KPH = {
    "gb:nsl_single": 60 * MPH,
    "gb:nsl_dual": 70 * MPH,
    "gb:motorway": 70 * MPH,
    "uk:nsl_single": 60 * MPH,
    "uk:nsl_dual": 70 * MPH,
    "uk:motorway": 70 * MPH,
    "gb:zone20": 20 * MPH,
    "gb:zone30": 30 * MPH,
}
_CLOSED = {"no", "private"}
_OPEN = {"yes", "designated", "permissive", "destination"}
_NO_MOTOR_ACCESS = {"no", "agricultural", "forestry", "use_sidepath", "discouraged"}


def parse_maxspeed(value: str | None) -> float | None:
    """A posted ``maxspeed`` in km/h (``'30 mph'`` -> 48.3, ``'50'`` -> 50), or None if not a number."""
    if not value:
        return None
    first = value.split(";")[0].strip().lower()
    if first in _NATIONAL_LIMITS_KPH:
        return _NATIONAL_LIMITS_KPH[first]
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(mph|km/h|kmh|kph)?", first)
    if not match:
        return None
    speed = float(match.group(1))
    return speed * MPH if match.group(2) == "mph" else speed


def walk_allowed(tags: dict[str, str]) -> bool:
    if tags.get("highway") not in WALK_HIGHWAYS or tags.get("area") == "yes":
        return False
    foot = tags.get("foot")
    if foot in _CLOSED:
        return False
    if foot in _OPEN:
        return True
    return tags.get("access") not in _CLOSED


def drive_allowed(tags: dict[str, str]) -> bool:
    if tags.get("highway") not in DRIVE_SPEED_KPH or tags.get("area") == "yes":
        return False
    for key in ("motorcar", "motor_vehicle", "vehicle"):
        if key in tags:
            return tags[key] not in _CLOSED
    return tags.get("access") not in _CLOSED


def access_way(tags: dict[str, str]) -> bool:
    """A way left out of the drive network that still joins homes and premises to it (see module notes)."""
    highway = tags.get("highway")
    if (highway not in DRIVE_SPEED_KPH and highway != "track") or tags.get("area") == "yes":
        return False
    if highway != "track" and drive_allowed(tags):
        return False  # already in the drive network
    motor = next((tags[k] for k in ("motorcar", "motor_vehicle", "vehicle", "access") if k in tags), None)
    return motor not in _NO_MOTOR_ACCESS


def drive_direction(tags: dict[str, str]) -> tuple[bool, bool]:
    """(forward allowed, backward allowed) along the way's drawing order."""
    oneway = tags.get("oneway", "").lower()
    if oneway in ("-1", "reverse"):
        return False, True
    if oneway in ("yes", "true", "1"):
        return True, False
    if oneway == "no":
        return True, True
    if tags.get("junction") in ("roundabout", "circular") or tags.get("highway") == "motorway":
        return True, False
    return True, True


def drive_speed_kph(tags: dict[str, str]) -> float:
    typical = DRIVE_SPEED_KPH[tags["highway"]]
    posted = parse_maxspeed(tags.get("maxspeed"))
    return min(typical, posted) if posted and posted > 0 else typical


@dataclass
class AccessWays:
    """Access ways (undirected), used only to join points to the drive network: see the module notes."""

    osm_id: np.ndarray
    easting: np.ndarray
    northing: np.ndarray
    source: np.ndarray
    target: np.ndarray
    length_m: np.ndarray
    gate: np.ndarray  # per access node: the drive network node at the same OSM node, or -1

    @property
    def n_nodes(self) -> int:
        return len(self.osm_id)

    def minutes(self) -> np.ndarray:
        return self.length_m / (ACCESS_SPEED_KPH * 1000 / 60)


@dataclass
class Network:
    """A directed road/path network: node coordinates (BNG metres) and edges with length and time."""

    mode: str
    osm_id: np.ndarray
    easting: np.ndarray
    northing: np.ndarray
    source: np.ndarray
    target: np.ndarray
    length_m: np.ndarray
    minutes: np.ndarray
    dropped_nodes: int = 0
    dropped_edges: int = 0
    walk_speed_kph: float = WALK_SPEED_KPH
    access: AccessWays | None = None  # drive only
    # Search structures built from the edges on first use (matrices, the hierarchy); not compared.
    cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    # Where the hierarchy's topology is kept once built and read back (network/hierarchy.py);
    # a stored network's is beside its store (STORE.cch). None: built in memory each time.
    hierarchy_folder: Path | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Whole quanta, at least one (a zero weight would vanish from a sparse matrix).
        minutes = np.asarray(self.minutes, float) / MINUTES_QUANTUM  # in place below: one copy at a time
        np.rint(minutes, out=minutes)
        np.maximum(minutes, 1, out=minutes)
        minutes *= MINUTES_QUANTUM
        self.minutes = minutes

    def __getstate__(self) -> dict:
        # A copy sent to another process (a Dask task) rebuilds its hierarchy and lock there: the
        # native hierarchy and a lock cannot be pickled, and the store's folder may not be there.
        state = self.__dict__.copy()
        state["cache"] = {k: v for k, v in self.cache.items() if k not in ("cch", "cch_lock")}
        state["hierarchy_folder"] = None
        return state

    @property
    def n_nodes(self) -> int:
        return len(self.osm_id)

    def matrix(self, weight: str = "minutes", *, reverse: bool = False) -> csr_matrix:
        """The graph as a sparse matrix (row = from node); ``reverse`` swaps every edge. Built once."""
        key = ("matrix", weight, reverse)
        if key not in self.cache:
            values = getattr(self, weight)
            rows, cols = (self.target, self.source) if reverse else (self.source, self.target)
            self.cache[key] = csr_matrix((values, (rows, cols)), shape=(self.n_nodes, self.n_nodes))
        return self.cache[key]


def read_network(path: str | Path, mode: str, *, walk_speed_kph: float = WALK_SPEED_KPH) -> Network:
    """Build the ``mode`` network from an OSM ``.pbf`` (see the module notes for the rules)."""
    if mode not in MODES:
        raise InputError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if walk_speed_kph <= 0:
        raise InputError("walking speed must be positive", value=walk_speed_kph)
    path = Path(path)
    if not path.exists():
        raise InputError("no such file", path=path)
    # Streamed into typed arrays (a machine number per node reference, no Python object kept): the
    # ways' node ids and lengths, then the referenced nodes' locations (``_Locations``).
    ways, access = _WayArrays(), _WayArrays()
    forward, backward, speeds = array("b"), array("b"), array("d")
    allowed = walk_allowed if mode == "walk" else drive_allowed
    try:
        processor = osmium.FileProcessor(str(path), osmium.osm.WAY).with_filter(
            osmium.filter.KeyFilter("highway")
        )
        for way in processor:
            tags = dict(way.tags)
            if not allowed(tags):
                if mode == "drive" and access_way(tags):
                    access.add(way)
                continue
            if mode == "walk":
                fwd, bwd, speed = True, True, walk_speed_kph
            else:
                (fwd, bwd), speed = drive_direction(tags), drive_speed_kph(tags)
            forward.append(fwd)
            backward.append(bwd)
            speeds.append(speed)
            ways.add(way)
        if not forward:
            raise InputError(f"the extract has no ways usable for {mode}", path=path)
        locations = _Locations.read(path, ways.ids(), access.ids())
    except RuntimeError as exc:
        raise InputError(f"not a readable OpenStreetMap file ({exc})", path=path) from None
    ways.locate(locations)
    access.locate(locations)
    del locations
    network = _assemble(
        mode,
        ways,
        np.frombuffer(forward, np.int8).astype(bool),
        np.frombuffer(backward, np.int8).astype(bool),
        np.frombuffer(speeds, np.float64),
        walk_speed_kph,
    )
    if len(access.way_length):
        network.access = _access_ways(network, access)
    return network


_OSMIUM_PRECISION = 10_000_000  # osmium's fixed point: 1e-7 degrees
# How the road nodes' locations are read (see ``_Locations``): None chooses by memory; tests set it.
_READ_LOCATIONS_BY: str | None = None
_ID_SET_CHUNK_BITS = 22  # osmium's IdFilter: a bitset in ranges of 2**22 ids (512 KiB)
_PBF_BYTES_PER_NODE = 10  # about 10.4 on Rutland's extract, ways included: an estimate of its nodes
_INDEX_BYTES_PER_NODE = 16  # osmium's sparse location index: id and location


class _Locations:
    """The locations of the nodes some ways reference, read from the extract (ids sorted, unique).

    Read one of two ways, whichever needs less memory. "filtered": a pass over the nodes that osmium
    filters by id in C++, so Python sees only road nodes; osmium's id set costs about 512 KiB for
    every 4.2M ids from the least road node id to the greatest, up to 1.6 GB for ids to 13 billion
    (a small extract's road nodes span nearly as many: 0.58 GB for Rutland's). "indexed": a pass over the ways
    with osmium's index of every node's location, 16 bytes a node of the file (2 MB for Rutland's;
    about 4 GB for England's, where nine in ten nodes are on no highway).
    """

    def __init__(self, ids: np.ndarray, x: np.ndarray, y: np.ndarray) -> None:
        self.ids, self.x, self.y = ids, x, y  # x, y: osmium's fixed point, 1e-7 degrees

    @staticmethod
    def cheaper(wanted: np.ndarray, file_bytes: int) -> str:
        """ "filtered" or "indexed", by their estimated memory, for ``wanted`` (sorted, unique)."""
        # Measured: the id set holds about 512 KiB for every range from the first id's to the last's.
        span = (
            int(wanted[-1] >> _ID_SET_CHUNK_BITS) - int(wanted[0] >> _ID_SET_CHUNK_BITS) + 1
            if len(wanted)
            else 0
        )
        filtered = span << (_ID_SET_CHUNK_BITS - 3)
        indexed = _INDEX_BYTES_PER_NODE * max(len(wanted), file_bytes // _PBF_BYTES_PER_NODE)
        return "filtered" if filtered < indexed else "indexed"

    @classmethod
    def read(cls, path: Path, *referenced: np.ndarray) -> _Locations:
        wanted = np.sort(np.concatenate(referenced))  # unique by sorting: NumPy's hashed unique is 9x slower
        wanted = wanted[np.r_[True, wanted[1:] != wanted[:-1]]] if len(wanted) else wanted
        ids, xs, ys = array("q"), array("i"), array("i")
        add_id, add_x, add_y = ids.append, xs.append, ys.append  # the loops run once a node or reference
        how = _READ_LOCATIONS_BY or cls.cheaper(wanted, path.stat().st_size)
        if len(wanted) and how == "filtered":
            # Handed to osmium a block at a time: a list of all would be 36 bytes an id.
            block = 1 << 20
            keep = osmium.filter.IdFilter(
                itertools.chain.from_iterable(
                    wanted[i : i + block].tolist() for i in range(0, len(wanted), block)
                )
            )
            del wanted
            nodes = osmium.FileProcessor(str(path), osmium.osm.NODE).with_filter(keep)
            for node in cast(Iterable[osmium.osm.Node], nodes):
                location = node.location
                add_id(node.id)
                add_x(location.x)
                add_y(location.y)
            del keep, nodes
        elif len(wanted):
            del wanted
            ways = (
                osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY)
                .with_locations()
                .with_filter(osmium.filter.EntityFilter(osmium.osm.WAY))
                .with_filter(osmium.filter.KeyFilter("highway"))
            )
            for way in cast(Iterable[osmium.osm.Way], ways):
                for ref in way.nodes:
                    location = ref.location
                    add_id(ref.ref)
                    add_x(location.x)
                    add_y(location.y)
            del ways
        found, x, y = np.frombuffer(ids, np.int64), np.frombuffer(xs, np.int32), np.frombuffer(ys, np.int32)
        # osmium's Location.valid(), for all at once: an unset location is outside these bounds.
        valid = (np.abs(x) <= 180 * _OSMIUM_PRECISION) & (np.abs(y) <= 90 * _OSMIUM_PRECISION)
        if not valid.all():
            found, x, y = found[valid], x[valid], y[valid]
        if not bool((found[1:] > found[:-1]).all()):  # unsorted (a file out of id order) or repeated
            order = np.argsort(found, kind="stable")
            found, x, y = found[order], x[order], y[order]
            first = np.r_[True, found[1:] != found[:-1]]
            found, x, y = found[first], x[first], y[first]
        return cls(found, x, y)


class _WayArrays:
    """The node references of a stream of ways, in typed arrays (one machine number per field).

    Once located (``locate``), a node missing from the extract (clipped at its edge) or without a
    valid location is reference -1, which breaks the way there.
    """

    def __init__(self) -> None:
        self.refs = array("q")
        self.way_length = array("i")
        self.located: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # refs, lon, lat

    def add(self, way) -> None:
        refs = [node.ref for node in way.nodes]  # one short list a way: faster than appends
        self.refs.extend(refs)
        self.way_length.append(len(refs))

    def ids(self) -> np.ndarray:
        return np.frombuffer(self.refs, np.int64)

    def locate(self, locations: _Locations) -> None:
        """Give each reference its node's location (osmium's fixed point, 1e-7 degrees)."""
        refs = np.frombuffer(self.refs, np.int64).copy()
        self.refs = array("q")
        if len(locations.ids) == 0:
            refs[:] = -1
            self.located = refs, np.zeros(len(refs), np.int32), np.zeros(len(refs), np.int32)
            return
        at = np.minimum(np.searchsorted(locations.ids, refs), len(locations.ids) - 1)
        missing = locations.ids[at] != refs
        refs[missing] = -1
        x, y = locations.x[at], locations.y[at]
        x[missing], y[missing] = 0, 0
        self.located = refs, x, y

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(refs, lon, lat, same_way): ``same_way[i]`` says reference i and i + 1 are on one way."""
        assert self.located is not None, "locate() first"
        refs, x, y = self.located
        same_way = np.ones(max(len(refs) - 1, 0), bool)
        ends = np.cumsum(np.frombuffer(self.way_length, np.int32), dtype=np.int64) - 1
        same_way[ends[ends < len(same_way)]] = False
        return refs, x, y, same_way

    def release(self) -> None:
        """Let go of the references and coordinates (read through ``arrays`` already)."""
        self.located = None

    def way_of_ref(self) -> np.ndarray:
        lengths = np.frombuffer(self.way_length, np.int32)
        return np.repeat(np.arange(len(lengths), dtype=np.int32), lengths)


def _nodes(refs: np.ndarray, x: np.ndarray, y: np.ndarray):
    """Distinct OSM nodes (ids sorted), their BNG coordinates, and each reference's node (-1: missing)."""
    present = refs >= 0
    ids, first = np.unique(refs[present], return_index=True)
    node_of_ref = np.full(len(refs), -1, np.int32 if len(ids) < 2**31 else np.int64)
    node_of_ref[present] = np.searchsorted(ids, refs[present])
    at = np.flatnonzero(present)[first]
    del present, first
    easting, northing = to_bng(x[at] / _OSMIUM_PRECISION, y[at] / _OSMIUM_PRECISION)
    return ids, easting, northing, node_of_ref


def _access_ways(network: Network, ways: _WayArrays) -> AccessWays | None:
    """Access ways as an undirected graph, with each node's gate into the drive network."""
    refs, x, y, same_way = ways.arrays()
    ids, easting, northing, node_of_ref = _nodes(refs, x, y)
    a, b = node_of_ref[:-1], node_of_ref[1:]
    keep = same_way & (a >= 0) & (b >= 0) & (a != b)
    if not keep.any():
        return None
    a, b = a[keep], b[keep]
    return AccessWays(
        ids,
        easting,
        northing,
        a.astype(np.int32),
        b.astype(np.int32),
        np.maximum(np.hypot(easting[b] - easting[a], northing[b] - northing[a]), 1e-3),
        _gates(network.osm_id, ids),
    )


def _gates(drive_osm_id: np.ndarray, access_osm_id: np.ndarray) -> np.ndarray:
    """For each access node, the index of the drive node with the same OSM id, or -1."""
    order = np.argsort(drive_osm_id)
    at = np.clip(np.searchsorted(drive_osm_id[order], access_osm_id), 0, max(len(order) - 1, 0))
    found = drive_osm_id[order][at] == access_osm_id
    return np.where(found, order[at], -1).astype(np.int64)


def _assemble(mode, ways: _WayArrays, forward, backward, speeds, walk_speed_kph) -> Network:
    refs, x, y, same_way = ways.arrays()
    ids, easting, northing, node_of_ref = _nodes(refs, x, y)
    del refs, x, y
    ways.release()

    # Consecutive references on the same way, both present, make an edge.
    a, b = node_of_ref[:-1], node_of_ref[1:]
    keep = same_way & (a >= 0) & (b >= 0) & (a != b)
    del same_way
    a, b, way = a[keep], b[keep], ways.way_of_ref()[:-1][keep]
    del keep, node_of_ref
    fwd, bwd = forward[way], backward[way]
    # One array at a time below, so that only one copy of each is alive at once. Edges carry their
    # way (for its speed) until the end, where length and time are worked out for the kept ones.
    source = np.concatenate([a[fwd], b[bwd]])
    target = np.concatenate([b[fwd], a[bwd]])
    del a, b
    way = np.concatenate([way[fwd], way[bwd]])
    del fwd, bwd

    def length_minutes(source, target, way):
        length = np.hypot(easting[target] - easting[source], northing[target] - northing[source])
        return length, length / (speeds[way] * 1000 / 60)

    # Parallel edges: keep the quickest (a sparse matrix would otherwise add them up).
    order = np.lexsort((length_minutes(source, target, way)[1], target, source))
    source = source[order]
    target = target[order]
    way = way[order]
    del order
    first_of_pair = np.ones(len(source), bool)
    first_of_pair[1:] = (source[1:] != source[:-1]) | (target[1:] != target[:-1])
    source = source[first_of_pair]
    target = target[first_of_pair]
    way = way[first_of_pair]
    del first_of_pair

    # Keep the largest strongly connected part.
    n = len(ids)
    # Edges are sorted by source: the matrix is built straight from them, without a copy by coordinates.
    indptr = np.concatenate([[0], np.cumsum(np.bincount(source, minlength=n))])
    graph = csr_matrix((np.ones(len(source), np.int8), target, indptr), shape=(n, n))
    _, labels = connected_components(graph, directed=True, connection="strong")
    del graph, indptr
    sizes = np.bincount(labels)
    used = np.zeros(n, bool)
    used[source] = True
    used[target] = True
    largest = np.argmax(np.bincount(labels[used], minlength=len(sizes)))
    keep_node = labels == largest
    del labels
    dropped_nodes = int((used & ~keep_node).sum())
    del used
    keep_edge = keep_node[source] & keep_node[target]
    source = source[keep_edge]
    target = target[keep_edge]
    way = way[keep_edge]
    length, minutes = length_minutes(source, target, way)
    del way
    # A zero-length edge would vanish in a sparse matrix; a millimetre (on foot, one quantum) keeps it.
    np.maximum(length, 1e-3, out=length)
    minutes /= MINUTES_QUANTUM
    np.rint(minutes, out=minutes)
    np.maximum(minutes, 1, out=minutes)
    minutes *= MINUTES_QUANTUM
    if mode == "walk":
        # One speed: each length is its (whole-quantum) time walked, so time and length stay in step.
        length = minutes * (walk_speed_kph * 1000 / 60)
    new_index = (np.cumsum(keep_node) - 1).astype(np.int32)
    # Each array replaced by its kept part in turn, so that only one is copied at a time.
    ids, easting, northing = ids[keep_node], easting[keep_node], northing[keep_node]
    del keep_node
    source = new_index[source]
    target = new_index[target]
    del new_index
    return Network(
        mode=mode,
        osm_id=ids,
        easting=easting,
        northing=northing,
        source=source,
        target=target,
        length_m=length,
        minutes=minutes,
        dropped_nodes=dropped_nodes,
        dropped_edges=int((~keep_edge).sum()),
        walk_speed_kph=walk_speed_kph,
    )


def save_network(store: Store, network: Network, *, osm_source_id: int) -> None:
    """Store a network, replacing any earlier one of the same mode (one transaction)."""
    nodes = pd.DataFrame(
        {
            "mode": network.mode,
            "node": np.arange(network.n_nodes, dtype=np.int32),
            "osm_id": network.osm_id,
            "easting": network.easting,
            "northing": network.northing,
        }
    )
    edges = pd.DataFrame(
        {
            "mode": network.mode,
            "source": network.source,
            "target": network.target,
            "length_m": network.length_m,
            "minutes": network.minutes,
        }
    )
    with store.transaction() as con:
        for table in ("networks", "network_nodes", "network_edges"):
            con.execute(
                f"DELETE FROM {table} WHERE mode IN (?, ?)",
                [network.mode, ACCESS_MODE if network.mode == "drive" else network.mode],
            )
        store.insert(
            "networks",
            pd.DataFrame(
                [
                    {
                        "mode": network.mode,
                        "osm_source_id": osm_source_id,
                        "nodes": network.n_nodes,
                        "edges": len(network.source),
                        "dropped_nodes": network.dropped_nodes,
                        "dropped_edges": network.dropped_edges,
                        "walk_speed_kph": network.walk_speed_kph,
                        "built_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
                    }
                ]
            ),
        )
        store.insert("network_nodes", nodes)
        store.insert("network_edges", edges)
        if network.access is not None:
            access = network.access
            store.insert(
                "network_nodes",
                pd.DataFrame(
                    {
                        "mode": ACCESS_MODE,
                        "node": np.arange(access.n_nodes, dtype=np.int32),
                        "osm_id": access.osm_id,
                        "easting": access.easting,
                        "northing": access.northing,
                    }
                ),
            )
            store.insert(
                "network_edges",
                pd.DataFrame(
                    {
                        "mode": ACCESS_MODE,
                        "source": access.source,
                        "target": access.target,
                        "length_m": access.length_m,
                        "minutes": access.minutes(),
                    }
                ),
            )


def load_network(store: Store, mode: str) -> Network:
    """The stored ``mode`` network (build it with ``nearcare network`` first)."""
    meta = store.df("SELECT * FROM networks WHERE mode = ?", [mode])
    if meta.empty:
        raise StoreError(
            f"{store.path}: no {mode} network; run `nearcare network --store {store.path}` "
            "after importing an OSM extract"
        )
    nodes = store.df(
        "SELECT osm_id, easting, northing FROM network_nodes WHERE mode = ? ORDER BY node", [mode]
    )
    edges = store.df("SELECT source, target, length_m, minutes FROM network_edges WHERE mode = ?", [mode])
    row = meta.iloc[0]
    network = Network(
        mode,
        nodes["osm_id"].to_numpy(),
        nodes["easting"].to_numpy(),
        nodes["northing"].to_numpy(),
        edges["source"].to_numpy(np.int32),
        edges["target"].to_numpy(np.int32),
        edges["length_m"].to_numpy(),
        edges["minutes"].to_numpy(),
        int(row["dropped_nodes"]),
        int(row["dropped_edges"]),
        float(row["walk_speed_kph"]),
    )
    network.hierarchy_folder = store.path.with_name(store.path.name + ".cch")
    if mode == "drive":
        a_nodes = store.df(
            "SELECT osm_id, easting, northing FROM network_nodes WHERE mode = ? ORDER BY node", [ACCESS_MODE]
        )
        a_edges = store.df("SELECT source, target, length_m FROM network_edges WHERE mode = ?", [ACCESS_MODE])
        if len(a_edges):
            osm_id = a_nodes["osm_id"].to_numpy()
            network.access = AccessWays(
                osm_id,
                a_nodes["easting"].to_numpy(),
                a_nodes["northing"].to_numpy(),
                a_edges["source"].to_numpy(np.int32),
                a_edges["target"].to_numpy(np.int32),
                a_edges["length_m"].to_numpy(),
                _gates(network.osm_id, osm_id),
            )
    return network


def build_networks(
    store: Store, modes: tuple[str, ...] = MODES, *, walk_speed_kph: float = WALK_SPEED_KPH
) -> list[Network]:
    """Build and store networks from the most recently imported OSM extract."""
    extract = latest_extract(store)
    if extract is None:
        raise StoreError(f"{store.path}: no OSM extract imported (nearcare import osm FILE.osm.pbf)")
    path = extract.path
    if not path.exists():
        raise StoreError(f"{path}: the imported OSM extract has moved or gone; import it again")
    built = [read_network(path, mode, walk_speed_kph=walk_speed_kph) for mode in modes]
    for network in built:
        save_network(store, network, osm_source_id=extract.source_id)
    return built
