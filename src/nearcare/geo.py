"""Coordinate handling: WGS84 (EPSG:4326) and British National Grid (EPSG:27700).

pyproj has no OSTN15 grid offline, so conversions are good to about 2 m: ample for travel times
and catchments, and said in the README.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import shapely
from pyproj import Transformer

WGS84 = "EPSG:4326"
BNG = "EPSG:27700"

# A generous box around England in WGS84, used to refuse coordinates that are plainly elsewhere.
ENGLAND_LON = (-6.5, 2.0)
ENGLAND_LAT = (49.8, 55.9)


@cache
def _transformer(src: str, dst: str) -> Transformer:
    return Transformer.from_crs(src, dst, always_xy=True)


def to_bng(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Longitude/latitude (degrees) to easting/northing (metres)."""
    return _transformer(WGS84, BNG).transform(np.asarray(lon, float), np.asarray(lat, float))


def to_wgs84(easting: np.ndarray, northing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Easting/northing (metres) to longitude/latitude (degrees)."""
    return _transformer(BNG, WGS84).transform(np.asarray(easting, float), np.asarray(northing, float))


def in_england_box(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """True where a point lies in a box around England (a sanity check, not a boundary test)."""
    lon = np.asarray(lon, float)
    lat = np.asarray(lat, float)
    return (
        (lon >= ENGLAND_LON[0]) & (lon <= ENGLAND_LON[1]) & (lat >= ENGLAND_LAT[0]) & (lat <= ENGLAND_LAT[1])
    )


def normalise_postcode(raw: str) -> str:
    """Upper-case a UK postcode and put one space before the inward code ('le111es' -> 'LE11 1ES')."""
    compact = "".join(raw.split()).upper()
    if len(compact) < 5:
        return compact
    return f"{compact[:-3]} {compact[-3:]}"


def from_wkb(values) -> np.ndarray:
    """Shapely geometries from WKB as the store returns it (DuckDB gives BLOBs as bytearray)."""
    return shapely.from_wkb([None if v is None else bytes(v) for v in values])


def hilbert_order(easting: np.ndarray, northing: np.ndarray, cell_m: float = 1000.0) -> np.ndarray:
    """Positions of the points in the order of a Hilbert curve through ``cell_m`` squares (missing
    coordinates last): any run of them is a compact patch, with no long jumps (batches of
    neighbouring sites, ``scenarios.rank_closures``)."""
    easting, northing = np.asarray(easting, float), np.asarray(northing, float)
    located = np.isfinite(easting) & np.isfinite(northing)
    bits = 1
    x = np.zeros(len(easting), np.int64)
    y = np.zeros(len(easting), np.int64)
    if located.any():
        x[located] = (easting[located] - easting[located].min()) // cell_m
        y[located] = (northing[located] - northing[located].min()) // cell_m
        bits = max(1, int(max(x.max(), y.max())).bit_length())
    side = 1 << bits
    index = np.zeros(len(x), np.int64)
    s = side >> 1
    while s:  # the classic xy-to-distance walk, a bit of each coordinate at a time
        rx, ry = (x & s) > 0, (y & s) > 0
        index += s * s * ((3 * rx) ^ ry)
        flip = ~ry & rx
        x, y = np.where(flip, side - 1 - x, x), np.where(flip, side - 1 - y, y)
        x, y = np.where(ry, x, y), np.where(ry, y, x)
        s >>= 1
    index[~located] = side * side  # after every located point
    return np.argsort(index, kind="stable")
