"""Small-area geography: postcodes, LSOA centroids and boundaries, and ONS lookups.

Column names differ between the ONS originals and common re-publications (for instance the
``geographr`` R package); each field lists the names it accepts.
"""

from __future__ import annotations

import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from nearcare._errors import InputError
from nearcare.geo import WGS84, in_england_box, to_bng, to_wgs84
from nearcare.sources import Importer, Parsed
from nearcare.sources._read import ENGLISH_LSOA_CODE, LSOA_CODE, ODS_CODE, POSTCODE, Field, read_rows, validate

ONS = "Office for National Statistics"
OS = "Ordnance Survey (Code-Point Open); Royal Mail; National Statistics"
OGL = "Open Government Licence v3.0"
# Codes of small areas in Scotland and Northern Ireland, which some UK-wide files include.
OTHER_NATIONS_AREA = r"S01\d{6}|95[A-Z]{2}\d{2}[A-Z]\d|N\d{8}"
# A local authority (district or unitary) in any UK nation, or the ONSPD's pseudo-codes for none.
LA_CODE = r"[ESWN]\d{8}|[ESWNL]99999999|M99999999"
CODEPOINT_COLUMNS = 10
GRID_REF_MISSING_QUALITY = "90"  # Code-Point positional quality: no coordinates


def _keep_english_and_welsh(path, names, rows, lines, column: int) -> tuple[list, list, int]:
    """Drop rows for areas in Scotland/Northern Ireland; any other code is checked by the caller."""
    other = re.compile(OTHER_NATIONS_AREA)
    kept = [(r, n) for r, n in zip(rows, lines) if not other.fullmatch(r[column].strip())]
    return [r for r, _ in kept], [n for _, n in kept], len(rows) - len(kept)


def parse_postcodes(path: Path) -> Parsed:
    """Postcode points from OS Code-Point Open (header-less CSV) or the ONS Postcode Directory."""
    names, rows, lines = read_rows(path, header=False)
    first = rows[0][0].strip().upper().replace(" ", "")
    if re.fullmatch(POSTCODE.replace(" ?", ""), first):
        if len(rows[0]) != CODEPOINT_COLUMNS:
            raise InputError(f"looks like Code-Point Open but has {len(rows[0])} columns, expected 10",
                             path=path, line=lines[0])
        no_grid = [i for i, r in enumerate(rows) if r[1].strip() == GRID_REF_MISSING_QUALITY]
        keep = sorted(set(range(len(rows))) - set(no_grid))
        rows = [rows[i] for i in keep]
        lines = [lines[i] for i in keep]
        frame = validate(path, names, rows, lines, [
            Field("postcode", 0, "postcode"),
            Field("easting", 2, "number"),
            Field("northing", 3, "number"),
            Field("lad_code", 8, "code", required=False, pattern=LA_CODE),
        ], key=["postcode"])
        frame["lsoa21_code"] = None
        notes = [f"{len(no_grid)} postcodes without coordinates were left out"] if no_grid else []
    else:
        names = [n.strip() for n in rows[0]]
        frame = validate(path, names, rows[1:], lines[1:], [
            Field("postcode", ("pcds", "pcd", "PCDS", "PCD"), "postcode"),
            Field("easting", ("oseast1m", "OSEAST1M", "east1m"), "number", required=False),
            Field("northing", ("osnrth1m", "OSNRTH1M", "north1m"), "number", required=False),
            Field("lsoa21_code", ("lsoa21", "LSOA21", "lsoa21cd"), "code", required=False, pattern=LSOA_CODE + "|" + OTHER_NATIONS_AREA),
            Field("lad_code", ("oslaua", "OSLAUA", "laua", "lad25cd", "lad24cd", "lad23cd", "lad22cd", "lad21cd"), "code",
                  required=False, pattern=LA_CODE),
        ], key=["postcode"])
        located = frame["easting"].notna() & frame["northing"].notna()
        notes = [f"{int((~located).sum())} postcodes without a grid reference were left out"] if (~located).any() else []
        frame = frame[located]
    bad = (frame["easting"] < 0) | (frame["easting"] > 700_000) | (frame["northing"] < 0) | (frame["northing"] > 1_300_000)
    if bad.any():
        row = frame[bad].iloc[0]
        raise InputError("grid reference outside Great Britain", path=path, line=int(row["_line"]),
                         field="easting/northing", value=f"{row['easting']}, {row['northing']}")
    lon, lat = to_wgs84(frame["easting"].to_numpy(), frame["northing"].to_numpy())
    frame = frame.assign(lon=lon, lat=lat)
    return Parsed({"postcodes": frame[["_line", "postcode", "easting", "northing", "lat", "lon", "lsoa21_code",
                                             "lad_code"]]},
                  None, notes)


def parse_lsoa_centroids(path: Path) -> Parsed:
    """LSOA population-weighted centroids, as latitude/longitude or as British National Grid x/y."""
    names, rows, lines = read_rows(path, header=True)
    code_options = ("LSOA21CD", "LSOA11CD", "LSOACD", "lsoa21cd", "lsoa11cd", "lsoa_code")
    code_col = next((names.index(c) for c in code_options if c in names), None)
    if code_col is None:
        raise InputError(f"missing column: one of {', '.join(code_options)}", path=path, line=1)
    rows, lines, skipped = _keep_english_and_welsh(path, names, rows, lines, code_col)
    has_xy = any(c in names for c in ("x", "X")) and not any(c in names for c in ("latitude", "LAT", "lat"))
    if has_xy:
        frame = validate(path, names, rows, lines, [
            Field("lsoa_code", names[code_col], "code", pattern=LSOA_CODE),
            Field("easting", ("x", "X"), "number"),
            Field("northing", ("y", "Y"), "number"),
        ], key=["lsoa_code"])
        lon, lat = to_wgs84(frame["easting"], frame["northing"])
        frame = frame.assign(lon=lon, lat=lat)
    else:
        frame = validate(path, names, rows, lines, [
            Field("lsoa_code", names[code_col], "code", pattern=LSOA_CODE),
            Field("lat", ("latitude", "LAT", "lat"), "number"),
            Field("lon", ("longitude", "LONG", "lon"), "number"),
        ], key=["lsoa_code"])
        easting, northing = to_bng(frame["lon"], frame["lat"])
        frame = frame.assign(easting=easting, northing=northing)
    outside = ~in_england_box(frame["lon"], frame["lat"])
    english = frame["lsoa_code"].str.startswith("E")
    if (outside & english).any():
        row = frame[outside & english].iloc[0]
        raise InputError("centroid lies outside England", path=path, line=int(row["_line"]),
                         field="latitude/longitude", value=f"{row['lat']}, {row['lon']}")
    notes = [f"{skipped} areas in Scotland or Northern Ireland were left out"] if skipped else []
    return Parsed({"lsoa_centroids": frame[["_line", "lsoa_code", "lat", "lon", "easting", "northing"]]}, None, notes)


def parse_lsoa_boundaries(path: Path) -> Parsed:
    """LSOA 2021 boundaries from GeoJSON, GeoPackage or shapefile (any CRS; stored in WGS84)."""
    if not path.exists():
        raise InputError("no such file", path=path)
    try:
        frame = gpd.read_file(path, engine="pyogrio")
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, ValueError) as exc:
        raise InputError(f"not a readable boundary file ({exc})", path=path) from None
    code_col = next((c for c in ("LSOA21CD", "lsoa21cd", "lsoa21_code") if c in frame.columns), None)
    if code_col is None:
        raise InputError(f"missing column LSOA21CD; the file has {', '.join(map(str, frame.columns))}", path=path)
    name_col = next((c for c in ("LSOA21NM", "lsoa21nm", "lsoa21_name") if c in frame.columns), None)
    if frame.crs is None:
        raise InputError("the file states no coordinate reference system", path=path)
    codes = frame[code_col].astype(str).str.strip()
    bad = ~codes.str.fullmatch(ENGLISH_LSOA_CODE)
    if bad.any():
        at = int(np.flatnonzero(bad)[0])
        raise InputError(f"feature {at + 1}: not an English LSOA 2021 code", path=path, field=code_col, value=codes.iloc[at])
    dup = codes.duplicated()
    if dup.any():
        at = int(np.flatnonzero(dup)[0])
        raise InputError(f"feature {at + 1}: duplicate LSOA code", path=path, field=code_col, value=codes.iloc[at])
    empty = frame.geometry.isna() | frame.geometry.is_empty
    if empty.any():
        at = int(np.flatnonzero(empty)[0])
        raise InputError(f"feature {at + 1}: no geometry", path=path, field="geometry", value=codes.iloc[at])
    geometry = frame.geometry.to_crs(WGS84)
    geometry = shapely.make_valid(geometry.to_numpy())
    out = pd.DataFrame({
        "lsoa21_code": codes.to_numpy(),
        "lsoa21_name": frame[name_col].to_numpy() if name_col else None,
        "boundary": shapely.to_wkb(geometry),
    })
    return Parsed({"lsoa_boundaries": out}, None)


def parse_lsoa_nhs_lookup(path: Path) -> Parsed:
    """ONS lookup of LSOA 2021 to sub-ICB location and ICB (ONS E38/E54 codes and NHS codes)."""
    names, rows, lines = read_rows(path, header=True)
    frame = validate(path, names, rows, lines, [
        Field("lsoa21_code", ("LSOA21CD", "lsoa21_code"), "code", pattern=ENGLISH_LSOA_CODE),
        Field("lsoa21_name", ("LSOA21NM", "lsoa21_name"), required=False),
        Field("sub_icb_ons_code", ("SICBL24CD", "SICBL23CD", "SICBL22CD", "sicbl24_code"), "code", pattern=r"E38\d{6}"),
        Field("sub_icb_code", ("SICBL24CDH", "SICBL23CDH", "SICBL22CDH", "sicbl24_code_nhs"), "code", pattern=ODS_CODE),
        Field("sub_icb_name", ("SICBL24NM", "SICBL23NM", "SICBL22NM", "sicbl24_name"), required=False),
        Field("icb_ons_code", ("ICB24CD", "ICB23CD", "ICB22CD", "icb24_code"), "code", pattern=r"E54\d{6}"),
        Field("icb_code", ("ICB24CDH", "ICB23CDH", "ICB22CDH", "icb24_code_nhs"), "code", pattern=ODS_CODE),
        Field("icb_name", ("ICB24NM", "ICB23NM", "ICB22NM", "icb24_name"), required=False),
    ], key=["lsoa21_code"])
    return Parsed({"lsoa_nhs_lookup": frame}, None)


def parse_lsoa11_lsoa21(path: Path) -> Parsed:
    """ONS best-fit lookup of LSOA 2011 to LSOA 2021 (with change codes) and local authority."""
    names, rows, lines = read_rows(path, header=True)
    frame = validate(path, names, rows, lines, [
        Field("lsoa11_code", ("LSOA11CD", "lsoa11_code"), "code", pattern=LSOA_CODE),
        Field("lsoa21_code", ("LSOA21CD", "lsoa21_code"), "code", pattern=LSOA_CODE),
        Field("change_code", ("CHGIND", "change_code"), "code", pattern="[USMX]"),
        Field("lsoa21_name", ("LSOA21NM", "lsoa21_name"), required=False),
        Field("lad_code", ("LAD22CD", "LAD23CD", "ltla22_code"), "code", required=False, pattern=r"[EW]0[6-9]\d{6}"),
        Field("lad_name", ("LAD22NM", "LAD23NM", "ltla22_name"), required=False),
    ], key=["lsoa11_code", "lsoa21_code"])
    return Parsed({"lsoa11_lsoa21": frame}, None)


def parse_rural_urban(path: Path) -> Parsed:
    """ONS 2021 Rural-Urban Classification of LSOAs."""
    names, rows, lines = read_rows(path, header=True)
    frame = validate(path, names, rows, lines, [
        Field("lsoa21_code", ("LSOA21CD", "lsoa21_code"), "code", pattern=LSOA_CODE),
        Field("ruc21_code", ("RUC21CD", "ruc21_code"), "code", pattern=r"[A-Z]{2,3}\d"),
        Field("classification", ("RUC21NM", "classification"), required=False),
        Field("urban_rural", ("Urban_rura", "ruc"), required=False),
    ], key=["lsoa21_code"])
    missing = frame["urban_rural"].isna()
    frame.loc[missing, "urban_rural"] = np.where(frame.loc[missing, "ruc21_code"].str.startswith("U"), "Urban", "Rural")
    return Parsed({"rural_urban": frame}, None)


IMPORTERS = [
    Importer("postcodes", "OS Code-Point Open CSV or ONS Postcode Directory: postcode points",
             parse_postcodes, OS, "OS OpenData licence (Open Government Licence v3.0)"),
    Importer("lsoa-centroids", "ONS LSOA population-weighted centroids", parse_lsoa_centroids, ONS, OGL),
    Importer("lsoa-boundaries", "ONS LSOA 2021 boundaries (GeoJSON, GeoPackage, shapefile)",
             parse_lsoa_boundaries, ONS, OGL + "; contains OS data (c) Crown copyright"),
    Importer("lsoa-nhs-lookup", "ONS LSOA 2021 to sub-ICB location to ICB lookup", parse_lsoa_nhs_lookup, ONS, OGL),
    Importer("lsoa11-lsoa21-lookup", "ONS LSOA 2011 to LSOA 2021 to local authority lookup",
             parse_lsoa11_lsoa21, ONS, OGL),
    Importer("rural-urban", "ONS Rural-Urban Classification 2021 by LSOA", parse_rural_urban, ONS, OGL),
]
