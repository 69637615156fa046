"""The bundled Leicester, Leicestershire & Rutland (LLR) data: how it is made and how it is loaded.

``make_bundle`` imports the national public files with the ordinary importers, builds the QK1 area
and keeps, for each source table, only the rows that area needs; the result is a folder of Parquet
files, the Rutland OSM extract and a provenance table that names each original file.
``load_bundle`` puts those rows back into a store, so the demo runs on exactly what the importers
made of the real files.
"""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path

import pandas as pd

from nearcare._errors import StoreError
from nearcare.store import SOURCE_TABLES, Store

BUNDLE_AREA = "QK1"


def bundle_dir() -> Path:
    return Path(str(resources.files("nearcare") / "data" / "llr"))


# Which rows of each source table the area needs, as a SQL filter over the built store.
_AREA_FILTERS = {
    "organisations": "code IN (SELECT code FROM sites)",
    "postcodes": "TRUE",  # the whole postcode file given (LE area): reports and new sites need it
    "lsoa_boundaries": "lsoa21_code IN (SELECT lsoa21_code FROM small_areas)",
    "lsoa_centroids": "lsoa_code IN (SELECT lsoa21_code FROM small_areas) OR lsoa_code IN "
    "(SELECT lsoa11_code FROM lsoa11_lsoa21 WHERE lsoa21_code IN (SELECT lsoa21_code FROM small_areas))",
    "imd": "(edition = 2025 AND lsoa_code IN (SELECT lsoa21_code FROM small_areas)) OR (edition = 2019 AND lsoa_code IN "
    "(SELECT lsoa11_code FROM lsoa11_lsoa21 WHERE lsoa21_code IN (SELECT lsoa21_code FROM small_areas)))",
    "lsoa_nhs_lookup": "lsoa21_code IN (SELECT lsoa21_code FROM small_areas)",
    "lsoa11_lsoa21": "lsoa21_code IN (SELECT lsoa21_code FROM small_areas) OR lsoa11_code IN "
    "(SELECT lsoa11_code FROM lsoa11_lsoa21 WHERE lsoa21_code IN (SELECT lsoa21_code FROM small_areas))",
    "rural_urban": "lsoa21_code IN (SELECT lsoa21_code FROM small_areas)",
    "population": "lsoa_code IN (SELECT lsoa11_code FROM lsoa11_lsoa21 WHERE lsoa21_code IN "
    "(SELECT lsoa21_code FROM small_areas)) OR lsoa_code IN (SELECT lsoa21_code FROM small_areas)",
    "gp_list_sizes": "practice_code IN (SELECT practice_code FROM practices)",
    "gp_registrations_lsoa": "practice_code IN (SELECT practice_code FROM practices)",
    "gp_workforce": "practice_code IN (SELECT practice_code FROM practices)",
    "practice_age_mix": "practice_code IN (SELECT practice_code FROM practices)",
    "practice_deprivation": "practice_code IN (SELECT practice_code FROM practices)",
    "qof_prevalence": "practice_code IN (SELECT practice_code FROM practices)",
    "osm_extracts": "TRUE",
}


def make_bundle(store: Store, out: Path, *, england_workforce: pd.DataFrame | None = None) -> dict[str, int]:
    """Write the area's source rows from a built national ``store`` into ``out`` (Parquet), with
    England's workforce totals per year if given (``nearcare.workforce.england_workforce``)."""
    if store.count("small_areas") == 0:
        raise StoreError("build the area first")
    missing = set(SOURCE_TABLES) - set(_AREA_FILTERS) - {"provenance", "england_workforce"}
    assert not missing, f"no bundle filter for {missing}"
    out.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    for table, where in _AREA_FILTERS.items():
        frame = store.df(f"SELECT * FROM {table} WHERE {where}")
        if table == "osm_extracts":
            for path in frame["path"]:
                shutil.copyfile(path, out / Path(path).name)
            frame["path"] = frame["path"].map(lambda p: Path(p).name)
        frame.to_parquet(out / f"{table}.parquet", index=False, compression="zstd")
        counts[table] = len(frame)
    if england_workforce is not None:
        england_workforce.to_parquet(out / "england_workforce.parquet", index=False, compression="zstd")
        counts["england_workforce"] = len(england_workforce)
    provenance = store.df("SELECT * FROM provenance ORDER BY source_id")
    provenance["path"] = provenance["path"].map(lambda p: Path(p).name)
    provenance.to_parquet(out / "provenance.parquet", index=False, compression="zstd")
    (out / "manifest.json").write_text(json.dumps({"area": BUNDLE_AREA, "rows": counts}, indent=2) + "\n")
    return counts


def load_bundle(store: Store, folder: Path | None = None) -> dict[str, int]:
    """Load the bundled source rows into ``store`` in one transaction, replacing what it held."""
    folder = folder or bundle_dir()
    if not (folder / "manifest.json").exists():
        raise StoreError(f"{folder}: no bundled data here (manifest.json missing)")
    counts: dict[str, int] = {}
    with store.transaction() as con:
        for table in SOURCE_TABLES:
            con.execute(f"DELETE FROM {table}")
        for table in ("provenance", *_AREA_FILTERS, "england_workforce"):
            path = folder / f"{table}.parquet"
            if table == "england_workforce" and not path.exists():
                continue  # bundles made before England's workforce totals were kept
            frame = pd.read_parquet(path)
            if table == "osm_extracts":
                frame["path"] = frame["path"].map(lambda name: str(folder / name))
            if table == "provenance":
                frame["path"] = "bundled LLR subset of " + frame["path"]
            store.insert(table, frame)
            counts[table] = len(frame)
    return counts
