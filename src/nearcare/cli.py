"""The ``nearcare`` command: a thin shell over the Python API."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import pandas as pd
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable
from typer.core import TyperGroup
from typer.models import OptionInfo

from nearcare._errors import InputError, StoreError
from nearcare._format import figure as _figure
from nearcare._format import whole as _whole
from nearcare._progress import set_quiet
from nearcare._version import __version__
from nearcare.network.search import cores
from nearcare.project import Project, import_kinds

console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)

StoreOption = Annotated[Path, typer.Option("--store", help="The analysis store (a DuckDB file).")]

# The cores the command line's jobs use: all this process may run on.
WORKERS = cores()

# typer >= 0.20 vendors click, older versions use it: find click's base exception either way.
_ClickException: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"
)


def _fail(exc: Exception | str, code: int = 2) -> NoReturn:
    """End the command with one line on stderr (never a traceback) and exit code 2 (1 for a bug)."""
    errors.print("[bold red]error:[/] " + escape(" ".join(str(exc).split())), highlight=False, markup=True)
    raise typer.Exit(code=code)


class _Commands(TyperGroup):
    """Every command runs through here: bad input and bad options end in one line, exit code 2.

    An unexpected exception is a bug in nearcare, not the user's doing: it ends in one line and exit
    code 1, and ``nearcare --debug COMMAND`` (or NEARCARE_DEBUG=1) shows its traceback.
    """

    def invoke(self, ctx: Any) -> Any:  # Any: typer's Context is click's, vendored or not
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except typer.BadParameter as exc:  # a value typer itself could not read, e.g. --k nan
            callback = getattr(exc.param, "callback", None)
            allowed = callback and getattr(callback, "allowed", None)
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

    check.allowed = allowed  # type: ignore[attr-defined]  # read back by _Commands for typer's own errors
    return typer.Option(*param_decls, help=f"{help} ({allowed})", callback=check)


@contextmanager
def _opened(path: Path, *, read_only: bool = False) -> Iterator[Project]:
    """Open the project; a user's mistake (bad input, a missing step) ends the command with exit code 2."""
    try:
        with Project(path, read_only=read_only) as project:
            yield project
    except (InputError, StoreError) as exc:
        _fail(exc)


def _profile(profile: str | None, mode: str | None, default: str, allowed: tuple[str, ...]) -> str:
    """``--profile``, or its old spelling ``--mode`` (deprecated: kept working for one release)."""
    if mode is not None:
        errors.print(
            "note: --mode is deprecated here; use --profile (same values)", highlight=False, markup=False
        )
        if profile is not None and profile != mode:
            _fail(InputError(f"--profile {profile} and --mode {mode} disagree; give --profile only"))
    chosen = profile or mode or default
    if chosen not in allowed:
        option = "--profile" if profile is not None else "--mode"
        _fail(InputError(f"{option} must be {', '.join(allowed[:-1])} or {allowed[-1]}, not {chosen!r}"))
    return chosen


def _profile_options(default: str, values: str) -> tuple[Any, Any]:
    """The ``--profile`` option and its hidden, deprecated ``--mode`` alias."""
    return (
        typer.Option("--profile", help=f"{values} (default {default})."),
        typer.Option("--mode", hidden=True, help="Deprecated: use --profile."),
    )


_WALK_DRIVE = ("walk", "drive")


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
    ctx: typer.Context,
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
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress: no bars, spinners or step lines.")
    ] = False,
) -> None:
    ctx.call_on_close(show_progress(not quiet))


class _ProgressLines(logging.Handler):
    """The library's progress (logger ``nearcare``) as plain lines on standard error, looked up at
    each line (so a test runner's captured stream gets them)."""

    def emit(self, record: logging.LogRecord) -> None:
        typer.echo(f"  {record.getMessage()}", err=True)


def show_progress(shown: bool) -> Callable[[], None]:
    """Progress lines and, on a terminal, bars and spinners; or none of either (``--quiet``).

    Returns what puts the logger back as it was, run when the command ends: a command run inside
    another program (a notebook, a test's CliRunner) must leave no handler behind.
    """
    logger = logging.getLogger("nearcare")
    level = logger.level
    for handler in [h for h in logger.handlers if isinstance(h, _ProgressLines)]:
        logger.removeHandler(handler)
    set_quiet(not shown)
    added = _ProgressLines()
    if shown:
        logger.addHandler(added)
        logger.setLevel(logging.INFO)

    def restore() -> None:
        logger.removeHandler(added)
        logger.setLevel(level)
        set_quiet(False)

    return restore


@app.command("demo")
def demo(
    out: Annotated[Path, typer.Option(help="Folder for nearcare.duckdb and report.html.")] = Path(
        "demo-output"
    ),
) -> None:
    """Build a store from the bundled LLR data and write its report."""
    # lazy: start-up time
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
    options = {k: v for k, v in (("year", year), ("geography", geography)) if v is not None}
    with _opened(store) as project:
        result = project.import_files(kind, files, data_date=data_date, **options)
    for table, rows in result.rows.items():
        console.print(f"{kind}: {rows:,} rows into {table}")
    for note in result.notes:
        console.print(f"  note: {note}")


@app.command("kinds")
def kinds() -> None:
    """List the kinds of public file nearcare imports."""
    table = RichTable("kind", "file", "publisher", "licence")
    for row in import_kinds().itertuples():
        table.add_row(row.kind, row.file, row.publisher, row.licence)
    console.print(table)


@app.command("build")
def build_(
    area: Annotated[
        str,
        typer.Option(
            help="england (E92000001), ICB (QK1, E54000015), sub-ICB (03W), local authority (E06000017), "
            "several of these comma-separated (QK1,QWO), LSOA codes (comma-separated), a file of LSOA "
            "codes, or each-icb (build every ICB in turn, the store keeping the last)."
        ),
    ],
    store: StoreOption = Path("nearcare.duckdb"),
    from_: Annotated[
        Path | None, typer.Option("--from", help="First import what `nearcare fetch` put in this folder.")
    ] = None,
) -> None:
    """Derive the area's small areas, sites and practices from the imported files."""
    with _opened(store) as project:
        if from_ is not None:
            project.import_fetched(from_, log=console.print)
        areas = project.areas_to_run(area)
        for code in areas:
            result = project.build(code)
            prefix = f"[{code}] " if len(areas) > 1 else ""
            console.print(
                f"{prefix}built {result.label}: {result.lsoas} LSOAs; sites "
                + ", ".join(f"{k} {v}" for k, v in sorted(result.sites.items())),
                markup=False,
            )
            for note in result.notes:
                console.print(f"{prefix}  note: {note}", markup=False)
            for _, row in result.ungeocoded.iterrows():
                console.print(
                    f"{prefix}  not geocoded: {row['kind']} {row['code']} {row['name']} ({row['postcode']})",
                    markup=False,
                )


def _box(text: str | None) -> tuple[float, float, float, float] | None:
    if text is None:
        return None
    try:
        west, south, east, north = (float(v) for v in text.split(","))
    except ValueError:
        raise InputError("--bbox must be WEST,SOUTH,EAST,NORTH in degrees", value=text) from None
    if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
        raise InputError("--bbox must have west < east and south < north, in degrees", value=text)
    return (west, south, east, north)


@app.command("fetch")
def fetch_(
    area: Annotated[
        str | None,
        typer.Option(help="The area, as for `nearcare build --area` (QK1, 03W, E06000017...)."),
    ] = None,
    into: Annotated[Path, typer.Option(help="Folder for the area's files and fetched.json.")] = Path(
        "nearcare-data"
    ),
    cache: Annotated[
        Path | None,
        typer.Option(
            help="Cache of national files shared by all areas (default $NEARCARE_CACHE or ~/.cache/nearcare)."
        ),
    ] = None,
    manifest: Annotated[
        Path | None, typer.Option(help="A sources manifest (TOML) to use instead of the bundled one.")
    ] = None,
    kind: Annotated[
        list[str] | None,
        typer.Option(help="Fetch only this kind (repeat for several; includes optional ones)."),
    ] = None,
    list_: Annotated[
        bool, typer.Option("--list", help="Print what would be fetched, and from where.")
    ] = False,
    offline: Annotated[bool, typer.Option(help="Use only the cache; say what is missing.")] = False,
    bbox: Annotated[
        str | None,
        typer.Option(help="WEST,SOUTH,EAST,NORTH for the OpenStreetMap cut (default: the area's)."),
    ] = None,
    timeout_s: Annotated[
        float, _number("Seconds to wait for the server.", 0, 3600, above=True, unit=" s")
    ] = 60.0,
    retries: Annotated[int, _number("Attempts after the first, resuming each time.", 0, 20)] = 3,
) -> None:
    """Download the public files an area needs (national files once, into a shared cache)."""
    # lazy: start-up time
    from nearcare.fetch import default_cache, fetch_area, load_manifest, plan

    loaded = load_manifest(manifest)
    if list_:
        console.print(f"manifest: {loaded.path}", markup=False, highlight=False)
        for source in plan(loaded, kind):
            size = f"about {source.size_mb:g} MB, " if source.size_mb else ""
            console.print(
                f"{source.kind}: {source.name} ({size}{source.edition}; {source.licence})\n"
                f"    url:  {source.url or 'none known: download it from the page'}\n"
                f"    page: {source.page}",
                markup=False,
                highlight=False,
            )
        if loaded.osm and (not kind or "osm" in kind):
            console.print(
                f"osm: the Geofabrik extracts meeting the area plus {loaded.osm.buffer_km:g} km, cut to it "
                f"({loaded.osm.edition}; {loaded.osm.licence})\n"
                f"    url:  {loaded.osm.url_pattern}\n    page: {loaded.osm.page}",
                markup=False,
                highlight=False,
            )
        return
    if area is None:
        raise InputError("--area is required (or --list to see what would be fetched)")
    result = fetch_area(
        area,
        into=into,
        cache=cache or default_cache(),
        manifest=loaded,
        kinds=kind,
        offline=offline,
        box=_box(bbox),
        timeout_s=timeout_s,
        retries=retries,
        log=console.print,
    )
    files = sum(len(p) for p in result.files.values())
    console.print(f"fetched {files} files of {len(result.files)} kinds into {into}")
    for note in result.notes:
        console.print(f"  note: {note}")
    for line in result.missing:
        console.print(f"  missing: {line}")
    console.print(f"next: nearcare build --area {area} --from {into} --store STORE")


@app.command("network")
def network_(
    store: StoreOption = Path("nearcare.duckdb"),
    profile: Annotated[str | None, _profile_options("both", "walk, drive or both")[0]] = None,
    mode: Annotated[str | None, _profile_options("both", "walk, drive or both")[1]] = None,
    walk_speed_kph: Annotated[float, _number("Walking speed in km/h.", 1, 10, unit=" km/h")] = 4.8,
) -> None:
    """Build the walk and drive networks from the imported OpenStreetMap extract."""
    chosen = _profile(profile, mode, "both", (*_WALK_DRIVE, "both"))
    with _opened(store) as project:
        built = project.build_networks(
            _WALK_DRIVE if chosen == "both" else chosen, walk_speed_kph=walk_speed_kph
        )
    for network in built.itertuples():
        console.print(
            f"{network.profile}: {network.nodes:,} nodes, {network.edges:,} edges; dropped "
            f"{network.dropped_nodes:,} nodes and {network.dropped_edges:,} edges outside the largest "
            "strongly connected part"
        )
        if not pd.isna(network.access_edges):  # drive networks only, where access ways were found
            console.print(
                f"  {network.access_edges:,} access-way edges (private and access-only roads and "
                f"tracks) join points to it at {network.access_gates:,} drive nodes"
            )


@app.command("travel-times")
def travel_times_(
    store: StoreOption = Path("nearcare.duckdb"),
    profile: Annotated[str | None, _profile_options("walk", "walk or drive")[0]] = None,
    mode: Annotated[str | None, _profile_options("walk", "walk or drive")[1]] = None,
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
    scheduler: Annotated[
        str | None,
        typer.Option(help="A dask.distributed scheduler (tcp://host:8786): route per local authority there."),
    ] = None,
) -> None:
    """Travel times from every LSOA in the area to each service, within a cutoff, and the nearest."""
    # lazy: start-up time
    from nearcare.export import check_export_path

    chosen = _profile(profile, mode, "walk", _WALK_DRIVE)
    with _opened(store) as project:
        if out is not None:
            check_export_path(out)
        pairs = project.travel_times(
            chosen,
            to,
            max_minutes=max_minutes,
            max_snap_m=max_snap_m,
            mode="crowfly" if crowfly else None,
            workers=WORKERS,
            scheduler=scheduler,
        )
        if (
            out is not None
        ):  # the pairs of this run only (a crow-fly run and a network run may both be stored)
            project.export(pairs, out, name="travel_times")
    for r in pairs.attrs["runs"]:
        left_out = (
            ""
            if r["mode"] == "crowfly"
            else f"; {r['unsnapped_origins']:,} LSOAs and {r['unsnapped_destinations']:,} "
            "sites too far from the network were left out"
        )  # crow-fly estimates need no network
        console.print(
            f"{r['profile']} to {r['kind']} ({r['mode']}): {r['pairs']:,} pairs within {max_minutes:g} minutes "
            f"from {r['origins']:,} LSOAs{left_out}"
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
    profile: Annotated[str | None, _profile_options("drive", "walk or drive")[0]] = None,
    mode: Annotated[str | None, _profile_options("drive", "walk or drive")[1]] = None,
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
    # lazy: start-up time
    from nearcare.export import check_export_path
    from nearcare.project import SERVICE_KINDS

    chosen = _profile(profile, mode, "drive", _WALK_DRIVE)
    parsed = _zones(zones)
    with _opened(store) as project:
        if out is not None:
            check_export_path(out)
        measures = project.access(
            chosen,
            mode="crowfly" if crowfly else None,
            threshold_minutes=threshold_minutes,
            decay=decay,
            zones=parsed,
        )
        estimated = project.estimated_gp_fte()
        if out is not None:
            project.export(measures, out, name="access")
    for kind in [k for k in SERVICE_KINDS if (measures["kind"] == k).any()]:
        rows = measures[measures["kind"] == kind]
        r = rows.iloc[0]
        console.print(
            f"{kind} ({r['profile']}, {r['mode']}): {len(rows):,} LSOAs; threshold {r['threshold_minutes']:g} "
            f"min; supply {r['supply_measure']}; {r['catchment']}"
        )
        if kind == "gp":
            _print_estimated_fte(estimated)


def _print_estimated_fte(estimated: pd.DataFrame | None) -> None:
    """The practices whose GP FTE was estimated (``Project.estimated_gp_fte``), one line each."""
    if estimated is None:
        return
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
    profile: Annotated[str | None, _profile_options("drive", "walk or drive")[0]] = None,
    mode: Annotated[str | None, _profile_options("drive", "walk or drive")[1]] = None,
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
    by: Annotated[
        str | None,
        typer.Option(help="A league table: one row per icb, sub-icb or lad, ranked, and the whole area."),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            help="With --by: a dask.distributed scheduler (tcp://host:8786) to compute each unit there."
        ),
    ] = None,
) -> None:
    """Inequality by deprivation of an access measure, and of GP FTE per need across practices."""
    # lazy: start-up time
    from nearcare.equity import MEASURES, EquityFigures

    chosen = _profile(profile, mode, "drive", _WALK_DRIVE)
    if by is not None:
        with _opened(store, read_only=True) as project:
            league = project.equity_league(
                by,
                kind,
                chosen,
                mode="crowfly" if crowfly else None,
                measure=measure,
                sii_level=sii_level,
                scheduler=scheduler,
            )
            area = project.area_label()
        _print_league(league, area)
        return
    with _opened(store, read_only=True) as project:
        figures = project.equity(
            kind, chosen, mode="crowfly" if crowfly else None, measure=measure, sii_level=sii_level
        )
        estimated = project.estimated_gp_fte()
        practices: EquityFigures | None = None
        try:
            practices = project.practice_equity(sii_level=sii_level)
        except StoreError as exc:
            missing = str(exc)
    table = RichTable("IMD decile", "population", figures.measure, "standard error")
    for decile, row in figures.deciles.iterrows():
        table.add_row(str(decile), _whole(row["population"]), _figure(row["value"]), _figure(row["se"]))
    console.print(table)
    console.print(figures.verdict(f"{MEASURES[measure][0]} to {kind} services"))
    if practices is not None:
        console.print(practices.verdict("GP FTE per need-weighted patient"))
        if practices.left_out is not None and len(practices.left_out):
            console.print(
                f"practice level: {len(practices.left_out)} practices left out, their GP FTE not reported "
                "or not plausible (listed below)"
            )
    else:
        console.print(f"practice level: {missing}")
    _print_estimated_fte(
        estimated
    )  # the practice level (and GP access) use these estimates or leave them out


def _print_league(league: pd.DataFrame, area: str) -> None:
    """The equity league table, ranked, with the whole area's row last."""
    table = RichTable(
        "rank",
        league.attrs["by"],
        "name",
        "LSOAs",
        "population",
        "mean",
        "conc. index (SE)",
        "SII (95% CI)",
        "finding",
    )
    for row in league.itertuples():
        assessed = not isinstance(row.not_assessed, str)
        table.add_row(
            "" if pd.isna(row.rank) else str(row.rank),
            str(row.unit_code) if row.unit_code != "*" else "all",
            str(row.unit_name) if row.unit_code != "*" else area,
            _whole(row.lsoas),
            _whole(row.population),
            _figure(row.mean) if assessed else "",
            f"{row.concentration_index:+.3f} ({row.concentration_index_se:.3f})" if assessed else "",
            f"{row.sii:+.3g} ({row.sii_low:+.3g} to {row.sii_high:+.3g})" if assessed else "",
            row.finding if assessed else f"not assessed: {row.not_assessed}",
        )
    console.print(table)
    console.print(
        f"{league.attrs['measure']}: rank 1 is where the inverse care law bites hardest (the steepest slope "
        "favouring the less deprived); SII by OHID's method over each unit's IMD 2025 deciles (national deciles)."
    )


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
    # lazy: start-up time
    from nearcare.export import check_export_path

    if floor is not None and cap is not None and floor > cap:
        raise InputError(f"--floor ({floor:g}) is more than --cap ({cap:g})")
    with _opened(store) as project:
        if out is not None:
            check_export_path(out)
        result = project.allocate(units, to=to, floor=floor, cap=cap)
        if out is not None:
            project.export(result.allocation.reset_index(), out, name="allocation")
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
    scheduler: Annotated[
        str | None,
        typer.Option(
            help="With 'rank': a dask.distributed scheduler (tcp://host:8786) to score the closures there."
        ),
    ] = None,
) -> None:
    """Model a closure, merger or new site (nearcare scenario FILE), or rank every closure (nearcare scenario rank)."""
    with _opened(store) as project:
        if file == "rank":
            kinds = {"each-practice": "gp", "each-pharmacy": "pharmacy"}
            if close not in kinds:
                raise InputError("--close must be each-practice or each-pharmacy", value=close)
            ranked = project.rank_closures(kinds[close], mode=mode, workers=WORKERS, scheduler=scheduler)
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
        result = project.scenario(file, mode=mode)
        written = project.write_scenario(result, out)
    console.print(
        f"{result.scenario.name}: {result.headline()}. Where patients go: {result.model.describe()}"
    )
    for row in result.unplaced.itertuples():
        console.print(f"  unplaced: {_whole(row.patients)} patients of {row.practice_code}: {row.reason}")
    if (source := result.scenario.source_note()) is not None:
        console.print(source)
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
    with _opened(store) as project:
        count = project.import_defibrillators(file)
    console.print(f"{count} defibrillators from {'OpenStreetMap' if file is None else file}")


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
    with _opened(store) as project:
        defib_id, matched = project.report_defibrillator(
            access=access,
            hours=hours,
            lat=lat,
            lon=lon,
            postcode=postcode,
            looks_registered=looks_registered,
            note=note,
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
    # lazy: start-up time
    from nearcare.export import check_export_path

    with _opened(store, read_only=out is None) as project:
        if out is not None:
            check_export_path(out)
        frame = project.defibrillators(unregistered=unregistered)
        if out is not None:
            project.export(frame, out, name="defibrillators")
    columns = ["defib_id", "status", "access", "hours", "reports", "pads_expired", "battery_expired"]
    shown = frame[columns].assign(hours=frame["hours"].fillna("not recorded"))
    console.print(_frame_text(shown) if len(frame) else "no defibrillators known")


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
    # lazy: start-up time
    from nearcare import defib

    if time not in defib.TIMES:
        _fail(InputError("--time must be day, evening or night", value=time))
    with _opened(store, read_only=True) as project:
        cov = project.defib_coverage(lad=lad, distance_m=distance_m)
        found = project.defib_deserts(time, coverage=cov)
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
    with _opened(store, read_only=True) as project:
        siting, cov = project.defib_sites(k, lad=lad, distance_m=distance_m)
    console.print(_frame_text(siting.chosen[["site_id", "name", "host", "marginal_people"]]))
    console.print(f"{cov.not_assessed_note()}; no site is chosen for them")
    console.print(
        f"exact: {_whole(siting.exact_people)} people newly covered; greedy: {_whole(siting.greedy_people)} "
        f"(gap {100 * siting.gap:.1f}%)"
    )


neighbourhood_app = typer.Typer(no_args_is_help=True, help="Design or load neighbourhoods and profile them.")
app.add_typer(neighbourhood_app, name="neighbourhoods")


def _print_neighbourhoods(project: Project, **bounds: Any) -> None:
    result = project.check_neighbourhoods(**bounds)
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
    if min_population > max_population:
        raise InputError(
            f"--min-population ({min_population:g}) is more than --max-population ({max_population:g})"
        )
    bounds: dict[str, Any] = {
        "min_population": min_population,
        "max_population": max_population,
        "boundary": boundary,
    }
    with _opened(store) as project:
        project.design_neighbourhoods(**bounds)
        _print_neighbourhoods(project, **bounds)


@neighbourhood_app.command("load")
def neighbourhoods_load(
    file: Annotated[
        Path, typer.Argument(help="CSV of lsoa21_code,neighbourhood or practice_code,neighbourhood.")
    ],
    store: StoreOption = Path("nearcare.duckdb"),
) -> None:
    """Load your own neighbourhoods (or practice groupings such as PCNs), validated."""
    with _opened(store) as project:
        project.load_neighbourhoods(file)
        _print_neighbourhoods(project)  # checked against the default bounds, within sub-ICBs


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
    with _opened(store, read_only=True) as project:
        profile, team = project.neighbourhood_profiles(ratios)
        console.print(_frame_text(profile))
        console.print(_frame_text(team.round(1)))
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            project.export(profile, out / "profiles.csv", name="neighbourhood profiles")
            project.export(team, out / "teams.csv", name="neighbourhood teams")
            console.print(f"wrote {out / 'profiles.csv'} and {out / 'teams.csv'}")


@neighbourhood_app.command("hubs")
def neighbourhoods_hubs(
    store: StoreOption = Path("nearcare.duckdb"),
    per_neighbourhood: Annotated[int, _number("Hubs in each neighbourhood.", 1, 20)] = 1,
    candidates: Annotated[
        str,
        typer.Option(help="practices, sites (every service site) or a CSV of code,postcode or code,lat,lon."),
    ] = "practices",
    max_minutes: Annotated[
        float | None,
        _number("Every LSOA must reach its hub within this.", 0, 300, above=True, unit=" minutes"),
    ] = None,
    profile: Annotated[str, typer.Option(help="walk or drive.")] = "drive",
    crowfly: Annotated[
        bool, typer.Option("--crowfly", help="Use the crow-fly run even if a network run exists.")
    ] = False,
    out: Annotated[
        Path | None, typer.Option(help="Folder for hubs.csv, lsoas.csv and neighbourhoods.csv.")
    ] = None,
) -> None:
    """Choose each neighbourhood's hub site(s): least need-weighted travel time (p-median), exact and greedy."""
    if profile not in _WALK_DRIVE:
        _fail(InputError(f"--profile must be walk or drive, not {profile!r}"))
    with _opened(store, read_only=True) as project:
        plan = project.neighbourhood_hubs(
            per_neighbourhood,
            candidates=candidates if candidates in ("practices", "sites") else Path(candidates),
            max_minutes=max_minutes,
            profile=profile,
            mode="crowfly" if crowfly else None,
        )
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            for name in ("hubs", "lsoas", "neighbourhoods"):
                project.export(getattr(plan, name), out / f"{name}.csv", name=f"hub {name}")
    console.print(_frame_text(plan.hubs[["neighbourhood", "code", "name", "population", "mean_minutes"]]))
    unsolved = plan.neighbourhoods[plan.neighbourhoods["status"] != "optimal"]
    if len(unsolved):
        console.print(_frame_text(unsolved[["neighbourhood", "status", "population"]]))
    unreachable = plan.lsoas[plan.lsoas["status"] == "unreachable"]
    if len(unreachable):
        shown = (
            ""
            if len(unreachable) <= 20
            else f"; the first 20 of {len(unreachable):,} (all in lsoas.csv with --out)"
        )
        console.print(f"LSOAs with no pair to any candidate{shown}:")
        console.print(_frame_text(unreachable[["lsoa21_code", "neighbourhood", "population"]].head(20)))
    console.print(plan.summary())
    if out is not None:
        console.print(f"wrote hubs.csv, lsoas.csv and neighbourhoods.csv in {out}")


workforce_app = typer.Typer(
    no_args_is_help=True, help="GP and nurse workforce: trends, the gap, practices at risk."
)
app.add_typer(workforce_app, name="workforce")
AreaOption = Annotated[
    str | None, typer.Option(help="A sub-ICB or ICB code of the store (default: the whole built area).")
]
OutOption = Annotated[Path | None, typer.Option(help="Also write the table to .csv, .geojson or .parquet.")]


def _workforce_run(store: Path, out: Path | None, name: str, compute: Any) -> Any:
    """``compute(project) -> (result, table)``; the table also written to ``out`` (checked first)."""
    # lazy: start-up time
    from nearcare.export import check_export_path

    with _opened(store, read_only=True) as project:
        if out is not None:
            check_export_path(out)
        result, table = compute(project)
        if out is not None:
            rows = project.export(table, out, name=name)
            console.print(f"wrote {rows:,} rows to {out}")
    return result


@workforce_app.command("trends")
def workforce_trends(
    store: StoreOption = Path("nearcare.duckdb"),
    area: AreaOption = None,
    level: Annotated[
        str, typer.Option(help="practice, sub_icb, icb or england (what is printed).")
    ] = "sub_icb",
    out: OutOption = None,
) -> None:
    """GP and nurse FTE and patients per GP FTE by year, need-weighted, with 3- and 5-year change."""
    if level not in ("practice", "sub_icb", "icb", "england"):
        _fail(InputError("--level must be practice, sub_icb, icb or england", value=level))
    result = _workforce_run(
        store, out, "workforce trends", lambda p: (found := p.workforce_trends(area), found.years)
    )
    shown = result.changes[result.changes["level"].isin([level, "england"])]
    columns = ["code", "measure", "year", "value", "change_3y", "change_3y_pct", "change_5y", "change_5y_pct"]
    console.print(_frame_text(shown[columns].round(1)))
    for note in result.notes:
        console.print(note)


@workforce_app.command("gap")
def workforce_gap(
    store: StoreOption = Path("nearcare.duckdb"),
    area: AreaOption = None,
    patients_per_gp_fte: Annotated[
        float | None, _number("Benchmark: need-weighted patients per GP FTE (default England's).", 1, 100_000)
    ] = None,
    patients_per_nurse_fte: Annotated[
        float | None,
        _number("Benchmark: need-weighted patients per nurse FTE (default England's).", 1, 100_000),
    ] = None,
    out: OutOption = None,
) -> None:
    """GP and nurse FTE needed to reach a benchmark: total, per sub-ICB, neighbourhood and IMD quintile."""
    result = _workforce_run(
        store,
        out,
        "workforce gap",
        lambda p: (
            found := p.workforce_gap(
                area, patients_per_gp_fte=patients_per_gp_fte, patients_per_nurse_fte=patients_per_nurse_fte
            ),
            found.groups,
        ),
    )
    console.print(_frame_text(result.groups.round(1)))
    for note in result.notes:
        console.print(note)


@workforce_app.command("risk")
def workforce_risk(
    store: StoreOption = Path("nearcare.duckdb"),
    area: AreaOption = None,
    closures: Annotated[
        bool, typer.Option(help="Also score what closing each practice would do (takes a while).")
    ] = True,
    out: OutOption = None,
) -> None:
    """Practices at risk: a transparent score from public data, each practice's reasons listed."""
    frame, notes = _workforce_run(
        store,
        out,
        "practices at risk",
        lambda p: (
            found := p.practices_at_risk(area, closures=closures, workers=WORKERS),
            found[0],
        ),
    )
    console.print(_frame_text(frame[["practice_code", "name", "risk_score", "reasons"]].head(20)))
    for note in notes:
        console.print(note)


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
    tiles: Annotated[
        str | None,
        typer.Option(
            help="A map tile URL template, e.g. https://tile.example.org/{z}/{x}/{y}.png, drawn under the maps "
            "(off by default: the maps then need nothing from the internet)."
        ),
    ] = None,
) -> None:
    """Serve the store as a web app (NHS.UK style, works offline) with a JSON API under /api."""
    import uvicorn

    # lazy: start-up time
    from nearcare.web.app import create_app
    from nearcare.web.guard import DEFAULT_HOSTS

    try:
        application = create_app(
            store, allowed_hosts=[*DEFAULT_HOSTS, host, *(allowed_host or [])], tiles=tiles
        )
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
    with _opened(store, read_only=True) as project:
        path = project.report(out)
    console.print(f"wrote {path}")


@app.command("export")
def export_(
    table: Annotated[str, typer.Argument(help="A store table, e.g. small_areas, sites, practices.")],
    out: Annotated[Path, typer.Argument(help="File to write: .csv, .geojson or .parquet (GeoParquet).")],
    store: StoreOption = Path("nearcare.duckdb"),
) -> None:
    """Export a table to CSV, GeoJSON or GeoParquet."""
    with _opened(store, read_only=True) as project:
        rows = project.export(table, out)
    console.print(f"wrote {rows:,} rows to {out}")


@app.command("tables")
def tables(store: StoreOption = Path("nearcare.duckdb")) -> None:
    """List the store's tables and their row counts."""
    listing = RichTable("table", "rows")
    with _opened(store, read_only=True) as project:
        for row in project.tables().itertuples():
            listing.add_row(row.table, f"{row.rows:,}")
    console.print(listing)
