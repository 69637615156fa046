"""OpenStreetMap extracts (``.pbf``): checked and recorded here, turned into networks by ``network``.

The file itself stays where the user keeps it (national extracts are gigabytes); the store keeps
its path and SHA-256 so that a later step can tell if it changed.
"""

from __future__ import annotations

from pathlib import Path

import osmium
import pandas as pd

from nearcare._errors import InputError
from nearcare.sources._importer import Importer, Parsed
from nearcare.store import file_sha256


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


IMPORTERS = [
    Importer(
        "osm",
        "OpenStreetMap extract (.pbf) for the travel-time networks",
        parse_osm,
        "OpenStreetMap contributors",
        "Open Database Licence 1.0",
    ),
]
