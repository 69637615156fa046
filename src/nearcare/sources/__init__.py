"""Importers for the public files commissioners download, and the one way to run them.

Each importer *parses* a file into validated tables without touching the store; ``import_files``
then writes every table in one transaction, so that a failed import leaves the store exactly as
it was. Importing a kind again replaces what the earlier import of that kind brought.

A user's own files go through the same step (``import_user_file``, ``record_user_file``): a
defibrillator CSV (kind ``defibrillator-csv``), neighbourhoods (``neighbourhoods``) and scenario
files (``scenario``) are recorded in provenance with publisher ``user`` and licence unknown.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

from nearcare._errors import InputError, StoreError
from nearcare.sources._importer import Importer
from nearcare.sources._importer import Parsed as Parsed  # the parsers' result, re-exported
from nearcare.store import Store, file_sha256

INSERT_ROWS = 250_000
# The publisher recorded for a file the user brings (their own defibrillator list, neighbourhoods,
# scenario); its licence is recorded as unknown (NULL).
USER_PUBLISHER = "user"
# DuckDB settings while writing an import: a small buffer pool (the open transaction's rows are
# spilled to the store file), one thread and no ordering guarantee take the national postcode import's
# peak from about 1,010 MB to about 910 MB (benchmarks/bench_import_postcodes.py; 500MB gave 980 MB).
# The primary-key index must fit in the pool: about 150 MB for the 2.6 million national postcodes.
# No automatic checkpoint at the commit: under the small pool, folding a large import into the
# file could fail *after* the rows were committed (DuckDB: "failed to pin block"), reporting a
# committed import as failed; a retry then wrote it twice. The import checkpoints once the
# settings are reset (``_checkpoint``).
IMPORT_SETTINGS = {
    "memory_limit": "300MB",
    "threads": 1,
    "preserve_insertion_order": False,
    "checkpoint_threshold": "1TB",
}


@dataclass
class ImportResult:
    kind: str
    rows: dict[str, int]
    source_ids: list[int]
    notes: list[str]


def _registry() -> dict[str, Importer]:
    # lazy: start-up time (the parsers bring in osmium, pyogrio and geopandas)
    from nearcare.sources import deprivation, geography, ods, osm, population, practice_figures, registrations

    importers = [
        *ods.IMPORTERS,
        *registrations.IMPORTERS,
        *deprivation.IMPORTERS,
        *geography.IMPORTERS,
        *population.IMPORTERS,
        *practice_figures.IMPORTERS,
        *osm.IMPORTERS,
    ]
    return {imp.kind: imp for imp in importers}


def _release_freed_memory() -> None:
    """Hand the memory freed after reading a large file back to the system before the store grows.

    glibc keeps freed heap pages for reuse; reading the national postcode file frees a few hundred
    MB of row batches, which would otherwise add to the peak while DuckDB builds its index.
    """
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


@contextmanager
def _import_settings(store: Store) -> Iterator[None]:
    """Apply IMPORT_SETTINGS while an import writes, then reset them to DuckDB's defaults.

    Reset rather than set back: DuckDB reports the memory limit rounded (``18.7 GiB``), and the
    Store sets none of these.
    """
    try:
        for name, value in IMPORT_SETTINGS.items():
            store.con.execute(f"SET {name} = ?", [value])
        yield
    finally:
        for name in IMPORT_SETTINGS:
            store.con.execute(f"RESET {name}")


def _checkpoint(store: Store) -> None:
    """Fold the committed import from the write-ahead log into the store file, with the default pool.

    The rows are committed already: if the checkpoint fails, DuckDB keeps them in the log and
    replays it when the store is next opened, but this connection is no longer usable, so say so.
    """
    try:
        store.con.execute("CHECKPOINT")
    except duckdb.Error as exc:
        raise StoreError(
            f"{store.path}: the import is committed and kept in the store's write-ahead log, which "
            f"DuckDB replays when the store is next opened; writing it into the store file failed "
            f"({exc}). Open the store again to go on; importing the file again is not needed."
        ) from exc


def importers() -> dict[str, Importer]:
    """All importers by kind (the KIND of ``nearcare import KIND FILE``)."""
    return _registry()


def import_files(
    store: Store,
    kind: str,
    paths: Sequence[str | Path],
    *,
    data_date: str | None = None,
    **options: object,
) -> ImportResult:
    """Validate every file, then write them all in one transaction (all or nothing).

    ``data_date`` overrides the date the file states, for files that state none.
    """
    registry = _registry()
    if kind not in registry:
        raise InputError(f"unknown import kind {kind!r}; known kinds: {', '.join(sorted(registry))}")
    importer = registry[kind]
    if not paths:
        raise InputError(f"no file given for {kind}")
    parsed = [(Path(p), importer.parse(Path(p), **options)) for p in paths]
    _release_freed_memory()
    try:
        with _import_settings(store):
            rows, source_ids = _write(store, kind, importer, parsed, data_date)
    except duckdb.OutOfMemoryException:
        # The small buffer pool is an economy, not a limit on what can be imported: a file whose
        # index outgrows it is written again (the failed attempt rolled back) with DuckDB's defaults.
        rows, source_ids = _write(store, kind, importer, parsed, data_date)
    _checkpoint(store)
    notes = [note for _, p in parsed for note in p.notes]
    return ImportResult(kind=kind, rows=rows, source_ids=source_ids, notes=notes)


def _write(
    store: Store, kind: str, importer: Importer, parsed: list, data_date: str | None
) -> tuple[dict[str, int], list[int]]:
    """Replace what the earlier import of ``kind`` brought with ``parsed``, in one transaction."""
    tables = sorted({t for _, p in parsed for t in p.tables})
    rows: dict[str, int] = dict.fromkeys(tables, 0)
    source_ids: list[int] = []
    with store.transaction() as con:
        for table in tables:
            con.execute(
                f'DELETE FROM "{table}" WHERE source_id IN (SELECT source_id FROM provenance WHERE kind = ?)',
                [kind],
            )
        for path, result in parsed:
            source_id, written = _write_file(
                store, kind, path, result, data_date or result.data_date, importer.publisher, importer.licence
            )
            source_ids.append(source_id)
            for table, n in written.items():
                rows[table] += n
    return rows, source_ids


def _write_file(
    store: Store,
    kind: str,
    path: Path,
    result: Parsed,
    data_date: str | None,
    publisher: str | None,
    licence: str | None,
) -> tuple[int, dict[str, int]]:
    """Record one file in provenance and insert its rows carrying its ``source_id`` (inside a transaction)."""
    source_id = store.add_provenance(
        kind=kind,
        path=path.resolve(),
        sha256=file_sha256(path),
        rows=sum(len(f) for f in result.tables.values()),
        data_date=data_date,
        publisher=publisher,
        licence=licence,
    )
    rows: dict[str, int] = {}
    for table, frame in result.tables.items():
        frame = frame.drop(columns=[c for c in frame.columns if c.startswith("_")])
        try:
            for start in range(0, len(frame), INSERT_ROWS):  # bounded memory for national files
                store.insert(table, frame.iloc[start : start + INSERT_ROWS].assign(source_id=source_id))
        except duckdb.ConstraintException as exc:
            raise InputError(
                f"clashes with rows already imported into {table} ({exc}); is the same area in two files?",
                path=path,
            ) from None
        rows[table] = len(frame)
    return source_id, rows


def import_user_file(store: Store, kind: str, path: str | Path, parsed: Parsed, *, clear_sql: str) -> int:
    """Write a user's own file (a defibrillator list, neighbourhoods) the way public files are written.

    In one transaction: ``clear_sql`` removes the rows the file replaces (as importing a public kind
    again replaces what its earlier import brought), then the file is recorded in provenance
    (publisher ``user``, licence unknown, no data date) and its rows inserted with its ``source_id``.
    The earlier file's provenance row goes with its rows, so provenance lists the user files whose
    rows are in the store: importing the same file twice leaves the same rows and one provenance
    row. Returns the ``source_id``.
    """
    path = Path(path)
    with store.transaction() as con:
        con.execute(clear_sql)
        forget_user_files(store, kind)
        source_id, _ = _write_file(store, kind, path, parsed, parsed.data_date, USER_PUBLISHER, None)
    return source_id


def forget_user_files(store: Store, kind: str) -> None:
    """Drop the provenance rows of a user file kind whose rows were replaced (call inside ``transaction``)."""
    store.con.execute("DELETE FROM provenance WHERE kind = ? AND publisher = ?", [kind, USER_PUBLISHER])


def record_user_file(store: Store, kind: str, path: str | Path, *, rows: int) -> int:
    """Record a user's file that defines a run rather than rows (a scenario) and return its ``source_id``.

    The same file (kind, path and SHA-256) run again keeps its one provenance row; an edited file
    gets a row of its own, so every run's outputs name the exact file that defined them.
    """
    path = Path(path).resolve()
    sha256 = file_sha256(path)
    with store.transaction():
        known = store.scalar(
            "SELECT min(source_id) FROM provenance WHERE kind = ? AND path = ? AND sha256 = ?",
            [kind, str(path), sha256],
        )
        if known is not None:
            return int(known)
        return store.add_provenance(
            kind=kind,
            path=path,
            sha256=sha256,
            rows=rows,
            data_date=None,
            publisher=USER_PUBLISHER,
            licence=None,
        )
