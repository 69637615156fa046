"""The one Python API: ``nearcare.open(path) -> Project``.

A ``Project`` is a store (one DuckDB file: imported sources, their provenance and the derived area
tables) with a method for each thing nearcare answers. Methods return pandas DataFrames or
GeoDataFrames; those whose results belong in the store take ``save=``. The CLI and the web app call
only this class, so everything they show can be had from Python without SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import geopandas as gpd
import pandas as pd

from nearcare import defib, equity, neighbourhoods, scenarios
from nearcare._errors import InputError
from nearcare.flows import patient_flows
from nearcare.geo import WGS84, from_wkb
from nearcare.store import Store


class Project:
    """One analysis store and the questions asked of it (see ``docs/API.md``)."""

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self.store = Store(self.path, read_only=read_only)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Project:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.store.__exit__(exc_type, exc, tb)

    def __repr__(self) -> str:
        return f"<nearcare.Project {str(self.path)!r}{' read-only' if self.read_only else ''}>"

    # ---- Atlas, access, equity, scenarios, neighbourhoods, defibrillators (facade helper) ----

    # ---- Queries the web app needs (web helper; keep below this line) ----

    AREA_ACCESS_MEASURES = ("nearest_minutes", "e2sfca_need")  # access columns that can colour the area map

    # web: a general reader; the facade may own one like it (reconcile at merge).
    def area(self) -> pd.DataFrame:
        """The built area: ``area_code``, ``area_kind``, ``label`` (no rows before ``build``)."""
        return self.store.df("SELECT area_code, area_kind, label FROM area")

    def area_counts(self) -> pd.DataFrame:
        """One row: ``lsoas`` and ``population`` of the built area."""
        return self.store.df(
            "SELECT count(*) AS lsoas, coalesce(sum(population), 0) AS population FROM small_areas"
        )

    def site_counts(self) -> pd.DataFrame:
        """Sites in the area by ``kind`` (column ``sites``)."""
        return self.store.df("SELECT kind, count(*) AS sites FROM sites GROUP BY 1 ORDER BY 1")

    # web: a general reader; the facade may own one like it (reconcile at merge).
    def sites(self, kind: str | Sequence[str] | None = None, *, code: str | None = None) -> gpd.GeoDataFrame:
        """Sites (GP practices, pharmacies, ...) as points in WGS84, by code; unlocated ones have no geometry."""
        kinds = [kind] if isinstance(kind, str) else list(kind or [])
        where, params = [], []
        if kinds:
            where.append(f"kind IN ({', '.join('?' * len(kinds))})")
            params += kinds
        if code is not None:
            where.append("code = ?")
            params.append(code)
        frame = self.store.df(
            "SELECT * FROM sites" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY code",
            params,
        )
        return _points(frame)

    def practice(self, code: str) -> pd.DataFrame:
        """The ``practices`` row (list size, workforce, deprivation) of one GP practice; empty if none."""
        return self.store.df("SELECT * FROM practices WHERE practice_code = ?", [code])

    def access_runs(self) -> pd.DataFrame:
        """The access measures stored: one row per ``kind``, ``profile`` and ``mode``."""
        return self.store.df("SELECT DISTINCT kind, profile, mode FROM access ORDER BY 1, 2, 3")

    def area_measure(self, measure: str) -> gpd.GeoDataFrame:
        """LSOA polygons with one measure as ``value``: ``imd_decile``, ``population`` or an access
        measure ``kind:profile:mode:column`` (column ``nearest_minutes`` or ``e2sfca_need``)."""
        if measure in ("imd_decile", "population"):
            frame = self.store.df(
                f"SELECT lsoa21_code, lsoa21_name, {measure} AS value, boundary FROM small_areas ORDER BY 1"
            )
            return _polygons(frame)
        parts = measure.split(":")
        if len(parts) != 4 or parts[3] not in self.AREA_ACCESS_MEASURES:
            raise InputError(
                f"unknown measure {measure!r}: imd_decile, population or kind:profile:mode:column with column "
                f"one of {', '.join(self.AREA_ACCESS_MEASURES)}"
            )
        kind, profile, mode, column = parts
        frame = self.store.df(
            f"SELECT s.lsoa21_code, s.lsoa21_name, a.{column} AS value, s.boundary FROM small_areas s "
            "JOIN access a USING (lsoa21_code) WHERE a.kind = ? AND a.profile = ? AND a.mode = ? ORDER BY 1",
            [kind, profile, mode],
        )
        return _polygons(frame)

    def practice_catchment(self, code: str, flows: pd.DataFrame | None = None) -> gpd.GeoDataFrame:
        """LSOAs a practice serves, with ``patients`` (real or modelled registrations, at least one).

        ``flows`` are patients per LSOA per practice (``nearcare.flows.patient_flows``); without them
        they are read or modelled here (pass them when asking about many practices)."""
        if flows is None:
            flows = patient_flows(self.store)[0]
        mine = flows[(flows["destination_id"] == code) & (flows["patients"] >= 1)]
        frame = self.store.df("SELECT lsoa21_code, lsoa21_name, boundary FROM small_areas ORDER BY 1").merge(
            mine[["origin_id", "patients"]].rename(columns={"origin_id": "lsoa21_code"}), on="lsoa21_code"
        )
        return _polygons(frame)

    def scenario_context(self, mode: str | None = None) -> scenarios.Context:
        """Travel times, patient flows and the choice model a scenario is evaluated with (read once)."""
        return scenarios.load_context(self.store, mode=mode)

    def check_scenario(self, scenario: scenarios.Scenario, *, where: str = "scenario") -> None:
        """Raise InputError unless every site and practice the scenario names is in this store."""
        scenarios.check_scenario(self.store, scenario, where=where)

    def equity_figures(
        self,
        *,
        kind: str = "gp",
        profile: str = "drive",
        mode: str | None = None,
        measure: str = "e2sfca_need",
    ) -> equity.EquityFigures:
        """Inequality of an access measure by deprivation (deciles, concentration and slope indices)."""
        return equity.lsoa_equity(self.store, kind=kind, profile=profile, mode=mode, measure=measure)

    def neighbourhood_shapes(self) -> gpd.GeoDataFrame:
        """Neighbourhoods as dissolved polygons (WGS84) with their ``population``; empty when none stored."""
        frame = self.store.df(
            "SELECT n.neighbourhood, s.population, s.boundary FROM neighbourhoods n "
            "JOIN small_areas s USING (lsoa21_code) ORDER BY 1"
        )
        if frame.empty:
            return gpd.GeoDataFrame(frame.drop(columns="boundary"), geometry=[], crs=WGS84)
        shapes = _polygons(frame).dissolve(by="neighbourhood", aggfunc={"population": "sum"})
        return shapes.reset_index()[["neighbourhood", "population", "geometry"]]

    def neighbourhood_check(self) -> neighbourhoods.DesignCheck:
        """How well the stored neighbourhoods meet each constraint (StoreError when none are stored)."""
        return neighbourhoods.check(self.store)

    def defib_register(self) -> gpd.GeoDataFrame:
        """Every known defibrillator (WGS84 points) with status, hours and report count."""
        return _points(defib.register(self.store))

    def unregistered_defibs(self) -> pd.DataFrame:
        """Known defibrillators not registered on The Circuit (to pass to the ambulance service)."""
        return defib.unregistered(self.store)

    def defib_cover(self) -> defib.Coverage:
        """Residents within reach of an available public defibrillator, by day, evening and night."""
        return defib.coverage(self.store)

    def add_defib_report(self, report: defib.Report) -> tuple[str, bool]:
        """Store a public report (matched to a known defibrillator within 50 m, or added): (id, matched).
        Checks the place against the store (postcode known, in England) and the hours; InputError if not."""
        return defib.add_report(self.store, report)


def open(path: str | Path, *, read_only: bool = False) -> Project:  # nearcare.open, like io.open
    """Open (or create) the store at ``path``."""
    return Project(path, read_only=read_only)


# web: frames to GeoDataFrames in WGS84 (the export module has its own; reconcile at merge).
def _polygons(frame: pd.DataFrame) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(frame.drop(columns="boundary"), geometry=from_wkb(frame["boundary"]), crs=WGS84)


def _points(frame: pd.DataFrame) -> gpd.GeoDataFrame:
    located = frame["lat"].notna() & frame["lon"].notna()
    geometry = gpd.points_from_xy(frame["lon"], frame["lat"])
    return gpd.GeoDataFrame(
        frame, geometry=[p if ok else None for p, ok in zip(geometry, located, strict=True)], crs=WGS84
    )
