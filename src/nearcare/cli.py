"""The ``nearcare`` command: a thin shell over the Python API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table as RichTable

from nearcare import __version__
from nearcare._errors import InputError, StoreError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Plan primary care and neighbourhood health services in England from open data.")
console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)

StoreOption = Annotated[Path, typer.Option("--store", help="The analysis store (a DuckDB file).")]


def _fail(exc: Exception) -> None:
    errors.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True)
    raise typer.Exit(code=2)


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", help="Show the version and exit.")] = False) -> None:
    if version:
        console.print(__version__)
        raise typer.Exit()


@app.command("demo")
def demo(out: Annotated[Path, typer.Option(help="Folder for nearcare.duckdb and report.html.")] = Path("demo-output")) -> None:
    """Build a store from the bundled LLR data and write its report."""
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
    data_date: Annotated[Optional[str], typer.Option(help="The data date, for files that state none.")] = None,
    year: Annotated[Optional[int], typer.Option(help="Year of a population or workforce file, if its name does not say.")] = None,
    geography: Annotated[Optional[str], typer.Option(help="lsoa11 or lsoa21, for population files.")] = None,
) -> None:
    """Validate public files and import them into the store (all or nothing)."""
    from nearcare.sources import import_files
    from nearcare.store import Store

    options = {k: v for k, v in (("year", year), ("geography", geography)) if v is not None}
    try:
        with Store(store) as opened:
            result = import_files(opened, kind, files, data_date=data_date, **options)
    except (InputError, StoreError) as exc:
        _fail(exc)
    except TypeError as exc:  # an option this kind does not take
        _fail(InputError(f"{kind} does not take that option ({exc})"))
    for table, rows in result.rows.items():
        console.print(f"{kind}: {rows:,} rows into {table}")
    for note in result.notes:
        console.print(f"  note: {note}")


@app.command("kinds")
def kinds() -> None:
    """List the kinds of public file nearcare imports."""
    from nearcare.sources import importers

    table = RichTable("kind", "file", "publisher", "licence")
    for imp in importers().values():
        table.add_row(imp.kind, imp.summary, imp.publisher, imp.licence)
    console.print(table)


@app.command("build")
def build_(
    area: Annotated[str, typer.Option(help="ICB (QK1, E54000015), sub-ICB (03W), local authority (E06000017), "
                                           "LSOA codes (comma-separated) or a file of LSOA codes.")],
    store: StoreOption = Path("nearcare.duckdb"),
) -> None:
    """Derive the area's small areas, sites and practices from the imported files."""
    from nearcare.area import build
    from nearcare.store import Store

    try:
        with Store(store) as opened:
            result = build(opened, area)
    except (InputError, StoreError) as exc:
        _fail(exc)
    console.print(f"built {result.label}: {result.lsoas} LSOAs; sites " +
                  ", ".join(f"{k} {v}" for k, v in sorted(result.sites.items())))
    for note in result.notes:
        console.print(f"  note: {note}")
    for _, row in result.ungeocoded.iterrows():
        console.print(f"  not geocoded: {row['kind']} {row['code']} {row['name']} ({row['postcode']})")


@app.command("report")
def report_(
    store: StoreOption = Path("nearcare.duckdb"),
    out: Annotated[Path, typer.Option(help="The HTML file to write.")] = Path("report.html"),
) -> None:
    """Write the HTML report for a built store."""
    from nearcare.report import area_report
    from nearcare.store import Store

    try:
        with Store(store, read_only=True) as opened:
            path = area_report(opened).write(out)
    except (InputError, StoreError) as exc:
        _fail(exc)
    console.print(f"wrote {path}")


@app.command("export")
def export_(
    table: Annotated[str, typer.Argument(help="A store table, e.g. small_areas, sites, practices.")],
    out: Annotated[Path, typer.Argument(help="File to write: .csv, .geojson or .parquet (GeoParquet).")],
    store: StoreOption = Path("nearcare.duckdb"),
) -> None:
    """Export a table to CSV, GeoJSON or GeoParquet."""
    from nearcare.export import export_table
    from nearcare.store import Store

    try:
        with Store(store, read_only=True) as opened:
            rows = export_table(opened, table, out)
    except (InputError, StoreError) as exc:
        _fail(exc)
    console.print(f"wrote {rows:,} rows to {out}")


@app.command("tables")
def tables(store: StoreOption = Path("nearcare.duckdb")) -> None:
    """List the store's tables and their row counts."""
    from nearcare.store import Store

    try:
        with Store(store, read_only=True) as opened:
            listing = RichTable("table", "rows")
            for name in opened.tables():
                listing.add_row(name, f"{opened.count(name):,}")
    except StoreError as exc:
        _fail(exc)
    console.print(listing)
