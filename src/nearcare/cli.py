"""The ``nearcare`` command: a thin shell over the Python API."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable
from typer.core import TyperGroup
from typer.models import OptionInfo

from nearcare import __version__
from nearcare._errors import InputError, StoreError
from nearcare._format import figure as _figure
from nearcare._format import whole as _whole

if TYPE_CHECKING:
    import pandas as pd

    from nearcare.store import Store

console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)

StoreOption = Annotated[Path, typer.Option("--store", help="The analysis store (a DuckDB file).")]

# typer >= 0.20 vendors click, older versions use it: find click's base exception either way.
_ClickException = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def _fail(exc: Exception | str, code: int = 2) -> None:
    """End the command with one line on stderr (never a traceback) and exit code 2 (1 for a bug)."""
    errors.print("[bold red]error:[/] " + escape(" ".join(str(exc).split())), highlight=False, markup=True)
    raise typer.Exit(code=code)


class _Commands(TyperGroup):
    """Every command runs through here: bad input and bad options end in one line, exit code 2.

    An unexpected exception is a bug in nearcare, not the user's doing: it ends in one line and exit
    code 1, and ``nearcare --debug COMMAND`` (or NEARCARE_DEBUG=1) shows its traceback.
    """

    def invoke(self, ctx: typer.Context) -> object:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except typer.BadParameter as exc:  # a value typer itself could not read, e.g. --k nan
            allowed = getattr(exc.param, "callback", None) and getattr(exc.param.callback, "allowed", None)
            _fail(exc.format_message() + (f"; {allowed}" if allowed else ""))
        except _ClickException:
            raise  # usage errors: typer shows them with the command's usage
        except (
            InputError,
            StoreError,
            OSError,
            EOFError,
            UnicodeError,
        ) as exc:  # a path or file that cannot be read
            _fail(exc)
        except Exception as exc:
            if ctx.params.get("debug"):
                raise
            _fail(
                f"unexpected {type(exc).__name__}: {exc} (if your input looks right, this is a bug in nearcare: "
                "run again with `nearcare --debug ...` and report the traceback)",
                code=1,
            )


# nearcare.geo's box around England, repeated because importing geo (pyproj) slows every command; a test keeps them equal.
ENGLAND_LAT = (49.8, 55.9)
ENGLAND_LON = (-6.5, 2.0)

app = typer.Typer(
    cls=_Commands,
    add_completion=False,
    no_args_is_help=True,
    help="Plan primary care and neighbourhood health services in England from open data.",
)


def _number(
    help: str, low: float, high: float, *param_decls: str, above: bool = False, unit: str = ""
) -> OptionInfo:
    """A numeric option that must be finite and in [low, high] (or (low, high] with ``above``).

    Checked as the command line is read, so a bad value ends the command before the store is opened.
    """
    allowed = (
        f"allowed: more than {low:g} and at most {high:g}{unit}"
        if above
        else f"allowed: {low:g} to {high:g}{unit}"
    )

    def check(param: typer.CallbackParam, value: float | None) -> float | None:
        if value is None:
            return value
        if not (math.isfinite(value) and (value > low if above else value >= low) and value <= high):
            what = (
                "a whole number"
                if isinstance(value, int)
                else ("in range" if math.isfinite(value) else "a finite number")
            )
            _fail(f"{param.opts[-1]} must be {what}, {allowed} (got {value!r})")
        return value

    check.allowed = allowed
    return typer.Option(*param_decls, help=f"{help} ({allowed})", callback=check)


@contextmanager
def _opened(path: Path, *, read_only: bool = False) -> Iterator[Store]:
    """Open the store; a user's mistake (bad input, a missing step) ends the command with exit code 2."""
    # lazy: start-up time (`nearcare --help` stays quick)
    from nearcare.store import Store

    try:
        with Store(path, read_only=read_only) as store:
            yield store
    except (InputError, StoreError) as exc:
        _fail(exc)


_PEOPLE_COLUMN = re.compile(r"people|population|patients|residents")
_NOT_PEOPLE_COLUMN = re.compile(r"pct|per_|_per|share|rate|ratio")


def _frame_text(frame: pd.DataFrame) -> str:
    """A table for the terminal: people columns as whole numbers, other decimals to 4 significant digits."""
    from pandas.api.types import is_bool_dtype, is_float_dtype, is_numeric_dtype

    shown = frame.copy()
    for column in shown.columns:
        values = shown[column]
        if is_bool_dtype(values) or not is_numeric_dtype(values):
            continue
        if _PEOPLE_COLUMN.search(str(column)) and not _NOT_PEOPLE_COLUMN.search(str(column)):
            shown[column] = values.astype("float64").map(_whole)  # float64: a missing value is nan, not pd.NA
        elif is_float_dtype(values):
            shown[column] = values.astype("float64").map(_figure)
    return shown.to_string(index=False)


def _show_version(value: bool) -> None:
    if value:
        console.print(__version__)
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_show_version, help="Show the version and exit."),
    ] = False,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            envvar="NEARCARE_DEBUG",
            help="Show the traceback of an unexpected error (for bug reports).",
        ),
    ] = False,
) -> None:
    pass


@app.command("demo")
def demo(
    out: Annotated[Path, typer.Option(help="Folder for nearcare.duckdb and report.html.")] = Path(
        "demo-output"
    ),
) -> None:
    """Build a store from the bundled LLR data and write its report."""
    # lazy: start-up time (`nearcare --help` stays quick)
    from nearcare.demo import run_demo

    try:
        result = run_demo(out, log=console.print)
    except (InputError, StoreError) as exc:
        _fail(exc)
    console.print(f"Open {result.report_path.resolve()} in a browser.")


@app.command("import")
def import_(
    kind: Annotated[str, typer.Argument(help="What the file is; `nearcare kinds` lists them.")],
    files: Annotated[list[Path], typer.Argument(help="One or more files of that kind.")],
    store: StoreOption = Path("nearcare.duckdb"),
    data_date: Annotated[str | None, typer.Option(help="The data date, for files that state none.")] = None,
    year: Annotated[
        int | None,
        _number("Year of a population or workforce file, if its name does not say.", 1990, 2100),
    ] = None,
    geography: Annotated[str | None, typer.Option(help="lsoa11 or lsoa21, for population files.")] = None,
) -> None:
    """Validate public files and import them into the store (all or nothing)."""
    # lazy: start-up time (`nearcare --help` stays quick)
    from nearcare.sources import import_files

    options = {k: v for k, v in (("year", year), ("geography", geography)) if v is not None}
    with _opened(store) as opened:
        try:
            result = import_files(opened, kind, files, data_date=data_date, **options)
        except TypeError as exc:  # an option this kind does not take
            raise InputError(f"{kind} does not take that option ({exc})") from None
    for table, rows in result.rows.items():
        console.print(f"{kind}: {rows:,} rows into {table}")
    for note in result.notes:
        console.print(f"  note: {note}")


@app.command("kinds")
def kinds() -> None:
    """List the kinds of public file nearcare imports."""
    # lazy: start-up time (`nearcare --help` stays quick)
    from nearcare.sources import importers

    table = RichTable("kind", "file", "publisher", "licence")
    for imp in importers().values():
        table.add_row(imp.kind, imp.summary, imp.publisher, imp.licence)
    console.print(table)


@app.command("build")
def build_(
    area: Annotated[
        str,
        typer.Option(
            help="ICB (QK1, E54000015), sub-ICB (03W), local authority (E06000017), "
            "LSOA codes (comma-separated) or a file of LSOA codes."
        ),
    ],
    store: StoreOption = Path("nearcare.duckdb"),
) -> None:
    """Derive the area's small areas, sites and practices from the imported files."""
    # lazy: start-up time (`nearcare --help` stays quick)
    from nearcare.area import build

    with _opened(store) as opened:
        result = build(opened, area)
    console.print(
        f"built {result.label}: {result.lsoas} LSOAs; sites "
        + ", ".join(f"{k} {v}" for k, v in sorted(result.sites.items()))
    )
    for note in result.notes:
        console.print(f"  note: {note}")
    for _, row in result.ungeocoded.iterrows():
        console.print(f"  not geocoded: {row['kind']} {row['code']} {row['name']} ({row['postcode']})")


@app.command("network")
def network_(
    store: StoreOption = Path("nearcare.duckdb"),
    mode: Annotated[str, typer.Option(help="walk, drive or both.")] = "both",
    walk_speed_kph: Annotated[float, _number("Walking speed in km/h.", 1, 10, unit=" km/h")] = 4.8,
) -> None:
    """Build the walk and drive networks from the imported OpenStreetMap extract."""
    # lazy: start-up time (`nearcare --help` stays quick)
    from nearcare.network import MODES, build_networks

    if mode != "both" and mode not in MODES:
        _fail(InputError(f"--mode must be walk, drive or both, not {mode!r}"))
    with _opened(store) as opened:
        built = build_networks(opened, MODES if mode == "both" else (mode,), walk_speed_kph=walk_speed_kph)
    for network in built:
        console.print(
            f"{network.mode}: {network.n_nodes:,} nodes, {len(network.source):,} edges; dropped "
            f"{network.dropped_nodes:,} nodes and {network.dropped_edges:,} edges outside the largest "
            "strongly connected part"
        )
        if network.access is not None:
            console.print(
                f"  {len(network.access.source):,} access-way edges (private and access-only roads and "
                f"tracks) join points to it at {int((network.access.gate >= 0).sum()):,} drive nodes"
            )


@app.command("travel-times")
def travel_times_(
    store: StoreOption = Path("nearcare.duckdb"),
    mode: Annotated[str, typer.Option(help="walk or drive.")] = "walk",
    to: Annotated[str, typer.Option(help="gp, pharmacy, dentist, optometrist or all.")] = "all",
    max_minutes: Annotated[
        float, _number("Keep pairs within this many minutes.", 0, 300, above=True, unit=" minutes")
    ] = 30.0,
    max_snap_m: Annotated[
        float,
        _number(
            "Points farther than this from the network are reported, not joined.",
            0,
            20_000,
            above=True,
            unit=" m",
        ),
    ] = 1000.0,
    crowfly: Annotated[
        bool, typer.Option("--crowfly", help="Straight-line estimates even if a network is loaded.")
    ] = False,
    out: Annotated[
        Path | None, typer.Option(help="Also write the pairs to this .csv or .parquet file.")
    ] = None,
) -> None:
    """Travel times from every LSOA in the area to each service, within a cutoff, and the nearest."""
    # lazy: start-up time (`nearcare --help` stays quick)
    from nearcare.export import check_export_path, write_frame
    from nearcare.store import SERVICE_KINDS
    from nearcare.travel import compute_travel_times

    kinds = list(SERVICE_KINDS) if to == "all" else [to]
    with _opened(store) as opened:
        if out is not None:
            check_export_path(out)
        results = compute_travel_times(
            opened,
            mode,
            kinds,
            max_minutes=max_minutes,
            max_snap_m=max_snap_m,
            crowfly=True if crowfly else None,
        )
        if (
            out is not None
        ):  # the pairs of this run only (a crow-fly run and a network run may both be stored)
            pairs = opened.df(
                "SELECT * FROM travel_times WHERE profile = ? AND mode = ? AND destination_kind IN "
                f"({', '.join('?' * len(kinds))}) ORDER BY ALL",
                [mode, results[0].mode, *kinds],
            )
            write_frame(pairs, out, name="travel_times")
    for r in results:
        left_out = (
            ""
            if r.mode == "crowfly"
            else f"; {r.unsnapped_origins:,} LSOAs and {r.unsnapped_destinations:,} "
            "sites too far from the network were left out"
        )  # crow-fly estimates need no network
        console.print(
            f"{r.profile} to {r.kinds[0]} ({r.mode}): {r.pairs:,} pairs within {max_minutes:g} minutes "
            f"from {r.origins:,} LSOAs{left_out}"
        )
    if out is not None:
        console.print(f"wrote {out}")


def _zones(text: str | None) -> tuple[tuple[float, float], ...]:
    """'5:1,10:0.68,15:0.22' -> ((5, 1), (10, 0.68), (15, 0.22))."""
    if not text:
        return ()
    try:
        zones = tuple((float(b), float(w)) for b, w in (part.split(":") for part in text.split(",")))
    except ValueError:
        raise InputError("--zones is a list like 5:1,10:0.68,15:0.22 (minutes:weight)", value=text) from None
    if not all(0 < b <= 300 and 0 <= w <= 1 for b, w in zones):  # comparisons with nan are false: refused too
        raise InputError(
            "--zones needs minutes more than 0 and at most 300, and weights from 0 to 1", value=text
        )
    return zones


@app.command("access")
def access_(
    store: StoreOption = Path("nearcare.duckdb"),
    mode: Annotated[str, typer.Option(help="walk or drive.")] = "drive",
    crowfly: Annotated[
        bool, typer.Option("--crowfly", help="Use the crow-fly run even if a network run exists.")
    ] = False,
    threshold_minutes: Annotated[
        float | None,
        _number(
            "Threshold for 'services within' and the catchment (default 20 walk, 15 drive).",
            0,
            300,
            above=True,
            unit=" minutes",
        ),
    ] = None,
    decay: Annotated[str, typer.Option(help="E2SFCA distance decay: step, gaussian or gravity.")] = "step",
    zones: Annotated[
        str | None, typer.Option(help="Step zones as minutes:weight, e.g. 5:1,10:0.68,15:0.22.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Also write the measures to .csv or .parquet.")] = None,
) -> None:
    """Access per LSOA: minutes to the nearest, services within a threshold, E2SFCA."""
    # lazy: start-up time (`nearcare --help` stays quick)
    from nearcare.access import DEFAULT_THRESHOLD_MINUTES, Catchment, compute_access
    from nearcare.export import check_export_path, write_frame

    if mode not in DEFAULT_THRESHOLD_MINUTES:
        raise InputError(f"--mode must be walk or drive, not {mode!r}")
    parsed = _zones(zones)
    with _opened(store) as opened:
        if out is not None:
            check_export_path(out)
        threshold = threshold_minutes or DEFAULT_THRESHOLD_MINUTES[mode]
        catchment = Catchment(max(threshold, parsed[-1][0]) if parsed else threshold, decay, parsed)
        results = compute_access(
            opened,
            mode,
            mode="crowfly" if crowfly else None,
            threshold_minutes=threshold,
            catchment=catchment,
        )
        if out is not None:
            write_frame(
                opened.df(
                    "SELECT * FROM access WHERE profile = ? AND mode = ? ORDER BY ALL",
                    [mode, results[0].mode],
                ),
                out,
                name="access",
            )
    for r in results:
        console.print(
            f"{r.kind} ({r.profile}, {r.mode}): {r.lsoas:,} LSOAs; threshold {r.threshold_minutes:g} min; "
            f"supply {r.supply_measure}; {r.catchment.describe()}"
        )
        if r.estimated_fte is not None:
            _print_estimated_fte(r.estimated_fte)


def _print_estimated_fte(estimated) -> None:
    """The practices whose GP FTE was estimated (``nearcare.access.estimated_gp_fte``), one line each."""
    import pandas as pd

    if not len(estimated):
        return

    def number(value: float, spec: str) -> str:
        return "none" if pd.isna(value) else format(value, spec)

    console.print(
        f"GP FTE estimated from list size for {len(estimated)} practices (not reported, or not plausible):"
    )
    for r in estimated.itertuples():
        console.print(
            f"  {r.practice_code} {r.name}: {number(r.patients, ',.0f')} patients, reported GP FTE "
            f"{number(r.reported_gp_fte, 'g')}, estimated {number(r.estimated_gp_fte, '.2f')} ({r.reason})",
            markup=False,
            highlight=False,
        )


@app.command("equity")
def equity_(
    store: StoreOption = Path("nearcare.duckdb"),
    kind: Annotated[str, typer.Option(help="gp, pharmacy, dentist or optometrist.")] = "gp",
    mode: Annotated[str, typer.Option(help="walk or drive.")] = "drive",
    crowfly: Annotated[
        bool, typer.Option("--crowfly", help="Use the crow-fly access run even if a network run exists.")
    ] = False,
    measure: Annotated[
        str, typer.Option(help="e2sfca_need, e2sfca, nearest_minutes or services_within.")
    ] = "e2sfca_need",
    sii_level: Annotated[
        str,
        typer.Option(
            help="Slope index: 'decile' (OHID's method over IMD deciles; quintiles for "
            "practices) or 'lsoa' (fitted over every LSOA, or practice)."
        ),
    ] = "decile",
) -> None:
    """Inequality by deprivation of an access measure, and of GP FTE per need across practices."""
    # lazy: start-up time (`nearcare --help` stays quick)
    from nearcare.access import estimated_gp_fte
    from nearcare.equity import MEASURES, lsoa_equity, practice_equity

    with _opened(store, read_only=True) as opened:
        figures = lsoa_equity(
            opened,
            kind=kind,
            profile=mode,
            mode="crowfly" if crowfly else None,
            measure=measure,
            sii_level=sii_level,
        )
        estimated = estimated_gp_fte(opened)
        try:
            practices = practice_equity(opened, sii_level=sii_level)
        except StoreError as exc:
            practices, missing = None, str(exc)
    table = RichTable("IMD decile", "population", figures.measure, "standard error")
    for decile, row in figures.deciles.iterrows():
        table.add_row(str(decile), _whole(row["population"]), _figure(row["value"]), _figure(row["se"]))
    console.print(table)
    console.print(figures.verdict(f"{MEASURES[measure][0]} to {kind} services"))
    if practices is not None:
        console.print(practices.verdict("GP FTE per need-weighted patient"))
        if len(practices.left_out):
            console.print(
                f"practice level: {len(practices.left_out)} practices left out, their GP FTE not reported "
                "or not plausible (listed below)"
            )
    else:
        console.print(f"practice level: {missing}")
    _print_estimated_fte(
        estimated
    )  # the practice level (and GP access) use these estimates or leave them out


@app.command("allocate")
def allocate_(
    units: Annotated[float, _number("Units to share: staff FTE or money.", 0, 1e12, above=True)],
    to: Annotated[str, typer.Option(help="practices, lsoas or neighbourhoods.")] = "practices",
    floor: Annotated[float | None, _number("Least each target gets.", 0, 1e12)] = None,
    cap: Annotated[float | None, _number("Most each target gets.", 0, 1e12, above=True)] = None,
    store: StoreOption = Path("nearcare.duckdb"),
    out: Annotated[Path | None, typer.Option(help="Also write the allocation to .csv or .parquet.")] = None,
) -> None:
    """Share units in proportion to need, with optional floors and caps, and show the change in equity."""
    # lazy: start-up time (`nearcare --help` stays quick)
    from nearcare.allocation import allocate_units
    from nearcare.export import check_export_path, write_frame

    if floor is not None and cap is not None and floor > cap:
        raise InputError(f"--floor ({floor:g}) is more than --cap ({cap:g})")
    with _opened(store) as opened:
        if out is not None:
            check_export_path(out)
        result = allocate_units(opened, units, to=to, floor=floor, cap=cap)
        if out is not None:
            write_frame(result.allocation.reset_index(), out, name="allocation")
    table = RichTable("quintile (1 = most deprived)", f"{result.measure}: before", "after")
    for q in result.before.index:
        table.add_row(str(q), _figure(result.before[q]), _figure(result.after[q]))
    console.print(table)
    console.print(result.summary)
    if result.estimated_fte is not None:
        _print_estimated_fte(result.estimated_fte)


@app.command("scenario")
def scenario_(
    file: Annotated[
        str, typer.Argument(help="A scenario file (TOML), or 'rank' to rank every single closure.")
    ],
    store: StoreOption = Path("nearcare.duckdb"),
    out: Annotated[Path, typer.Option(help="Folder for the results (CSV and HTML).")] = Path(
        "scenario-output"
    ),
    close: Annotated[
        str, typer.Option(help="With 'rank': each-practice or each-pharmacy.")
    ] = "each-practice",
    mode: Annotated[
        str | None, typer.Option(help="crowfly, or the network run (drive); default crowfly if stored.")
    ] = None,
) -> None:
    """Model a closure, merger or new site (nearcare scenario FILE), or rank every closure (nearcare scenario rank)."""
    # lazy: start-up time (`nearcare --help` stays quick)
    from nearcare.report import Report
    from nearcare.report.scenarios import scenario_section
    from nearcare.scenarios import load_scenario, rank_closures, run_scenario, write_outputs

    with _opened(store) as opened:
        if file == "rank":
            kinds = {"each-practice": "gp", "each-pharmacy": "pharmacy"}
            if close not in kinds:
                raise InputError("--close must be each-practice or each-pharmacy", value=close)
            ranked = rank_closures(opened, kinds[close], mode=mode, workers=os.cpu_count() or 1)
            out.mkdir(parents=True, exist_ok=True)
            ranked.to_csv(out / f"ranked_{close}.csv", index=False)
            console.print(_frame_text(ranked.head(10)))
            if close == "each-pharmacy":
                console.print(
                    "pharmacies scored on walking minutes to the nearest pharmacy and the 1.6 km straight-line "
                    "distance"
                )
            console.print(f"wrote {out / f'ranked_{close}.csv'}")
            return
        scenario = load_scenario(file, opened)
        result = run_scenario(opened, scenario, mode=mode)
        written = write_outputs(result, out)
        report = Report(f"nearcare scenario: {scenario.name}", "Before and after")
        report.add(scenario_section(opened, result))
        written.append(report.write(out / "scenario.html"))
    console.print(f"{scenario.name}: {result.headline()}. Where patients go: {result.model.describe()}")
    for row in result.unplaced.itertuples():
        console.print(f"  unplaced: {_whole(row.patients)} patients of {row.practice_code}: {row.reason}")
    for path in written:
        console.print(f"wrote {path}")


defib_app = typer.Typer(
    no_args_is_help=True, help="Defibrillators: register, reports, coverage, deserts, new sites."
)
app.add_typer(defib_app, name="defib")


@defib_app.command("import")
def defib_import(
    file: Annotated[
        Path | None,
        typer.Argument(
            help="A defibrillator CSV (documented columns); omit to take them from the imported OSM extract."
        ),
    ] = None,
    store: StoreOption = Path("nearcare.duckdb"),
) -> None:
    """Import defibrillators from the OSM extract or a CSV export (replaces that source's list)."""
    # lazy: start-up time (`nearcare --help` stays quick)
    from nearcare import defib
    from nearcare.sources.osm import latest_extract

    with _opened(store) as opened:
        if file is None:
            extract = latest_extract(opened)
            if extract is None:
                raise StoreError(
                    "no OSM extract imported; give a CSV file or run `nearcare import osm FILE` first"
                )
            count = defib.import_defibrillators(
                opened, defib.parse_osm_defibrillators(extract.path), source="osm"
            )
            console.print(f"{count} defibrillators from OpenStreetMap")
        else:
            count = defib.import_defibrillators(
                opened, defib.parse_defibrillator_csv(file, opened), source="csv"
            )
            console.print(f"{count} defibrillators from {file}")


@defib_app.command("report")
def defib_report(
    access: Annotated[str, typer.Option(help="public or restricted.")],
    hours: Annotated[
        str, typer.Option(help="OpenStreetMap opening_hours: '24/7' or e.g. 'Mo-Fr 08:00-18:00'.")
    ],
    lat: Annotated[float | None, _number("Latitude (WGS84).", *ENGLAND_LAT, unit="°")] = None,
    lon: Annotated[float | None, _number("Longitude (WGS84).", *ENGLAND_LON, unit="°")] = None,
    postcode: Annotated[str | None, typer.Option(help="Postcode, instead of lat/lon.")] = None,
    looks_registered: Annotated[
        bool | None,
        typer.Option(
            "--looks-registered/--looks-unregistered", help="Whether it looks registered on The Circuit."
        ),
    ] = None,
    note: Annotated[str | None, typer.Option(help="Where it is, in words.")] = None,
    store: StoreOption = Path("nearcare.duckdb"),
) -> None:
    """Report a defibrillator sighting; it is matched to a known one within 50 m or added."""
    # lazy: start-up time (`nearcare --help` stays quick)
    from nearcare import defib

    with _opened(store) as opened:
        defib_id, matched = defib.add_report(
            opened, defib.Report(lat, lon, postcode, access, hours, looks_registered, note)
        )
    console.print(f"report added to {'known' if matched else 'new'} defibrillator {defib_id}")


@defib_app.command("list")
def defib_list(
    store: StoreOption = Path("nearcare.duckdb"),
    unregistered: Annotated[
        bool, typer.Option("--unregistered", help="Only those not registered on The Circuit.")
    ] = False,
    out: Annotated[
        Path | None, typer.Option(help="Also write the list to .csv, .geojson or .parquet.")
    ] = None,
) -> None:
    """List known defibrillators with status, reports and expired parts."""
    # lazy: start-up time (`nearcare --help` stays quick)
    from nearcare import defib
    from nearcare.export import check_export_path, write_frame

    with _opened(store, read_only=out is None) as opened:
        if out is not None:
            check_export_path(out)
        frame = defib.unregistered(opened) if unregistered else defib.register(opened)
        if out is not None:
            write_frame(frame, out, name="defibrillators")
    columns = ["defib_id", "status", "access", "hours", "reports", "pads_expired", "battery_expired"]
    shown = frame[columns].assign(hours=frame["hours"].fillna("not recorded"))
    console.print(_frame_text(shown) if len(frame) else "no defibrillators known")


def _lsoa_option(opened, lad: str | None) -> list[str] | None:
    if lad is None:
        return None
    codes = opened.df("SELECT lsoa21_code FROM small_areas WHERE lad_code = ?", [lad])["lsoa21_code"].tolist()
    if not codes:
        raise InputError("no LSOAs of that local authority in the built area", value=lad)
    return codes


@defib_app.command("deserts")
def defib_deserts(
    store: StoreOption = Path("nearcare.duckdb"),
    distance_m: Annotated[
        float, _number("Walking distance along paths.", 0, 500, above=True, unit=" m")
    ] = 200.0,
    time: Annotated[str, typer.Option(help="day, evening or night.")] = "night",
    lad: Annotated[str | None, typer.Option(help="Only this local authority (e.g. E06000017).")] = None,
) -> None:
    """LSOAs where nobody lives within walking distance of an available public defibrillator."""
    # lazy: start-up time (`nearcare --help` stays quick)
    from nearcare import defib

    if time not in defib.TIMES:
        _fail(InputError("--time must be day, evening or night", value=time))
    with _opened(store, read_only=True) as opened:
        cov = defib.coverage(opened, lsoas=_lsoa_option(opened, lad), distance_m=distance_m)
    found = defib.deserts(cov, time)
    for name in defib.TIMES:
        console.print(cov.summary(name))
    console.print(cov.not_assessed_note())
    console.print(
        f"{len(found):,} LSOAs are deserts at {time} (nobody assessed within {distance_m:g} m)"
        + (f"; the first {min(20, len(found))} of {len(found):,} deserts by priority:" if len(found) else "")
    )
    if len(found):
        columns = ["lsoa21_code", "people_assessed", "people_not_assessed", "imd_decile", "priority"]
        console.print(_frame_text(found[columns].head(20)))


@defib_app.command("site")
def defib_site(
    k: Annotated[int, _number("How many new defibrillators.", 1, 100, "--k")],
    store: StoreOption = Path("nearcare.duckdb"),
    distance_m: Annotated[
        float, _number("Walking distance along paths.", 0, 500, above=True, unit=" m")
    ] = 200.0,
    lad: Annotated[str | None, typer.Option(help="Only this local authority (e.g. E06000017).")] = None,
) -> None:
    """Choose k new sites among candidate hosts to cover the most people at night (exact and greedy)."""
    # lazy: start-up time (`nearcare --help` stays quick)
    from nearcare import defib

    with _opened(store, read_only=True) as opened:
        siting, cov = defib.best_sites(opened, k, lsoas=_lsoa_option(opened, lad), distance_m=distance_m)
    console.print(_frame_text(siting.chosen[["site_id", "name", "host", "marginal_people"]]))
    console.print(f"{cov.not_assessed_note()}; no site is chosen for them")
    console.print(
        f"exact: {_whole(siting.exact_people)} people newly covered; greedy: {_whole(siting.greedy_people)} "
        f"(gap {100 * siting.gap:.1f}%)"
    )


neighbourhood_app = typer.Typer(no_args_is_help=True, help="Design or load neighbourhoods and profile them.")
app.add_typer(neighbourhood_app, name="neighbourhoods")


def _print_neighbourhoods(opened, min_population: float, max_population: float, boundary: str) -> None:
    # lazy: start-up time (`nearcare --help` stays quick)
    from nearcare.neighbourhoods import check

    result = check(opened, min_population=min_population, max_population=max_population, boundary=boundary)
    console.print(_frame_text(result.neighbourhoods))
    console.print(result.summary)


@neighbourhood_app.command("design")
def neighbourhoods_design(
    store: StoreOption = Path("nearcare.duckdb"),
    min_population: Annotated[float, _number("Least people in a neighbourhood.", 1, 10_000_000)] = 30_000,
    max_population: Annotated[
        float, _number("Most people in a neighbourhood (reported if exceeded).", 1, 10_000_000)
    ] = 50_000,
    boundary: Annotated[str, typer.Option(help="Do not cross: sub-icb, lad or none.")] = "sub-icb",
) -> None:
    """Group contiguous LSOAs into neighbourhoods of a target population (max-p, PySAL spopt)."""
    # lazy: start-up time (`nearcare --help` stays quick)
    from nearcare.neighbourhoods import design

    if min_population > max_population:
        raise InputError(
            f"--min-population ({min_population:g}) is more than --max-population ({max_population:g})"
        )
    with _opened(store) as opened:
        design(opened, min_population=min_population, max_population=max_population, boundary=boundary)
        _print_neighbourhoods(opened, min_population, max_population, boundary)


@neighbourhood_app.command("load")
def neighbourhoods_load(
    file: Annotated[
        Path, typer.Argument(help="CSV of lsoa21_code,neighbourhood or practice_code,neighbourhood.")
    ],
    store: StoreOption = Path("nearcare.duckdb"),
) -> None:
    """Load your own neighbourhoods (or practice groupings such as PCNs), validated."""
    # lazy: start-up time (`nearcare --help` stays quick)
    from nearcare.neighbourhoods import DEFAULT_MAX_POPULATION, DEFAULT_MIN_POPULATION, load

    with _opened(store) as opened:
        load(opened, file)
        _print_neighbourhoods(opened, DEFAULT_MIN_POPULATION, DEFAULT_MAX_POPULATION, "sub-icb")


@neighbourhood_app.command("profile")
def neighbourhoods_profile(
    store: StoreOption = Path("nearcare.duckdb"),
    ratios: Annotated[
        str | None,
        typer.Option(help="Change team ratios per 10,000 need-weighted people, e.g. 'paramedics=0.8'."),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Folder for profiles.csv and teams.csv.")] = None,
) -> None:
    """Profile each neighbourhood and suggest its team, in proportion to need."""
    # lazy: start-up time (`nearcare --help` stays quick)
    from nearcare.neighbourhoods import parse_ratios, profiles

    with _opened(store, read_only=True) as opened:
        profile, team = profiles(opened, parse_ratios(ratios))
    console.print(_frame_text(profile))
    console.print(_frame_text(team.round(1)))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        profile.to_csv(out / "profiles.csv", index=False)
        team.to_csv(out / "teams.csv", index=False)
        console.print(f"wrote {out / 'profiles.csv'} and {out / 'teams.csv'}")


@app.command("serve")
def serve(
    store: StoreOption = Path("nearcare.duckdb"),
    host: Annotated[
        str, typer.Option(help="Address to listen on (127.0.0.1: this computer only).")
    ] = "127.0.0.1",
    port: Annotated[int, _number("Port to listen on.", 1, 65535)] = 8000,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            help="A host name the server answers to (repeat for several); always 127.0.0.1, localhost and --host."
        ),
    ] = None,
) -> None:
    """Serve the store as a web app (NHS.UK style, works offline) with a JSON API under /api."""
    # lazy: start-up time (`nearcare --help` stays quick)
    import uvicorn

    from nearcare.web.app import create_app
    from nearcare.web.guard import DEFAULT_HOSTS

    try:
        application = create_app(store, allowed_hosts=[*DEFAULT_HOSTS, host, *(allowed_host or [])])
    except (InputError, StoreError) as exc:
        _fail(exc)
    console.print(f"nearcare on http://{host}:{port}/ (API schema at /docs); Ctrl+C to stop")
    uvicorn.run(application, host=host, port=port, log_level="warning")


@app.command("report")
def report_(
    store: StoreOption = Path("nearcare.duckdb"),
    out: Annotated[Path, typer.Option(help="The HTML file to write.")] = Path("report.html"),
) -> None:
    """Write the HTML report for a built store."""
    # lazy: start-up time (`nearcare --help` stays quick)
    from nearcare.report import area_report

    with _opened(store, read_only=True) as opened:
        path = area_report(opened).write(out)
    console.print(f"wrote {path}")


@app.command("export")
def export_(
    table: Annotated[str, typer.Argument(help="A store table, e.g. small_areas, sites, practices.")],
    out: Annotated[Path, typer.Argument(help="File to write: .csv, .geojson or .parquet (GeoParquet).")],
    store: StoreOption = Path("nearcare.duckdb"),
) -> None:
    """Export a table to CSV, GeoJSON or GeoParquet."""
    # lazy: start-up time (`nearcare --help` stays quick)
    from nearcare.export import export_table

    with _opened(store, read_only=True) as opened:
        rows = export_table(opened, table, out)
    console.print(f"wrote {rows:,} rows to {out}")


@app.command("tables")
def tables(store: StoreOption = Path("nearcare.duckdb")) -> None:
    """List the store's tables and their row counts."""
    listing = RichTable("table", "rows")
    with _opened(store, read_only=True) as opened:
        for name in opened.tables():
            listing.add_row(name, f"{opened.count(name):,}")
    console.print(listing)


# `nearcare fetch` and `nearcare build --from DIR` (issue #17) live in nearcare.fetch.cli.
from nearcare.fetch.cli import register as _register_fetch  # noqa: E402

_register_fetch(app)
