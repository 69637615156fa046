"""Choose an area of England and derive its tables from the imported national files.

``build`` resolves the area to LSOA 2021 codes, then writes, in one transaction:

- ``small_areas``: one row per LSOA with names, local authority, sub-ICB and ICB, population,
  IMD 2025, rural-urban class, population-weighted centroid and boundary;
- ``sites``: the area's active organisations with coordinates (from the source, or from the
  postcode file), the LSOA each falls in (see ``place_in_lsoas``: boundaries where there are
  any, else the postcode file's LSOA or local authority and the nearest LSOA centroid), and a
  list of those that could not be geocoded;
- ``site_placement``: per kind, how many sites were placed in an LSOA and how, and how many were
  not and why (not geocoded, outside the area, too far from any centroid), kept or left out;
- ``practices``: each GP practice with its latest list size, GP and nurse FTE, age mix and the
  deprivation of its registered population.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree

from nearcare._errors import InputError, StoreError
from nearcare.geo import BNG, from_wkb, to_bng
from nearcare.store import Store


@dataclass
class BuildResult:
    area_code: str
    area_kind: str
    label: str
    lsoas: int
    sites: dict[str, int]
    ungeocoded: pd.DataFrame
    placement: pd.DataFrame  # kind, outcome, in_sites, sites: how each kind was placed, and why any were not
    notes: list[str] = field(default_factory=list)


ENGLAND = ("england", "E92000001")  # the word and the ONS code for England
EACH_ICB = "each-icb"  # not an area: the CLI runs its command once per ICB (see ``each_icb``)


def each_icb(store: Store) -> list[tuple[str, str]]:
    """(NHS code, name) of every ICB in the imported lookup, in code order."""
    _require_lookup(store)
    rows = store.df(
        "SELECT DISTINCT icb_code, icb_name FROM lsoa_nhs_lookup WHERE icb_code IS NOT NULL ORDER BY 1"
    )
    return list(zip(rows["icb_code"], rows["icb_name"].fillna(rows["icb_code"]), strict=True))


def _require_lookup(store: Store) -> None:
    store.require(
        "lsoa_nhs_lookup",
        "import the ONS LSOA to sub-ICB to ICB lookup first (nearcare import lsoa-nhs-lookup)",
    )


def resolve_area(store: Store, area: str) -> tuple[str, str, list[str]]:
    """Return (kind, label, LSOA 2021 codes) for England, ICBs, sub-ICBs, local authorities or LSOAs.

    ``area`` is ``england`` (or ``E92000001``: every LSOA in the lookup), an NHS code (``QK1``,
    ``03W``), an ONS code (``E54000015``, ``E38000051``, ``E06000017``), several of these
    comma-separated (``QK1,QWO``: their LSOAs together), a comma-separated list of LSOA codes, or a
    path to a file of LSOA codes. Unknown codes are refused together, by name.
    """
    area = area.strip()
    if area == EACH_ICB:
        raise InputError(f"{EACH_ICB!r} runs a command once per ICB; it is not one area")
    path = Path(area)
    if path.suffix in (".csv", ".txt") or (path.exists() and path.is_file()):
        if not path.exists():
            raise InputError("no such file of LSOA codes", path=path)
        codes = re.findall(r"E01\d{6}", path.read_text())
        return "lsoa-list", f"{len(codes)} LSOAs from {path.name}", _known_lsoas(store, codes, str(path))
    parts = list(dict.fromkeys(c.strip() for c in area.split(",") if c.strip()))
    if not parts:
        raise InputError("--area is empty", value=area)
    if all(p.startswith("E01") for p in parts):
        return "lsoa-list", f"{len(parts)} LSOAs", _known_lsoas(store, parts, "--area")
    _require_lookup(store)
    found = {p: _resolve_code(store, p) for p in parts if not p.startswith("E01")}
    unknown = [p for p, hit in found.items() if hit is None]
    if unknown:
        raise InputError(
            f"{len(unknown)} of {len(parts)} area codes given ({', '.join(unknown)}): each matches no ICB, "
            "sub-ICB location or local authority in the imported lookups (use england, an NHS code like QK1 "
            "or 03W, an ONS code like E54000015 or E06000017, or LSOA codes)",
            value=unknown[0],
        )
    lsoas = [p for p in parts if p.startswith("E01")]
    resolved = [hit for hit in found.values() if hit is not None]
    if len(parts) == 1:
        return resolved[0]
    codes = sorted(
        set(_known_lsoas(store, lsoas, "--area") if lsoas else []).union(*(h[2] for h in resolved))
    )
    labels = [label for _, label, _ in resolved] + ([f"{len(lsoas)} LSOAs"] if lsoas else [])
    return "areas", " + ".join(labels), codes


def _resolve_code(store: Store, code: str) -> tuple[str, str, list[str]] | None:
    """(kind, label, LSOA codes) for one England, ICB, sub-ICB or local authority code; None if unknown."""
    if code.lower() == ENGLAND[0] or code == ENGLAND[1]:
        found = store.df("SELECT lsoa21_code FROM lsoa_nhs_lookup WHERE lsoa21_code LIKE 'E01%' ORDER BY 1")
        return ("england", "England", found["lsoa21_code"].tolist()) if len(found) else None
    for kind, column, name_column in (
        ("icb", "icb_code", "icb_name"),
        ("icb", "icb_ons_code", "icb_name"),
        ("sub-icb", "sub_icb_code", "sub_icb_name"),
        ("sub-icb", "sub_icb_ons_code", "sub_icb_name"),
    ):
        found = store.df(
            f"SELECT lsoa21_code, {name_column} AS label FROM lsoa_nhs_lookup WHERE {column} = ? ORDER BY 1",
            [code],
        )
        if len(found):
            return kind, str(found["label"].iloc[0] or code), found["lsoa21_code"].tolist()
    found = store.df(
        "SELECT DISTINCT lsoa21_code, lad_name FROM lsoa11_lsoa21 WHERE lad_code = ? ORDER BY 1", [code]
    )
    if len(found):
        return "local-authority", str(found["lad_name"].iloc[0] or code), found["lsoa21_code"].tolist()
    return None


def _known_lsoas(store: Store, codes: list[str], where: str) -> list[str]:
    if not codes:
        raise InputError("no LSOA codes given", path=where)
    bad = [c for c in codes if not re.fullmatch(r"E01\d{6}", c)]
    if bad:
        raise InputError("not an English LSOA code", path=where, value=bad[0])
    known = set(store.df("SELECT lsoa21_code FROM lsoa_nhs_lookup")["lsoa21_code"])
    if known:
        unknown = [c for c in codes if c not in known]
        if unknown:
            raise InputError(
                f"{len(unknown)} LSOA codes are not LSOA 2021 codes in the lookup",
                path=where,
                value=unknown[0],
            )
    return sorted(set(codes))


def _population(store: Store, lsoas: pd.DataFrame) -> tuple[pd.Series, str]:
    """Population per LSOA 2021, from 2021-based estimates or mapped from 2011-based ones."""
    latest = store.df("SELECT geography, max(year) AS year FROM population GROUP BY 1")
    if latest.empty:
        return pd.Series(np.nan, index=lsoas.index), "no population estimates imported"
    years = dict(zip(latest["geography"], latest["year"], strict=True))
    if "lsoa21" in years and years["lsoa21"] >= years.get("lsoa11", 0):
        pop = store.df(
            "SELECT lsoa_code, population FROM population WHERE geography = 'lsoa21' AND year = ?",
            [int(years["lsoa21"])],
        )
        return lsoas["lsoa21_code"].map(
            pop.set_index("lsoa_code")["population"]
        ), f"ONS mid-{years['lsoa21']} estimates (LSOA 2021)"
    year = int(years["lsoa11"])
    # Split 2011 areas share their population equally between the 2021 areas made from them;
    # merged areas add up. No finer weights are open at this level.
    mapped = store.df(
        """
        WITH pieces AS (SELECT lsoa11_code, count(*) AS n FROM lsoa11_lsoa21 GROUP BY 1)
        SELECT l.lsoa21_code, sum(p.population / pieces.n) AS population
        FROM lsoa11_lsoa21 l JOIN pieces USING (lsoa11_code)
        JOIN population p ON p.lsoa_code = l.lsoa11_code AND p.geography = 'lsoa11' AND p.year = ?
        GROUP BY 1
        """,
        [year],
    )
    if mapped.empty:
        raise StoreError("population estimates are on LSOA 2011: import the LSOA 2011 to 2021 lookup first")
    note = (
        f"ONS mid-{year} estimates on LSOA 2011, mapped to LSOA 2021 with the ONS lookup "
        "(a split area's population is shared equally between its parts)"
    )
    return lsoas["lsoa21_code"].map(mapped.set_index("lsoa21_code")["population"]), note


def _small_areas(store: Store, codes: list[str]) -> tuple[pd.DataFrame, list[str]]:
    notes: list[str] = []
    frame = pd.DataFrame({"lsoa21_code": codes})
    store.con.register("_area", frame)
    try:
        joined = store.df(
            """
            SELECT a.lsoa21_code,
                   coalesce(n.lsoa21_name, b.lsoa21_name) AS lsoa21_name,
                   l.lad_code, l.lad_name,
                   n.sub_icb_code, n.sub_icb_name, n.icb_code, n.icb_name,
                   i.imd_score, i.imd_rank, i.imd_decile, i.income_decile, i.employment_decile,
                   i.education_decile, i.health_decile, i.crime_decile, i.housing_decile, i.environment_decile,
                   r.ruc21_code, r.urban_rural,
                   c.lat AS centroid_lat, c.lon AS centroid_lon,
                   c.easting AS centroid_easting, c.northing AS centroid_northing,
                   b.boundary
            FROM _area a
            LEFT JOIN lsoa_nhs_lookup n USING (lsoa21_code)
            LEFT JOIN (SELECT lsoa21_code, any_value(lad_code) AS lad_code, any_value(lad_name) AS lad_name
                       FROM lsoa11_lsoa21 GROUP BY 1) l USING (lsoa21_code)
            LEFT JOIN imd i ON i.edition = 2025 AND i.lsoa_code = a.lsoa21_code
            LEFT JOIN rural_urban r USING (lsoa21_code)
            LEFT JOIN lsoa_centroids c ON c.lsoa_code = a.lsoa21_code
            LEFT JOIN lsoa_boundaries b USING (lsoa21_code)
            ORDER BY a.lsoa21_code
            """
        )
    finally:
        store.con.unregister("_area")
    joined["population"], population_note = _population(store, joined)
    notes.append(population_note)
    # An LSOA with no published centroid falls back to a point inside its boundary (said in notes).
    no_centroid = joined["centroid_lat"].isna() & joined["boundary"].notna()
    if no_centroid.any():
        points = shapely.point_on_surface(from_wkb(joined.loc[no_centroid, "boundary"].to_numpy()))
        joined.loc[no_centroid, "centroid_lon"] = shapely.get_x(points)
        joined.loc[no_centroid, "centroid_lat"] = shapely.get_y(points)
        e, n = to_bng(joined.loc[no_centroid, "centroid_lon"], joined.loc[no_centroid, "centroid_lat"])
        joined.loc[no_centroid, "centroid_easting"] = e
        joined.loc[no_centroid, "centroid_northing"] = n
        notes.append(
            f"{int(no_centroid.sum())} LSOAs have no published centroid; a point inside the boundary is used"
        )
    for column, what in (
        ("imd_decile", "IMD 2025"),
        ("population", "population estimate"),
        ("boundary", "boundary"),
        ("centroid_lat", "centroid"),
    ):
        missing = int(joined[column].isna().sum())
        if missing:
            notes.append(f"{missing} of {len(joined)} LSOAs have no {what}")
    return joined, notes


# Where no boundary places a site, the nearest LSOA 2021 population-weighted centroid does; farther
# than this from every centroid (a point offshore, in Scotland, or a bad coordinate) it is not placed.
# 10 km is twice the distance from any located LLR organisation to its own LSOA's centroid
# (at most 4.5 km, C82022 in rural Leicestershire); rural LSOAs elsewhere are larger, which is why the postcode
# file's local authority, when it has one, bounds the search instead (with no distance limit).
MAX_CENTROID_M = 10_000.0

PLACED_BY_BOUNDARY = "inside an LSOA boundary"
PLACED_BY_POSTCODE_LSOA = "the postcode file's LSOA"
PLACED_BY_LA_CENTROID = "nearest LSOA centroid in the postcode's local authority"
PLACED_BY_CENTROID = f"nearest LSOA centroid (within {MAX_CENTROID_M:,.0f} m)"
NOT_GEOCODED = (
    "not placed: not geocoded (postcode not in the postcode file); kept, as commissioned by the area"
)
OUTSIDE_KEPT = "not placed: stands outside the area; kept, as a GP practice commissioned by the area"
TOO_FAR_KEPT = (
    f"not placed: more than {MAX_CENTROID_M:,.0f} m from every LSOA centroid; kept, as commissioned "
    "by the area"
)
OUTSIDE_LEFT_OUT = "left out: commissioned by the area but stands outside it"


def _lsoa_centroids(store: Store, small_areas: pd.DataFrame) -> pd.DataFrame:
    """Every known LSOA 2021 centroid (the area's, and the rest of England's) with its local authority."""
    national = store.df(
        """
        SELECT c.lsoa_code AS lsoa21_code, c.easting, c.northing, l.lad_code
        FROM lsoa_centroids c
        JOIN (SELECT lsoa21_code FROM lsoa_nhs_lookup UNION SELECT lsoa21_code FROM lsoa11_lsoa21) k
          ON k.lsoa21_code = c.lsoa_code
        LEFT JOIN (SELECT lsoa21_code, any_value(lad_code) AS lad_code FROM lsoa11_lsoa21 GROUP BY 1) l
          ON l.lsoa21_code = c.lsoa_code
        """
    )
    own = small_areas[["lsoa21_code", "centroid_easting", "centroid_northing", "lad_code"]].rename(
        columns={"centroid_easting": "easting", "centroid_northing": "northing"}
    )
    frame = pd.concat([own, national[~national["lsoa21_code"].isin(own["lsoa21_code"])]], ignore_index=True)
    return frame[frame["easting"].notna() & frame["northing"].notna()].reset_index(drop=True)


def _nearest_centroid(
    centroids: pd.DataFrame, easting: np.ndarray, northing: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(LSOA code, distance in metres) of the nearest centroid to each point."""
    if centroids.empty:
        return np.full(len(easting), None, dtype=object), np.full(len(easting), np.inf)
    distance, index = cKDTree(centroids[["easting", "northing"]].to_numpy()).query(
        np.column_stack([easting, northing])
    )
    return centroids["lsoa21_code"].to_numpy()[index], distance


def place_in_lsoas(
    orgs: pd.DataFrame, small_areas: pd.DataFrame, centroids: pd.DataFrame
) -> tuple[pd.Series, pd.Series]:
    """The LSOA 2021 each located organisation stands in, and how that was decided.

    Returns (lsoa21_code, placed_by), indexed like ``orgs``. ``lsoa21_code`` is an LSOA code (in the
    area or not), ``"outside"`` where boundaries show the point is outside every area LSOA, or None
    where the point could not be placed. In order: a point inside an area LSOA's boundary; where
    every area LSOA has a boundary, any other point is outside. Otherwise, for the rest: the
    postcode file's LSOA 2021 column (ONSPD), else the nearest centroid among the LSOAs of the
    postcode's local authority (Code-Point's district, ONSPD's ``oslaua``), else the nearest centroid
    of all, if within ``MAX_CENTROID_M``.
    """
    lsoa = pd.Series(None, index=orgs.index, dtype=object)
    placed_by = pd.Series(None, index=orgs.index, dtype=object)
    located = orgs["lat"].notna() & orgs["lon"].notna()
    with_boundary = small_areas[small_areas["boundary"].notna()]
    if located.any() and len(with_boundary):
        polygons = gpd.GeoDataFrame(
            {"lsoa21_code": with_boundary["lsoa21_code"].to_numpy()},
            geometry=from_wkb(with_boundary["boundary"].to_numpy()),
            crs="EPSG:4326",
        )
        points = gpd.GeoDataFrame(
            {"row": orgs.index[located]},
            geometry=gpd.points_from_xy(orgs.loc[located, "lon"], orgs.loc[located, "lat"]),
            crs="EPSG:4326",
        )
        hits = gpd.sjoin(points, polygons, how="inner", predicate="within").drop_duplicates("row")
        lsoa.loc[hits["row"].to_numpy()] = hits["lsoa21_code"].to_numpy()
        placed_by.loc[hits["row"].to_numpy()] = PLACED_BY_BOUNDARY
    rest = located & lsoa.isna()
    if len(with_boundary) == len(small_areas):
        lsoa[rest] = "outside"
        return lsoa, placed_by
    # The postcode file's columns describe the address, whichever source gave the coordinates.
    from_file = rest & orgs["postcode_lsoa21_code"].notna()
    lsoa[from_file] = orgs.loc[from_file, "postcode_lsoa21_code"]
    placed_by[from_file] = PLACED_BY_POSTCODE_LSOA
    rest &= ~from_file
    easting, northing = to_bng(orgs["lon"].to_numpy(float), orgs["lat"].to_numpy(float))
    known_las = set(centroids["lad_code"].dropna())
    in_la = rest & orgs["postcode_lad_code"].isin(known_las)
    for la, rows in orgs[in_la].groupby("postcode_lad_code").groups.items():
        at = orgs.index.get_indexer(rows)
        codes, _ = _nearest_centroid(centroids[centroids["lad_code"] == la], easting[at], northing[at])
        lsoa[rows] = codes
        placed_by[rows] = PLACED_BY_LA_CENTROID
    rest &= ~in_la
    if rest.any():
        at = orgs.index.get_indexer(orgs.index[rest])
        codes, distance = _nearest_centroid(centroids, easting[at], northing[at])
        near = distance <= MAX_CENTROID_M
        lsoa[orgs.index[rest][near]] = codes[near]
        placed_by[orgs.index[rest][near]] = PLACED_BY_CENTROID
    return lsoa, placed_by


def _sites(store: Store, small_areas: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Active organisations in the area, geocoded and placed; returns (sites, ungeocoded, placement)."""
    orgs = store.df(
        """
        SELECT o.code, o.name, o.kind, o.status, o.postcode, o.sub_icb_code AS commissioner,
               o.icb_code, o.lat AS source_lat, o.lon AS source_lon,
               p.lat AS postcode_lat, p.lon AS postcode_lon, p.lsoa21_code AS postcode_lsoa21_code,
               p.lad_code AS postcode_lad_code, o.source_id
        FROM organisations o LEFT JOIN postcodes p USING (postcode)
        WHERE o.status = 'active'
        """
    )
    by_source = orgs["source_lat"].notna() & orgs["source_lon"].notna()
    by_postcode = ~by_source & orgs["postcode_lat"].notna()
    orgs["lat"] = np.where(by_source, orgs["source_lat"], orgs["postcode_lat"])
    orgs["lon"] = np.where(by_source, orgs["source_lon"], orgs["postcode_lon"])
    orgs["geocoded_by"] = pd.Series(None, index=orgs.index, dtype=object)
    orgs.loc[by_postcode, "geocoded_by"] = "postcode"
    orgs.loc[by_source, "geocoded_by"] = "source coordinates"

    located = orgs["lat"].notna()
    placed, placed_by = place_in_lsoas(orgs, small_areas, _lsoa_centroids(store, small_areas))
    inside = placed.isin(set(small_areas["lsoa21_code"]))
    elsewhere = placed.notna() & ~inside  # known to stand outside the area
    orgs["lsoa21_code"] = placed.where(inside, None)
    orgs["lsoa_placed_by"] = placed_by.where(inside, None)

    sub_icbs = set(small_areas["sub_icb_code"].dropna())
    icbs = set(small_areas["icb_code"].dropna())
    gp = orgs["kind"].isin(["gp", "branch"])
    # GP practices belong to their commissioning sub-ICB; other services to their ICB (as ODS records).
    commissioned = pd.Series(
        np.where(gp, orgs["commissioner"].isin(sub_icbs), orgs["icb_code"].isin(icbs)), index=orgs.index
    )
    # Organisations count where they stand; those whose place is unknown, and GP practices, by commissioner.
    in_area = inside | (commissioned & ~elsewhere) | (commissioned & gp)
    orgs["outcome"] = np.select(
        [in_area & inside, in_area & ~located, in_area & elsewhere, in_area, commissioned & elsewhere],
        [
            "placed: " + orgs["lsoa_placed_by"].fillna(""),
            NOT_GEOCODED,
            OUTSIDE_KEPT,
            TOO_FAR_KEPT,
            OUTSIDE_LEFT_OUT,
        ],
        default="",
    )
    placement = (
        orgs[orgs["outcome"] != ""]
        .assign(in_sites=in_area)
        .groupby(["kind", "outcome", "in_sites"])
        .size()
        .rename("sites")
        .reset_index()
        .sort_values(["kind", "in_sites", "outcome"], ascending=[True, False, False])
        .reset_index(drop=True)
    )
    sites = orgs[in_area].copy()
    area_sub_icb = small_areas.set_index("lsoa21_code")["sub_icb_code"]
    sites["sub_icb_code"] = np.where(
        sites["kind"].isin(["gp", "branch"]) & sites["commissioner"].notna(),
        sites["commissioner"],
        sites["lsoa21_code"].map(area_sub_icb),
    )
    e, n = to_bng(sites["lon"].to_numpy(), sites["lat"].to_numpy())
    located = sites["lat"].notna().to_numpy()
    sites["easting"] = np.where(located, e, np.nan)  # pyproj turns NaN into inf
    sites["northing"] = np.where(located, n, np.nan)
    columns = [
        "code",
        "name",
        "kind",
        "status",
        "postcode",
        "sub_icb_code",
        "lsoa21_code",
        "lat",
        "lon",
        "easting",
        "northing",
        "geocoded_by",
        "lsoa_placed_by",
        "source_id",
    ]
    sites = sites[columns].sort_values(["kind", "code"]).reset_index(drop=True)
    ungeocoded = sites[sites["lat"].isna()][["code", "name", "kind", "postcode"]].reset_index(drop=True)
    return sites, ungeocoded, placement


def placement_lines(placement: pd.DataFrame) -> list[str]:
    """One line per kind: how many sites were placed in an LSOA of the area, how, and why any were not."""
    lines = []
    for kind, rows in placement.groupby("kind", sort=True):
        kept = rows[rows["in_sites"]]
        placed = kept[kept["outcome"].str.startswith("placed: ")]
        parts = [f"{int(r['sites'])} {r['outcome'].removeprefix('placed: ')}" for _, r in placed.iterrows()]
        line = f"{kind}: {int(kept['sites'].sum())} sites, {int(placed['sites'].sum())} placed in an LSOA of the area"
        line += f" ({'; '.join(parts)})" if parts else ""
        for _, r in rows.drop(placed.index).iterrows():
            line += f"; {int(r['sites'])} {r['outcome']}"
        lines.append(line)
    return lines


def _practices(store: Store, sites: pd.DataFrame) -> pd.DataFrame:
    gps = sites[sites["kind"] == "gp"][["code", "name", "sub_icb_code"]].rename(
        columns={"code": "practice_code"}
    )
    store.con.register("_gps", gps)
    try:
        frame = store.df(
            """
            SELECT g.practice_code, g.name, g.sub_icb_code,
                   ls.patients, ls.extract_date AS list_size_date,
                   w.gp_fte, w.nurse_fte, w.year AS workforce_year,
                   a.pct_65_plus, a.mean_age, d.imd_score, d.imd_quintile_england
            FROM _gps g
            LEFT JOIN (SELECT * FROM gp_list_sizes
                       QUALIFY row_number() OVER (PARTITION BY practice_code ORDER BY extract_date DESC) = 1) ls
                   USING (practice_code)
            LEFT JOIN (SELECT * FROM gp_workforce
                       QUALIFY row_number() OVER (PARTITION BY practice_code ORDER BY year DESC) = 1) w
                   USING (practice_code)
            LEFT JOIN practice_age_mix a USING (practice_code)
            LEFT JOIN practice_deprivation d USING (practice_code)
            ORDER BY g.practice_code
            """
        )
    finally:
        store.con.unregister("_gps")
    frame["patients_per_gp_fte"] = np.where(frame["gp_fte"] > 0, frame["patients"] / frame["gp_fte"], np.nan)
    return frame


def build(store: Store, area: str) -> BuildResult:
    """Derive the area tables for ``area`` (see ``resolve_area``), replacing any earlier build."""
    kind, label, codes = resolve_area(store, area)
    small_areas, notes = _small_areas(store, codes)
    sites, ungeocoded, placement = _sites(store, small_areas)
    practices = _practices(store, sites)
    population_note = notes[0]
    with store.transaction() as con:
        for table in ("area", "small_areas", "sites", "site_placement", "practices"):
            con.execute(f"DELETE FROM {table}")
        store.insert(
            "area",
            pd.DataFrame(
                [
                    {
                        "area_code": area,
                        "area_kind": kind,
                        "label": label,
                        "built_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
                        "population_note": population_note,
                    }
                ]
            ),
        )
        store.insert("small_areas", small_areas)
        store.insert("sites", sites)
        store.insert("site_placement", placement)
        store.insert("practices", practices)
    counts = sites["kind"].value_counts().to_dict()
    if len(ungeocoded):
        notes.append(
            f"{len(ungeocoded)} organisations could not be geocoded (postcode not in the postcode file)"
        )
    notes += [f"sites placed: {line}" for line in placement_lines(placement)]
    return BuildResult(area, kind, label, len(small_areas), counts, ungeocoded, placement, notes)


def area_label(store: Store) -> str:
    row = store.df("SELECT label, area_code FROM area")
    if row.empty:
        raise StoreError(f"{store.path}: no area built yet (run `nearcare build --area CODE`)")
    return f"{row['label'].iloc[0]} ({row['area_code'].iloc[0]})"


def small_areas_frame(store: Store, columns: str = "*") -> gpd.GeoDataFrame:
    """The area's LSOAs as a GeoDataFrame in British National Grid."""
    frame = store.df(f"SELECT {columns}, boundary FROM small_areas WHERE boundary IS NOT NULL")
    geometry = from_wkb(frame.pop("boundary"))
    return gpd.GeoDataFrame(frame, geometry=geometry, crs="EPSG:4326").to_crs(BNG)
