"""Export any store table to CSV, GeoJSON or GeoParquet (chosen by the file's suffix).

A table with a ``boundary`` column exports its polygons; one with ``lat``/``lon`` exports points.
GeoJSON is always WGS84 (as the format requires); GeoParquet keeps WGS84 too, with its CRS stated.
A table with no locations can still be written as plain Parquet.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd

from nearcare._errors import InputError
from nearcare.geo import WGS84, from_wkb
from nearcare.store import Store

FORMATS = {".csv": "CSV", ".geojson": "GeoJSON", ".parquet": "GeoParquet"}


def _geo(frame: pd.DataFrame) -> gpd.GeoDataFrame | None:
    if isinstance(frame, gpd.GeoDataFrame) and frame.active_geometry_name is not None:
        return frame if frame.crs is None else frame.to_crs(WGS84)  # as the web's pages hold them
    if "boundary" in frame.columns:
        geometry = from_wkb(frame.pop("boundary"))
        return gpd.GeoDataFrame(frame, geometry=geometry, crs=WGS84)
    for lat, lon in (("lat", "lon"), ("centroid_lat", "centroid_lon")):
        if lat in frame.columns and lon in frame.columns:
            points = gpd.points_from_xy(frame[lon], frame[lat])
            shapes = [
                None if pd.isna(y) else p for p, y in zip(points, frame[lat], strict=True)
            ]  # unlocated: null
            return gpd.GeoDataFrame(frame, geometry=shapes, crs=WGS84)
    return None


def located(frame: pd.DataFrame) -> gpd.GeoDataFrame:
    """Rows as a GeoDataFrame (WGS84): polygons from ``boundary``, else points from ``lat``/``lon``."""
    geo = _geo(frame.copy())
    if geo is None:
        raise InputError("these rows have no locations (no boundary, no lat/lon)")
    return geo


def check_export_path(path: str | Path) -> Path:
    """The path, if its suffix names a format we write (check before doing the work)."""
    path = Path(path)
    if path.suffix not in FORMATS:
        raise InputError(f"unknown export format {path.suffix!r}; use one of {', '.join(FORMATS)}", path=path)
    return path


def export_table(store: Store, table: str, path: str | Path) -> int:
    """Write ``table`` to ``path``; return the number of rows written."""
    return write_frame(store.df(f'SELECT * FROM "{store._table(table)}"'), path, name=table)


# A text cell starting with one of these is run as a formula by spreadsheets (CSV injection): imported
# names and public defibrillator reports could carry one, so such cells are written with a leading '.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    text = [c for c in frame.columns if frame[c].dtype == object or pd.api.types.is_string_dtype(frame[c])]
    if not text:
        return frame
    safe = frame.copy()
    for column in text:
        safe[column] = [
            "'" + v if isinstance(v, str) and v.startswith(FORMULA_STARTS) else v for v in safe[column]
        ]
    return safe


def write_frame(frame: pd.DataFrame, path: str | Path, *, name: str = "the table") -> int:
    """Write rows to ``path`` as CSV, GeoJSON or GeoParquet; return the number of rows written."""
    path = check_export_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    geo = _geo(frame.copy())
    if path.suffix == ".csv":
        if isinstance(frame, gpd.GeoDataFrame):  # geometry as WKT, like ``boundary``
            frame = frame.to_wkt()
        elif "boundary" in frame.columns:
            frame = frame.assign(boundary=[None if g is None else g.wkt for g in from_wkb(frame["boundary"])])
        _spreadsheet_safe(frame).to_csv(tmp, index=False)
    elif path.suffix == ".geojson":
        if geo is None:
            raise InputError(f"{name} has no locations; export it as .csv or .parquet", path=path)
        geo.to_file(tmp, driver="GeoJSON", engine="pyogrio")
    elif geo is None:
        frame.to_parquet(tmp, index=False)
    else:
        geo.to_parquet(tmp, index=False)
    tmp.replace(path)  # a half-written export never stands under the real name
    return len(frame)
