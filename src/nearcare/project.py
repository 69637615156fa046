"""The one Python API: ``nearcare.open(path) -> Project``.

A ``Project`` is a store (one DuckDB file: imported sources, their provenance and the derived area
tables) with a method for each thing nearcare answers. Methods return pandas DataFrames or
GeoDataFrames; those whose results belong in the store take ``save=``. The CLI and the web app call
only this class, so everything they show can be had from Python without SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import duckdb
import pandas as pd

from nearcare._errors import InputError, StoreError
from nearcare.store import SERVICE_KINDS, Store

if TYPE_CHECKING:
    import geopandas as gpd

    from nearcare.access import Catchment
    from nearcare.allocation import AllocationResult
    from nearcare.area import BuildResult
    from nearcare.defib import Coverage, Siting
    from nearcare.equity import EquityFigures
    from nearcare.hubs import HubPlan
    from nearcare.neighbourhoods import DesignCheck
    from nearcare.scenarios import Context, Merge, NewSite, Scenario, ScenarioResult
    from nearcare.sources import ImportResult
    from nearcare.workforce import WorkforceGap, WorkforceTrends

MODES = ("network", "crowfly")


def _kinds(kinds: str | Sequence[str] | None) -> list[str]:
    """None or 'all': every service kind; one kind or several as given."""
    if kinds is None or kinds == "all":
        return list(SERVICE_KINDS)
    return [kinds] if isinstance(kinds, str) else list(kinds)


def _mode(mode: str | None, profile: str) -> str | None:
    """The API's ``mode`` (network or crowfly; None: the network if stored). The stored spelling of
    a network run, its profile (walk or drive), is taken as ``network`` too."""
    if mode == profile:
        return "network"
    if mode is not None and mode not in MODES:
        raise InputError(f"mode must be network or crowfly, not {mode!r}")
    return mode


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
    # Analysis modules are imported inside the methods that use them, so that `import nearcare` (and
    # every CLI command) starts without loading SciPy, pyproj, spopt and matplotlib.

    def _rows(self, table: str, **equal: object) -> pd.DataFrame:
        """Rows of a store table where each named column equals the value (one of them, for a list).

        The facade's one way of reading rows back; ordered by every column, so results are stable.
        """
        clauses, params = [], []
        for column, value in equal.items():
            if isinstance(value, list | tuple):
                clauses.append(f'"{column}" IN ({", ".join("?" * len(value))})' if value else "FALSE")
                params += list(value)
            else:
                clauses.append(f'"{column}" = ?')
                params.append(value)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        return self.store.df(f'SELECT * FROM "{self.store._table(table)}"{where} ORDER BY ALL', params)

    @contextmanager
    def _saved(self, save: bool) -> Iterator[None]:
        """Run an analysis that stores its results; with ``save=False`` its writes are undone.

        The analysis' own transaction joins an outer one, which is rolled back after the caller has
        read the results inside the ``with`` block: the store is left exactly as it was.
        """
        if save:
            yield
            return
        if self.read_only:
            raise StoreError(
                f"{self.path} is open read-only; open it writable to compute results (save=False still "
                "stages them in a transaction that is then undone)"
            )
        store = self.store

        @contextmanager
        def joined() -> Iterator[duckdb.DuckDBPyConnection]:
            yield store.con

        store.con.begin()
        vars(store)["transaction"] = joined  # the instance attribute shadows Store.transaction
        try:
            yield
        finally:
            del vars(store)["transaction"]
            store.con.rollback()

    def _lsoas_of(self, lad: str | None, lsoas: Sequence[str] | None) -> list[str] | None:
        """The built area's LSOAs in local authority ``lad`` (or ``lsoas`` as given; None: all)."""
        if lad is None:
            return None if lsoas is None else list(lsoas)
        codes = self._rows("small_areas", lad_code=lad)["lsoa21_code"].tolist()
        if not codes:
            raise InputError("no LSOAs of that local authority in the built area", value=lad)
        return codes

    # -- importing and building

    def import_files(
        self,
        kind: str,
        paths: str | Path | Sequence[str | Path],
        *,
        data_date: str | None = None,
        **options: object,
    ) -> ImportResult:
        """Validate public files of ``kind`` (see ``import_kinds()``) and import them, all or nothing.

        ``options`` are the kind's own (``year=``, ``geography=`` for population files).
        """
        # lazy: start-up time
        from nearcare.sources import import_files

        paths = [paths] if isinstance(paths, str | Path) else list(paths)
        try:
            return import_files(self.store, kind, paths, data_date=data_date, **options)
        except TypeError as exc:  # an option this kind does not take
            raise InputError(f"{kind} does not take that option ({exc})") from None

    def import_fetched(
        self, folder: str | Path, *, log: Callable[[str], object] = print
    ) -> list[ImportResult]:
        """Import every file ``nearcare fetch`` put in ``folder`` (see ``nearcare.fetch``), kind by kind."""
        from nearcare.fetch import import_fetched  # lazy: start-up time

        return import_fetched(self.store, Path(folder), log=log)

    def build(self, area: str) -> BuildResult:
        """Derive the area's small areas, sites and practices (an ICB, sub-ICB, LAD or LSOA codes)."""
        # lazy: start-up time
        from nearcare.area import build

        return build(self.store, area)

    def icbs(self) -> list[tuple[str, str]]:
        """(NHS code, name) of every ICB in the imported lookup: what ``--area each-icb`` runs over."""
        # lazy: start-up time
        from nearcare.area import each_icb

        return each_icb(self.store)

    def areas_to_run(self, area: str) -> list[str]:
        """The areas a command runs for, in turn: every ICB's code for ``each-icb``, else ``[area]``."""
        # lazy: start-up time
        from nearcare.area import EACH_ICB

        return [code for code, _ in self.icbs()] if area.strip() == EACH_ICB else [area]

    def area_label(self) -> str:
        """'NHS Leicester, Leicestershire and Rutland ICB (QK1)': the built area."""
        # lazy: start-up time
        from nearcare.area import area_label

        return area_label(self.store)

    def build_networks(
        self, profiles: str | Sequence[str] = ("walk", "drive"), *, walk_speed_kph: float = 4.8
    ) -> pd.DataFrame:
        """Build and store the walk and/or drive networks from the latest imported OSM extract.

        One row per profile: nodes and edges kept, those dropped outside the largest strongly
        connected part, and (drive) the access-way edges and the drive nodes they join at.
        """
        # lazy: start-up time
        from nearcare.network import MODES, build_networks

        profiles = (profiles,) if isinstance(profiles, str) else tuple(profiles)
        for profile in profiles:
            if profile not in MODES:
                raise InputError(f"profile must be walk or drive, not {profile!r}")
        built = build_networks(self.store, profiles, walk_speed_kph=walk_speed_kph)
        return pd.DataFrame(
            [
                {
                    "profile": n.mode,
                    "nodes": n.n_nodes,
                    "edges": len(n.source),
                    "dropped_nodes": n.dropped_nodes,
                    "dropped_edges": n.dropped_edges,
                    "access_edges": None if n.access is None else len(n.access.source),
                    "access_gates": None if n.access is None else int((n.access.gate >= 0).sum()),
                }
                for n in built
            ]
        ).astype({"access_edges": "Int64", "access_gates": "Int64"})  # walk: no access ways (<NA>)

    # -- the built area

    def small_areas(self) -> gpd.GeoDataFrame:
        """The area's LSOAs (2021) with population, IMD 2025 and their boundaries (WGS84)."""
        return _located(self._rows("small_areas"))

    def sites(self, kind: str | Sequence[str] | None = None, *, code: str | None = None) -> gpd.GeoDataFrame:
        """Service sites (gp, branch, pharmacy, dentist, optometrist) as points in WGS84, of one kind or
        several (default all), or the one with ``code``; unlocated sites have no geometry."""
        equal: dict[str, object] = (
            {} if kind is None else {"kind": [kind] if isinstance(kind, str) else list(kind)}
        )
        if code is not None:
            equal["code"] = code
        return _located(self._rows("sites", **equal))

    def practices(self) -> pd.DataFrame:
        """GP practices with registered patients, GP FTE and patients per GP FTE."""
        return self._rows("practices")

    # -- travel times and access

    def travel_times(
        self,
        profile: str = "walk",
        kinds: str | Sequence[str] | None = None,
        *,
        max_minutes: float = 30.0,
        mode: str | None = None,
        max_snap_m: float = 1000.0,
        lsoas: Sequence[str] | None = None,
        save: bool = True,
        workers: int = 1,
        scheduler: object | None = None,
    ) -> pd.DataFrame:
        """Pairs (LSOA, site) within ``max_minutes`` for each kind of service (default all).

        ``profile`` is walk or drive; ``mode`` is ``network`` or ``crowfly`` (default: the network
        if one is stored). ``scheduler``: a dask.distributed address (or client) to route the
        network per local authority on, as tasks (the same pairs; see nearcare.distributed). ``.attrs["runs"]`` holds a record per kind: pairs, origins, and the LSOAs
        and sites too far from the network to join (left out, not guessed).
        """
        # lazy: start-up time
        from nearcare.travel import compute_travel_times

        kinds = _kinds(kinds)
        crowfly = {None: None, "crowfly": True, "network": False}[_mode(mode, profile)]
        with self._saved(save):
            results = compute_travel_times(
                self.store,
                profile,
                kinds,
                max_minutes=max_minutes,
                lsoas=None if lsoas is None else list(lsoas),
                max_snap_m=max_snap_m,
                crowfly=crowfly,
                workers=workers,
                scheduler=scheduler,
            )
            pairs = self._rows("travel_times", profile=profile, mode=results[0].mode, destination_kind=kinds)
        # One record per kind (plain dicts: pandas compares attrs when frames are combined).
        pairs.attrs["runs"] = [
            {"kind": r.kinds[0], **{k: v for k, v in vars(r).items() if k != "kinds"}} for r in results
        ]
        return pairs

    def nearest(
        self, profile: str = "walk", kind: str | None = None, *, mode: str | None = None
    ) -> pd.DataFrame:
        """Stored minutes from each LSOA to its nearest site of each kind."""
        stored = {None: None, "crowfly": "crowfly", "network": profile}[_mode(mode, profile)]
        equal: dict[str, object] = {"profile": profile}
        if kind is not None:
            equal["destination_kind"] = kind
        if stored is not None:
            equal["mode"] = stored
        return self._rows("nearest_services", **equal)

    def access(
        self,
        profile: str = "drive",
        *,
        kinds: str | Sequence[str] | None = None,
        mode: str | None = None,
        threshold_minutes: float | None = None,
        catchment: Catchment | None = None,
        decay: str = "step",
        zones: Sequence[tuple[float, float]] = (),
        save: bool = True,
    ) -> pd.DataFrame:
        """Access per LSOA and kind: minutes to the nearest, services within the threshold, E2SFCA.

        From stored travel times (``mode``: network or crowfly; default the network run if stored).
        The catchment is ``catchment``, or else one of the threshold (default 20 minutes' walk, 15
        minutes' drive; at least the last zone) with ``decay`` step, gaussian or gravity and step
        ``zones`` as (minutes, weight).
        """
        # lazy: start-up time
        from nearcare.access import DEFAULT_THRESHOLD_MINUTES, SERVICE_KINDS, compute_access
        from nearcare.access import Catchment as _Catchment

        if profile not in DEFAULT_THRESHOLD_MINUTES:
            raise InputError(f"profile must be walk or drive, not {profile!r}")
        threshold = threshold_minutes or DEFAULT_THRESHOLD_MINUTES[profile]
        if catchment is None:
            zones = tuple(zones)
            catchment = _Catchment(max(threshold, zones[-1][0]) if zones else threshold, decay, zones)
        stored = {None: None, "crowfly": "crowfly", "network": profile}[_mode(mode, profile)]
        with self._saved(save):
            results = compute_access(
                self.store,
                profile,
                mode=stored,
                kinds=SERVICE_KINDS if kinds is None else tuple(_kinds(kinds)),
                threshold_minutes=threshold,
                catchment=catchment,
            )
            return self._rows("access", profile=profile, mode=results[0].mode, kind=[r.kind for r in results])

    def estimated_gp_fte(self) -> pd.DataFrame:
        """Practices whose GP FTE was not used as reported (estimated from list size, or unknown)."""
        # lazy: start-up time
        from nearcare.access import estimated_gp_fte

        return estimated_gp_fte(self.store)

    # -- equity and allocation

    def equity(
        self,
        kind: str = "gp",
        profile: str = "drive",
        *,
        mode: str | None = None,
        measure: str = "e2sfca_need",
        sii_level: str = "decile",
    ) -> EquityFigures:
        """Inequality by deprivation of a stored access measure across LSOAs.

        ``measure``: e2sfca_need, e2sfca, nearest_minutes or services_within; ``sii_level``: decile
        (OHID's method) or lsoa. The result has ``deciles`` and ``quintiles`` frames, the
        concentration and slope indices, and ``verdict(what)``.
        """
        # lazy: start-up time
        from nearcare.equity import lsoa_equity

        stored = {None: None, "crowfly": "crowfly", "network": profile}[_mode(mode, profile)]
        return lsoa_equity(
            self.store, kind=kind, profile=profile, mode=stored, measure=measure, sii_level=sii_level
        )

    def equity_league(
        self,
        by: str = "icb",
        kind: str = "gp",
        profile: str = "drive",
        *,
        mode: str | None = None,
        measure: str = "e2sfca_need",
        sii_level: str = "decile",
        scheduler: object | None = None,
    ) -> pd.DataFrame:
        """Equity of an access measure per ICB, sub-ICB or local authority (``by``: icb, sub-icb,
        lad), ranked from where the inverse care law bites hardest, with the whole area last.
        ``scheduler``: a dask.distributed address (or client) to compute each unit's row there."""
        # lazy: start-up time
        from nearcare.equity import league_table

        stored = {None: None, "crowfly": "crowfly", "network": profile}[_mode(mode, profile)]
        return league_table(
            self.store,
            by=by,
            kind=kind,
            profile=profile,
            mode=stored,
            measure=measure,
            sii_level=sii_level,
            scheduler=scheduler,
        )

    def practice_equity(self, *, sii_level: str = "decile") -> EquityFigures:
        """GP FTE per 10,000 need-weighted patients across practices, by deprivation (``left_out``:
        the practices whose GP FTE is missing or implausible)."""
        # lazy: start-up time
        from nearcare.equity import practice_equity

        return practice_equity(self.store, sii_level=sii_level)

    def allocate(
        self,
        units: float,
        *,
        to: str = "practices",
        floor: float | None = None,
        cap: float | None = None,
        save: bool = True,
    ) -> AllocationResult:
        """Share ``units`` (FTE or money) among practices, lsoas or neighbourhoods in proportion to
        need, within ``floor`` and ``cap``; ``allocation`` is the frame, ``before``/``after`` the
        equity by deprivation quintile."""
        # lazy: start-up time
        from nearcare.allocation import allocate_units

        if floor is not None and cap is not None and floor > cap:
            raise InputError(f"the floor ({floor:g}) is more than the cap ({cap:g})")
        with self._saved(save):
            return allocate_units(self.store, units, to=to, floor=floor, cap=cap)

    # -- scenarios

    def scenario(
        self,
        scenario: str | Path | Scenario | None = None,
        *,
        close: Sequence[str] = (),
        merges: Sequence[Merge | tuple[str, str]] = (),
        openings: Sequence[NewSite] = (),
        name: str = "scenario",
        mode: str | None = None,
    ) -> ScenarioResult:
        """Before and after a closure, merger or new site: from a scenario file (TOML), a
        ``Scenario``, or site codes to ``close``, (from, into) practice ``merges`` and ``NewSite`` openings.

        ``mode``: network or crowfly (default crowfly if stored). A scenario file is recorded in
        ``provenance`` (kind ``scenario``) and the outputs name it. The result's frames: ``lsoas``,
        ``practices``, ``pharmacy``, ``pharmacy_distance``, ``newly_beyond``, ``unplaced``.
        """
        # lazy: start-up time
        from nearcare import scenarios

        if isinstance(scenario, str | Path):
            chosen = scenarios.load_scenario(scenario, self.store)
            result = scenarios.run_scenario(self.store, chosen, mode="drive" if mode == "network" else mode)
            if not self.read_only:  # a read-only store cannot record it; outputs still name the file
                scenarios.record_source(self.store, chosen)
            return result
        chosen = scenario or scenarios.Scenario(
            name,
            list(close),
            [m if isinstance(m, scenarios.Merge) else scenarios.Merge(*m) for m in merges],
            list(openings),
        )
        scenarios.check_scenario(self.store, chosen)
        return scenarios.run_scenario(self.store, chosen, mode="drive" if mode == "network" else mode)

    def write_scenario(self, result: ScenarioResult, out: str | Path) -> list[Path]:
        """Write a scenario's tables (CSV) and its before-and-after page (scenario.html) into ``out``."""
        # lazy: start-up time
        from nearcare.report import Report
        from nearcare.report.scenarios import scenario_section
        from nearcare.scenarios import write_outputs

        written = write_outputs(result, Path(out))
        report = Report(f"nearcare scenario: {result.scenario.name}", "Before and after")
        report.add(scenario_section(self.store, result))
        written.append(report.write(Path(out) / "scenario.html"))
        return written

    def rank_closures(
        self, kind: str = "gp", *, mode: str | None = None, workers: int = 1, scheduler: object | None = None
    ) -> pd.DataFrame:
        """Score closing each GP practice (or pharmacy) alone, worst first (see ``scenarios.rank_closures``).

        ``scheduler``: a dask.distributed address (or client) to score the closures there, in
        batches; the table is the same as here."""
        # lazy: start-up time
        from nearcare.scenarios import rank_closures

        return rank_closures(
            self.store,
            kind,
            mode="drive" if mode == "network" else mode,
            workers=workers,
            scheduler=scheduler,
        )

    # -- workforce

    def workforce_trends(self, area: str | None = None) -> WorkforceTrends:
        """GP and nurse FTE and patients per FTE by year, need-weighted, with the change over 3 and 5
        years, per practice, sub-ICB, ICB and England (``area``: a sub-ICB or ICB code to narrow to)."""
        # lazy: start-up time
        from nearcare.workforce import trends

        return trends(self.store, area)

    def workforce_gap(
        self,
        area: str | None = None,
        *,
        patients_per_gp_fte: float | None = None,
        patients_per_nurse_fte: float | None = None,
        year: int | None = None,
    ) -> WorkforceGap:
        """GP and nurse FTE needed to reach a benchmark (England's need-weighted patients per FTE by
        default): total, per sub-ICB, per neighbourhood and per deprivation quintile."""
        # lazy: start-up time
        from nearcare.workforce import gap

        return gap(
            self.store,
            patients_per_gp_fte=patients_per_gp_fte,
            patients_per_nurse_fte=patients_per_nurse_fte,
            year=year,
            area=area,
        )

    def practices_at_risk(
        self,
        area: str | None = None,
        *,
        closures: bool = True,
        patients_per_gp_fte: float | None = None,
        workers: int = 1,
    ) -> tuple[pd.DataFrame, list[str]]:
        """Practices scored on the documented rules (``nearcare.workforce``), each with its reasons, and
        notes; ``closures`` also scores what closing each practice would do (crow-fly closure ranking)."""
        # lazy: start-up time
        from nearcare.scenarios import rank_closures
        from nearcare.workforce import practices_at_risk

        ranked = rank_closures(self.store, "gp", mode="crowfly", workers=workers) if closures else None
        return practices_at_risk(
            self.store, closures=ranked, patients_per_gp_fte=patients_per_gp_fte, area=area
        )

    # -- defibrillators

    def import_defibrillators(self, path: str | Path | None = None) -> int:
        """Defibrillators from a CSV export (documented columns), or else from the latest imported OSM
        extract; replaces that source's list (reports are kept). Returns how many. The rows carry the
        ``source_id`` of their file in ``provenance`` (a CSV: kind ``defibrillator-csv``)."""
        # lazy: start-up time
        from nearcare import defib

        if path is not None:
            return defib.import_defibrillator_csv(self.store, path)
        return defib.import_osm_defibrillators(self.store)

    def report_defibrillator(
        self,
        *,
        access: str,
        hours: str,
        lat: float | None = None,
        lon: float | None = None,
        postcode: str | None = None,
        looks_registered: bool | None = None,
        note: str | None = None,
    ) -> tuple[str, bool]:
        """A public sighting: matched to a known defibrillator within 50 m, or added; (id, matched)."""
        # lazy: start-up time
        from nearcare import defib

        return defib.add_report(
            self.store, defib.Report(lat, lon, postcode, access, hours, looks_registered, note)
        )

    def defibrillators(self, *, unregistered: bool = False) -> pd.DataFrame:
        """The register: every known defibrillator (WGS84 points) with status, reports and expired
        parts; ``unregistered=True``: those not on The Circuit, to pass to the ambulance service."""
        # lazy: start-up time
        from nearcare import defib

        frame = defib.unregistered(self.store) if unregistered else defib.register(self.store)
        return _located(frame) if {"lat", "lon"} <= set(frame.columns) else frame

    def defib_coverage(
        self, *, lad: str | None = None, lsoas: Sequence[str] | None = None, distance_m: float = 200.0
    ) -> Coverage:
        """Residents within ``distance_m`` walk of an available public defibrillator, by day, evening
        and night (``people`` and ``by_lsoa`` frames; those off the walking network not assessed)."""
        # lazy: start-up time
        from nearcare import defib

        return defib.coverage(self.store, lsoas=self._lsoas_of(lad, lsoas), distance_m=distance_m)

    def defib_deserts(
        self,
        time: str = "night",
        *,
        coverage: Coverage | None = None,
        lad: str | None = None,
        lsoas: Sequence[str] | None = None,
        distance_m: float = 200.0,
    ) -> pd.DataFrame:
        """LSOAs where nobody assessed lives within reach of an available defibrillator at ``time``
        (day, evening or night), by deprivation-weighted priority."""
        # lazy: start-up time
        from nearcare import defib

        if time not in defib.TIMES:
            raise InputError("time must be day, evening or night", value=time)
        if coverage is None:
            coverage = self.defib_coverage(lad=lad, lsoas=lsoas, distance_m=distance_m)
        return defib.deserts(coverage, time)

    def defib_sites(
        self,
        k: int,
        *,
        lad: str | None = None,
        lsoas: Sequence[str] | None = None,
        distance_m: float = 200.0,
        time: str = "night",
        solver: object = None,
    ) -> tuple[Siting, Coverage]:
        """The best ``k`` new sites among candidate hosts, exactly and greedily (``siting.chosen``)."""
        # lazy: start-up time
        from nearcare import defib

        return defib.best_sites(
            self.store, k, lsoas=self._lsoas_of(lad, lsoas), distance_m=distance_m, time=time, solver=solver
        )

    # -- neighbourhoods

    def design_neighbourhoods(
        self,
        *,
        min_population: float = 30_000,
        max_population: float = 50_000,
        boundary: str = "sub-icb",
        seed: int = 0,
        save: bool = True,
    ) -> pd.DataFrame:
        """Group contiguous LSOAs into neighbourhoods of ``min_population`` or more (max-p, spopt),
        within ``boundary`` (sub-icb, lad or none); lsoa21_code -> neighbourhood."""
        # lazy: start-up time
        from nearcare.neighbourhoods import design

        if min_population > max_population:
            raise InputError(
                f"the minimum population ({min_population:g}) is more than the maximum ({max_population:g})"
            )
        with self._saved(save):
            return design(
                self.store,
                min_population=min_population,
                max_population=max_population,
                boundary=boundary,
                seed=seed,
            )

    def load_neighbourhoods(self, path: str | Path) -> pd.DataFrame:
        """Your own neighbourhoods: a CSV of lsoa21_code,neighbourhood or practice_code,neighbourhood."""
        # lazy: start-up time
        from nearcare.neighbourhoods import load

        return load(self.store, path)

    def neighbourhoods(self) -> pd.DataFrame:
        """The stored neighbourhoods: lsoa21_code, neighbourhood, method."""
        return self._rows("neighbourhoods")

    def check_neighbourhoods(
        self, *, min_population: float = 30_000, max_population: float = 50_000, boundary: str = "sub-icb"
    ) -> DesignCheck:
        """How the stored neighbourhoods meet each constraint (``neighbourhoods`` frame, ``summary``)."""
        # lazy: start-up time
        from nearcare.neighbourhoods import check

        return check(
            self.store, min_population=min_population, max_population=max_population, boundary=boundary
        )

    def neighbourhood_profiles(
        self, ratios: dict[str, float] | str | None = None
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Per neighbourhood, its profile and a suggested team in proportion to need; ``ratios``
        changes staff per 10,000 need-weighted people (``{"paramedics": 0.8}`` or 'paramedics=0.8')."""
        # lazy: start-up time
        from nearcare.neighbourhoods import TEAM_PER_10K_NEED, parse_ratios, profiles

        if isinstance(ratios, str):
            ratios = parse_ratios(ratios)
        elif ratios is not None:
            unknown = sorted(set(ratios) - set(TEAM_PER_10K_NEED))
            if unknown:
                raise InputError(
                    f"unknown profession; known: {', '.join(TEAM_PER_10K_NEED)}", value=unknown[0]
                )
            ratios = {**TEAM_PER_10K_NEED, **ratios}
        return profiles(self.store, ratios)

    def neighbourhood_hubs(
        self,
        per_neighbourhood: int = 1,
        *,
        candidates: str | Path = "practices",
        max_minutes: float | None = None,
        profile: str = "drive",
        mode: str | None = None,
        solver: object = None,
    ) -> HubPlan:
        """Where each neighbourhood's hub(s) should stand: the p-median of need-weighted minutes over
        ``candidates`` (practices, sites or a CSV of points), exactly and greedily, optionally all
        within ``max_minutes`` (``hubs``, ``lsoas``, ``neighbourhoods`` frames; see ``nearcare.hubs``)."""
        # lazy: start-up time
        from nearcare.hubs import choose_hubs

        return choose_hubs(
            self.store,
            per_neighbourhood=per_neighbourhood,
            candidates=candidates,
            max_minutes=max_minutes,
            profile=profile,
            mode=_mode(mode, profile),
            solver=solver,  # any PuLP solver (typed loosely: PuLP loads lazily)
        )

    # -- report, export, tables

    def report(self, path: str | Path = "report.html") -> Path:
        """Write the HTML report of everything the store holds results for."""
        # lazy: start-up time
        from nearcare.report import area_report

        return area_report(self.store).write(Path(path))

    def export(self, table: str | pd.DataFrame, path: str | Path, *, name: str | None = None) -> int:
        """Write a store table (or a frame) to .csv, .geojson or .parquet (GeoParquet); rows written."""
        # lazy: start-up time
        from nearcare.export import export_table, write_frame

        if isinstance(table, str):
            return export_table(self.store, table, path)
        return write_frame(table, path, name=name or "the table")

    def tables(self) -> pd.DataFrame:
        """The store's tables and their row counts."""
        names = self.store.tables()
        return pd.DataFrame({"table": names, "rows": [self.store.count(n) for n in names]})

    def table(self, name: str) -> pd.DataFrame:
        """A whole store table."""
        return self._rows(name)

    # -- what the web app's pages show

    AREA_ACCESS_MEASURES = ("nearest_minutes", "e2sfca_need")  # access columns that can colour the area map

    def area(self) -> pd.DataFrame:
        """The built area: ``area_code``, ``area_kind``, ``label`` (no rows before ``build``)."""
        return self.store.df("SELECT area_code, area_kind, label FROM area")

    def local_authorities(self) -> gpd.GeoDataFrame:
        """Local authority outlines of the built area (``lad_code``, ``lad_name``; WGS84), dissolved
        from the bundled LSOA boundaries, for context on maps without a tile server."""
        import geopandas as gpd  # lazy: start-up time

        from nearcare.geo import WGS84  # lazy: start-up time

        frame = self.store.df(
            "SELECT lad_code, any_value(lad_name) OVER (PARTITION BY lad_code) AS lad_name, boundary "
            "FROM small_areas WHERE lad_code IS NOT NULL ORDER BY lad_code"
        )
        if frame.empty:
            return gpd.GeoDataFrame(frame.drop(columns="boundary"), geometry=[], crs=WGS84)
        return _located(frame).dissolve("lad_code", aggfunc="first").reset_index()

    def area_counts(self) -> pd.DataFrame:
        """One row: ``lsoas`` and ``population`` of the built area."""
        return self.store.df(
            "SELECT count(*) AS lsoas, coalesce(sum(population), 0) AS population FROM small_areas"
        )

    def site_counts(self) -> pd.DataFrame:
        """Sites in the area by ``kind`` (column ``sites``)."""
        return self.store.df("SELECT kind, count(*) AS sites FROM sites GROUP BY 1 ORDER BY 1")

    def practice(self, code: str) -> pd.DataFrame:
        """The ``practices`` row (list size, workforce, deprivation) of one GP practice; empty if none."""
        return self.store.df("SELECT * FROM practices WHERE practice_code = ?", [code])

    def access_runs(self) -> pd.DataFrame:
        """The access measures stored: one row per ``kind``, ``profile`` and ``mode``."""
        return self.store.df("SELECT DISTINCT kind, profile, mode FROM access ORDER BY 1, 2, 3")

    def area_measure(self, measure: str) -> gpd.GeoDataFrame:
        """LSOA polygons with one measure as ``value``: ``imd_decile``, ``population`` or an access
        measure ``kind:profile:mode:column`` (column ``nearest_minutes`` or ``e2sfca_need``; null for
        the LSOAs it was not computed for)."""
        if measure in ("imd_decile", "population"):
            frame = self.store.df(
                f"SELECT lsoa21_code, lsoa21_name, {measure} AS value, boundary FROM small_areas ORDER BY 1"
            )
            return _located(frame)
        parts = measure.split(":")
        if len(parts) != 4 or parts[3] not in self.AREA_ACCESS_MEASURES:
            raise InputError(
                f"unknown measure {measure!r}: imd_decile, population or kind:profile:mode:column with column "
                f"one of {', '.join(self.AREA_ACCESS_MEASURES)}"
            )
        kind, profile, mode, column = parts
        frame = self.store.df(
            # every LSOA, null where the measure was not computed: the map says so rather than blanking
            f"SELECT s.lsoa21_code, s.lsoa21_name, a.{column} AS value, s.boundary FROM small_areas s "
            "LEFT JOIN access a ON a.lsoa21_code = s.lsoa21_code AND a.kind = ? AND a.profile = ? "
            "AND a.mode = ? ORDER BY 1",
            [kind, profile, mode],
        )
        return _located(frame)

    def practice_catchment(self, code: str, flows: pd.DataFrame | None = None) -> gpd.GeoDataFrame:
        """LSOAs a practice serves, with ``patients`` (real or modelled registrations, at least one).

        ``flows`` are patients per LSOA per practice (``nearcare.flows.patient_flows``); without them
        they are read or modelled here (pass them when asking about many practices)."""
        from nearcare.flows import patient_flows  # lazy: start-up time

        if flows is None:
            flows = patient_flows(self.store)[0]
        mine = flows[(flows["destination_id"] == code) & (flows["patients"] >= 1)]
        frame = self.store.df("SELECT lsoa21_code, lsoa21_name, boundary FROM small_areas ORDER BY 1").merge(
            mine[["origin_id", "patients"]].rename(columns={"origin_id": "lsoa21_code"}), on="lsoa21_code"
        )
        return _located(frame)

    SEARCH_KINDS = ("gp", "pharmacy", "dentist", "optometrist")  # what a name search finds, with LSOAs

    def search(self, query: str, *, limit: int = 20, nearby: int = 5) -> pd.DataFrame:
        """Services, LSOAs and postcodes matching ``query`` (a name, a code or a postcode), best first.

        Columns: ``kind`` (gp, pharmacy, dentist, optometrist, lsoa or postcode), ``code``, ``name``,
        ``postcode``, ``lsoa21_code``, ``lat``, ``lon`` and ``distance_km`` (straight line from a
        postcode found, for the ``nearby`` services of each kind listed after it; else null). At most
        ``limit`` name matches. A postcode is looked up in the store's postcodes table (spaces and case
        ignored); InputError for an empty or over-long query."""
        text = " ".join(query.split())
        if not text or len(text) > 80:
            raise InputError("a search is 1 to 80 characters: a name, a code or a postcode")
        if not 1 <= limit <= 100 or not 0 <= nearby <= 20:
            raise InputError("limit is 1 to 100 and nearby 0 to 20")
        kinds = list(self.SEARCH_KINDS)
        squashed = text.upper().replace(" ", "")
        found = self.store.df(
            "SELECT 'postcode' AS kind, postcode AS code, postcode AS name, postcode, lsoa21_code, lat, lon, "
            "easting, northing FROM postcodes WHERE replace(postcode, ' ', '') = ?",
            [squashed],
        )
        parts = [found.drop(columns=["easting", "northing"]).assign(distance_km=float("nan"))]
        if len(found) and nearby:
            place = found.iloc[0]
            parts.append(
                self.store.df(
                    "SELECT kind, code, name, postcode, lsoa21_code, lat, lon, "
                    "sqrt((easting - ?) ** 2 + (northing - ?) ** 2) / 1000 AS distance_km FROM sites "
                    "WHERE kind IN (SELECT unnest(?)) AND easting IS NOT NULL "
                    "QUALIFY row_number() OVER (PARTITION BY kind ORDER BY distance_km, code) <= ? "
                    "ORDER BY array_position(?, kind), distance_km, code",
                    [float(place["easting"]), float(place["northing"]), kinds, nearby, kinds],
                )
            )
        pattern = "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        parts.append(
            self.store.df(
                "SELECT kind, code, name, postcode, lsoa21_code, lat, lon, NULL::DOUBLE AS distance_km FROM ("
                "SELECT kind, code, name, postcode, lsoa21_code, lat, lon FROM sites WHERE kind IN (SELECT unnest(?)) "
                "UNION ALL SELECT 'lsoa', lsoa21_code, lsoa21_name, NULL, lsoa21_code, centroid_lat, centroid_lon "
                "FROM small_areas) WHERE upper(code) = ? OR lower(name) LIKE ? ESCAPE '\\' "
                "OR replace(upper(postcode), ' ', '') = ? "
                "ORDER BY upper(code) = ? DESC, lower(name) LIKE ? ESCAPE '\\' DESC, name, code LIMIT ?",
                [kinds, squashed, pattern, squashed, squashed, pattern[1:], limit],
            )
        )
        found = pd.concat([p for p in parts if len(p)] or parts[:1], ignore_index=True)
        return found.drop_duplicates(["kind", "code"]).reset_index(drop=True)  # nearby, and by postcode

    def scenario_context(self, mode: str | None = None) -> Context:
        """Travel times, patient flows and the choice model a scenario is evaluated with (read once)."""
        from nearcare import scenarios  # lazy: start-up time

        return scenarios.load_context(self.store, mode=mode)

    def check_scenario(self, scenario: Scenario, *, where: str = "scenario") -> None:
        """Raise InputError unless every site and practice the scenario names is in this store."""
        from nearcare import scenarios  # lazy: start-up time

        scenarios.check_scenario(self.store, scenario, where=where)

    def neighbourhood_shapes(self) -> gpd.GeoDataFrame:
        """Neighbourhoods as dissolved polygons (WGS84) with their ``population``; empty when none stored."""
        import geopandas as gpd  # lazy: start-up time

        from nearcare.geo import WGS84  # lazy: start-up time

        frame = self.store.df(
            "SELECT n.neighbourhood, s.population, s.boundary FROM neighbourhoods n "
            "JOIN small_areas s USING (lsoa21_code) ORDER BY 1"
        )
        if frame.empty:
            return gpd.GeoDataFrame(frame.drop(columns="boundary"), geometry=[], crs=WGS84)
        shapes = _located(frame).dissolve(by="neighbourhood", aggfunc={"population": "sum"})
        return shapes.reset_index()[["neighbourhood", "population", "geometry"]]


def import_kinds() -> pd.DataFrame:
    """The kinds of public file ``Project.import_files`` takes: kind, file, publisher, licence."""
    # lazy: start-up time
    from nearcare.sources import importers

    return pd.DataFrame(
        [
            {"kind": i.kind, "file": i.summary, "publisher": i.publisher, "licence": i.licence}
            for i in importers().values()
        ]
    )


def open(path: str | Path, *, read_only: bool = False) -> Project:  # nearcare.open, like io.open
    """Open (or create) the store at ``path``."""
    return Project(path, read_only=read_only)


def _located(frame: pd.DataFrame) -> gpd.GeoDataFrame:
    """Rows as a GeoDataFrame in WGS84 (``nearcare.export.located``)."""
    from nearcare.export import located  # lazy: geopandas loads on first use, not on `import nearcare`

    return located(frame)
