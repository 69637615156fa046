"""OpenStreetMap extracts (``.pbf``): checked and recorded here, turned into networks by ``network``.

The file itself stays where the user keeps it (national extracts are gigabytes); the store keeps
its path and SHA-256 so that a later step can tell if it changed. ``latest_extract`` names the one
every later step reads. This module also reads the features other steps take from an extract:
defibrillators (``defibrillator_nodes``) and amenities that could host one (``amenities``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import osmium
import pandas as pd

from nearcare._errors import InputError
from nearcare.sources._importer import Importer, Parsed
from nearcare.store import Store, file_sha256


@dataclass(frozen=True)
class Extract:
    """An imported OSM extract: its provenance id, where it is, and its SHA-256 when imported."""

    source_id: int
    path: Path
    sha256: str


def latest_extract(store: Store) -> Extract | None:
    """The most recently imported OSM extract, or None if none has been imported."""
    found = store.df("SELECT source_id, path, sha256 FROM osm_extracts ORDER BY source_id DESC LIMIT 1")
    if found.empty:
        return None
    row = found.iloc[0]
    return Extract(int(row["source_id"]), Path(row["path"]), str(row["sha256"]))


class _Counter(osmium.SimpleHandler):
    def __init__(self) -> None:
        super().__init__()
        self.highways = 0
        self.defibrillators = 0

    def way(self, w) -> None:
        if "highway" in w.tags:
            self.highways += 1

    def node(self, n) -> None:
        if n.tags.get("emergency") == "defibrillator":
            self.defibrillators += 1


def parse_osm(path: Path) -> Parsed:
    """Check that an OSM extract opens and has roads; record its extent and what it holds."""
    if not path.exists():
        raise InputError("no such file", path=path)
    if path.stat().st_size == 0:
        raise InputError("the file is empty", path=path)
    try:
        header = osmium.io.Reader(str(path), osmium.osm.osm_entity_bits.NOTHING).header()
        counter = _Counter()
        counter.apply_file(str(path))
    except RuntimeError as exc:
        raise InputError(f"not a readable OpenStreetMap file ({exc})", path=path) from None
    if counter.highways == 0:
        raise InputError("the extract has no roads or paths (no highway=* ways)", path=path)
    box = header.box()
    bounds = (
        (box.bottom_left.lon, box.bottom_left.lat, box.top_right.lon, box.top_right.lat)
        if box.valid()
        else (None,) * 4
    )
    stamp = header.get("osmosis_replication_timestamp") or None
    row = pd.DataFrame(
        [
            {
                "path": str(path.resolve()),
                "sha256": file_sha256(path),
                "min_lon": bounds[0],
                "min_lat": bounds[1],
                "max_lon": bounds[2],
                "max_lat": bounds[3],
                "highway_ways": counter.highways,
                "defibrillators": counter.defibrillators,
                "replication_time": stamp,
            }
        ]
    )
    return Parsed({"osm_extracts": row}, stamp)


DEFIBRILLATOR_COLUMNS = ["osm_id", "lat", "lon", "access", "hours", "outdoor", "location_note", "guardian"]


def defibrillator_nodes(path: Path) -> pd.DataFrame:
    """Defibrillators mapped in an extract (nodes tagged ``emergency=defibrillator``), as tagged.

    Columns: osm_id (node id), lat, lon, access (the ``access`` tag, or None), hours
    (``opening_hours``), outdoor (``indoor=no``, or in a phone box), location_note
    (``defibrillator:location`` or ``location``), guardian (``operator``).
    """
    rows = []
    try:
        for node in osmium.FileProcessor(str(path), osmium.osm.NODE).with_filter(
            osmium.filter.TagFilter(("emergency", "defibrillator"))
        ):
            if not isinstance(node, osmium.osm.Node):
                continue  # only nodes are read; this tells the type checker
            tags = dict(node.tags)
            outdoor = (
                tags.get("indoor") == "no"
                or tags.get("amenity") == "telephone"
                or "phone box" in tags.get("location", "").lower()
            )
            rows.append(
                {
                    "osm_id": node.id,
                    "lat": node.location.lat,
                    "lon": node.location.lon,
                    "access": tags.get("access"),
                    "hours": tags.get("opening_hours"),
                    "outdoor": bool(outdoor),
                    "location_note": tags.get("defibrillator:location") or tags.get("location"),
                    "guardian": tags.get("operator"),
                }
            )
    except RuntimeError as exc:
        raise InputError(f"not a readable OpenStreetMap file ({exc})", path=path) from None
    return pd.DataFrame(rows, columns=DEFIBRILLATOR_COLUMNS)


def amenities(path: Path, kinds: Iterable[str]) -> pd.DataFrame:
    """Nodes and ways tagged ``amenity`` = one of ``kinds``: site_id (osm-n<id> or osm-w<id>), name
    (the ``name`` tag, else the amenity), host (the amenity), lon, lat (a way's mean node position)."""
    wanted = set(kinds)
    rows = []
    processor = osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY).with_locations()
    for obj in processor.with_filter(osmium.filter.KeyFilter("amenity")):
        amenity = obj.tags.get("amenity")
        if amenity not in wanted:
            continue
        if isinstance(obj, osmium.osm.Node):
            lon, lat = obj.location.lon, obj.location.lat
        elif isinstance(obj, osmium.osm.Way):
            coords = [(n.location.lon, n.location.lat) for n in obj.nodes if n.location.valid()]
            if not coords:
                continue
            lon, lat = np.mean(coords, axis=0)
        else:
            continue
        rows.append(
            {
                "site_id": f"osm-{'n' if isinstance(obj, osmium.osm.Node) else 'w'}{obj.id}",
                "name": obj.tags.get("name", amenity),
                "host": amenity,
                "lon": lon,
                "lat": lat,
            }
        )
    return pd.DataFrame(rows, columns=["site_id", "name", "host", "lon", "lat"])


IMPORTERS = [
    Importer(
        "osm",
        "OpenStreetMap extract (.pbf) for the travel-time networks",
        parse_osm,
        "OpenStreetMap contributors",
        "Open Database Licence 1.0",
    ),
]
