"""OpenStreetMap for an area: choose Geofabrik county extracts by box, then cut area + buffer into one file.

The cut keeps every node inside the box, every way with at least one node inside it, and all the
nodes of those ways (so a road crossing the edge is kept whole and a journey leaving the area is
routed to its end); relations are left out (the walk and drive networks use ways only). With
several county extracts each is cut on its own and the cuts are merged, deduplicating the nodes
and ways that Geofabrik puts in both counties along a border. pyosmium does this in Python: for a
large area ``osmium extract`` (osmium-tool) is faster, and its output imports the same way.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import osmium

from nearcare._errors import InputError

Box = tuple[float, float, float, float]  # west, south, east, north in degrees (WGS84)
KM_PER_DEGREE_LAT = 111.32


def buffered(box: Box, buffer_km: float) -> Box:
    """``box`` widened by ``buffer_km`` on every side (degrees of longitude shrink with latitude)."""
    west, south, east, north = box
    dlat = buffer_km / KM_PER_DEGREE_LAT
    widest = max(abs(south), abs(north))
    dlon = buffer_km / (KM_PER_DEGREE_LAT * math.cos(math.radians(min(widest, 89.0))))
    return (west - dlon, south - dlat, east + dlon, north + dlat)


def regions_meeting(box: Box, regions: dict[str, Box]) -> list[str]:
    """The regions whose box meets ``box`` (touching counts), in name order."""
    west, south, east, north = box
    return sorted(
        name
        for name, (w, s, e, n) in regions.items()
        if w <= east and west <= e and s <= north and south <= n
    )


def _cut_one(source: Path, box: Box, out: Path) -> None:
    west, south, east, north = box
    tracker = osmium.IdTracker()
    for obj in osmium.FileProcessor(str(source), osmium.osm.NODE | osmium.osm.WAY):
        if isinstance(obj, osmium.osm.Node):
            where = obj.location
            if where.valid() and west <= where.lon <= east and south <= where.lat <= north:
                tracker.add_node(obj.id)
        elif tracker.contains_any_references(obj):
            tracker.add_way(obj.id)
    tracker.complete_backward_references(str(source))  # every node of a kept way
    header = osmium.io.Header()
    header.add_box(osmium.osm.Box(osmium.osm.Location(west, south), osmium.osm.Location(east, north)))
    with osmium.SimpleWriter(str(out), header=header) as writer:
        # Filter and writer are native handlers: the copy runs without a Python call per object.
        osmium.apply(
            str(source),
            osmium.filter.EntityFilter(osmium.osm.NODE | osmium.osm.WAY),
            tracker.id_filter(),
            writer,
        )


def cut_extract(sources: list[Path], box: Box, out: Path) -> Path:
    """Write the part of ``sources`` inside ``box`` to ``out`` (a .osm.pbf), atomically."""
    if not sources:
        raise InputError("no OpenStreetMap extract to cut", path=out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".cut-") as tmp:
        cuts = []
        for number, source in enumerate(sources):
            cut = Path(tmp) / f"cut{number}.osm.pbf"
            try:
                _cut_one(source, box, cut)
            except RuntimeError as exc:
                raise InputError(f"not a readable OpenStreetMap file ({exc})", path=source) from None
            cuts.append(cut)
        whole = Path(tmp) / "area.osm.pbf"
        if len(cuts) == 1:
            os.replace(cuts[0], whole)
        else:
            merged = osmium.MergeInputReader()
            for cut in cuts:
                merged.add_file(str(cut))
            header = osmium.io.Header()
            header.add_box(
                osmium.osm.Box(osmium.osm.Location(box[0], box[1]), osmium.osm.Location(box[2], box[3]))
            )
            with osmium.SimpleWriter(str(whole), header=header) as writer:
                merged.apply(writer)
        os.replace(whole, out)
    return out
