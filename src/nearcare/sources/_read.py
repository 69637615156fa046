"""Reading and validating public CSV files: the one way every importer reads its input.

Every row is checked for its length (a truncated row is an error, not a short record), and every
field for its kind and range, before anything is written; the first problem found is raised as an
``InputError`` naming the file, the line and the field.

Damaged files are refused rather than half-read: a duplicated column name, a quote that never
closes, a published file that stops without its final line break, a line
longer than ``MAX_LINE_CHARS``, undecodable bytes and broken gzip streams. Large files are read in
batches of about ``BATCH_CELLS`` fields (see ``iter_batches``) so that memory stays bounded.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from nearcare._errors import InputError
from nearcare._progress import reading_progress

LSOA_CODE = r"[EW]01\d{6}"
ENGLISH_LSOA_CODE = r"E01\d{6}"
ODS_CODE = r"[A-Z0-9]{3,10}"
POSTCODE = r"[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}"
# ONS pseudo codes, used where no area of a column's kind applies: (pseudo) England, Scotland, Wales,
# Northern Ireland, Channel Islands (L), Isle of Man (M).
PSEUDO_CODE = r"[ESWNLM]99999999"
# A number written with thousands separators, correctly grouped ("1,592", "12,345.5"; not "1,5,92").
_GROUPED = r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?"
MISSING = {"", "NA", "N/A", "NULL", "null", ".."}  # not "nan": a literal NaN is refused as non-finite
# A line longer than this is refused at once (no published row comes near it): a file with no line
# breaks, or a small gzip that inflates to gigabytes, stops after reading this much.
MAX_LINE_CHARS = 1_000_000
BATCH_CELLS = 1_000_000  # fields held in memory at once while reading (about 60 MB of strings)
# Great Britain's extent (with the Scilly Isles and Shetland), for checking coordinates.
GB_LON = (-8.7, 1.8)
GB_LAT = (49.8, 60.9)
GB_EASTING = (0.0, 700_000.0)  # British National Grid (EPSG:27700), metres
GB_NORTHING = (0.0, 1_300_000.0)
INT32_MAX = 2**31 - 1  # the store's INTEGER columns; no count nearcare reads comes near it


@dataclass(frozen=True)
class Field:
    """One field of a source file: where it is, what it must hold, and its name in the store.

    Numbers must be finite and lie within ``minimum``..``maximum`` (integers default to 0..2^31-1).
    For ``kind="postcode"``, ``pattern`` names non-standard codes also accepted (e.g. ``GIR 0AA``).
    """

    name: str
    column: str | int | tuple[str, ...]  # header name, alternatives, or 0-based position
    kind: str = "text"  # text | code | integer | number | date | postcode
    required: bool = True
    pattern: str | None = None  # for kind="code": the whole value must match
    date_format: str | None = None  # for kind="date"
    thousands: bool = False  # for numbers written like "1,632"
    minimum: float | None = None
    maximum: float | None = None


def _open_text(path: Path, encoding: str) -> io.TextIOBase:
    raw = open(path, "rb")
    if path.suffix == ".gz":
        raw = gzip.open(raw)  # type: ignore[assignment]
    return io.TextIOWrapper(raw, encoding=encoding, newline="")


def _check_file(path: Path) -> None:
    if not path.exists():
        raise InputError("no such file", path=path)
    if not path.is_file():
        raise InputError("not a file (a folder?)", path=path)
    if path.stat().st_size == 0:
        raise InputError("the file is empty", path=path)


class _Lines:
    """Physical lines of a text file, each at most ``MAX_LINE_CHARS`` long, counted as they go."""

    def __init__(self, path: Path, text: io.TextIOBase, encoding: str) -> None:
        self.path, self.text, self.encoding = path, text, encoding
        self.count = 0
        self.last = ""

    def __iter__(self) -> Iterator[str]:
        while True:
            try:
                line = self.text.readline(MAX_LINE_CHARS + 1)
            except UnicodeDecodeError as exc:
                raise _undecodable(self.path, self.encoding, exc) from None
            except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
                raise InputError(
                    f"not a readable gzip file ({exc})",
                    path=self.path,
                    line=self.count + 1 if self.count else None,
                ) from None
            if not line:
                return
            self.count += 1
            if len(line) > MAX_LINE_CHARS:
                raise InputError(
                    f"line longer than {MAX_LINE_CHARS:,} characters; not a CSV file as published?",
                    path=self.path,
                    line=self.count,
                )
            self.last = line
            yield line


def _undecodable(path: Path, encoding: str, exc: UnicodeDecodeError) -> InputError:
    """Find the first line that will not decode by reading the raw lines again (only on error)."""
    opener = gzip.open if path.suffix == ".gz" else open
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        with opener(path, "rb") as raw:
            for number, line in enumerate(iter(lambda: raw.readline(MAX_LINE_CHARS + 1), b""), start=1):
                try:
                    decoder.decode(line)
                except UnicodeDecodeError as bad:
                    return InputError(
                        f"not text in {encoding} ({bad.reason})",
                        path=path,
                        line=number,
                        value=line[max(bad.start - 10, 0) : bad.end + 10],
                    )
    except (OSError, EOFError, zlib.error):
        pass
    return InputError(f"not text in {encoding} ({exc.reason})", path=path)


def duplicate_names(path: Path, names: Sequence[str]) -> None:
    """Refuse a header that names one column twice: which of the two is meant cannot be known."""
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name and name in seen:
            raise InputError(
                f"column name {name!r} appears twice (columns {seen[name] + 1} and {i + 1})",
                path=path,
                line=1,
                field=name,
            )
        seen.setdefault(name, i)


def iter_batches(
    path: str | Path,
    *,
    header: bool,
    n_columns: int | None = None,
    delimiter: str = ",",
    encoding: str = "utf-8-sig",
    final_newline: bool = False,
    batch_cells: int | None = None,
) -> Iterator[tuple[list[str], list[list[str]], list[int]]]:
    """Read a delimited file in batches of about ``batch_cells`` fields: yield its header (or column numbers),
    the batch's rows and each row's line number.

    With ``n_columns`` every row must have exactly that many fields; otherwise every row must have
    as many fields as the header. ``final_newline`` refuses a file whose last line has no line
    break (a sign it was cut short): importers of published formats, which always end in one, ask
    for it; files people write themselves (neighbourhoods, defibrillator lists) need not.
    """
    path = Path(path)
    _check_file(path)
    batch_cells = batch_cells or BATCH_CELLS
    names: list[str] | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    any_rows = False
    start = 1
    try:
        with _open_text(path, encoding) as text, reading_progress(path) as advance:
            physical = _Lines(path, text, encoding)
            reader = csv.reader(iter(physical), delimiter=delimiter, strict=True)
            if header:
                try:
                    names = [h.strip() for h in next(reader)]
                except StopIteration:
                    raise InputError("the file is empty", path=path) from None
                duplicate_names(path, names)
            expected = n_columns if n_columns is not None else (len(names) if names else None)
            start = reader.line_num + 1
            for row in reader:
                if not row or (len(row) == 1 and not row[0].strip()):
                    start = reader.line_num + 1
                    continue  # blank line
                if expected is None:
                    expected = len(row)
                if len(row) != expected:
                    raise InputError(
                        f"row has {len(row)} fields, expected {expected} (truncated or malformed row)",
                        path=path,
                        line=start,
                    )
                rows.append(row)
                lines.append(start)
                start = reader.line_num + 1
                if len(rows) * expected >= batch_cells:
                    if names is None:
                        names = [str(i) for i in range(expected)]
                    advance(text.buffer.tell() if hasattr(text, "buffer") else 0)
                    any_rows = True
                    yield names, rows, lines
                    rows, lines = [], []
            if final_newline and physical.last and not physical.last.endswith(("\n", "\r")):
                raise InputError(
                    "the last line has no line break: the file looks cut short",
                    path=path,
                    line=physical.count,
                )
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            raise InputError(
                "a quoted field never closes: the file looks cut short", path=path, line=start
            ) from None
        raise InputError(f"not a valid CSV file ({exc})", path=path, line=start) from None
    if rows:
        if names is None:
            names = [str(i) for i in range(len(rows[0]))]
        yield names, rows, lines
    elif not any_rows:
        raise InputError("the file has no data rows", path=path)


def read_rows(
    path: str | Path,
    *,
    header: bool,
    n_columns: int | None = None,
    delimiter: str = ",",
    encoding: str = "utf-8-sig",
    final_newline: bool = False,
) -> tuple[list[str], list[list[str]], list[int]]:
    """Read a whole delimited file; return its header (or column numbers), rows and line numbers."""
    names: list[str] = []
    rows: list[list[str]] = []
    lines: list[int] = []
    for batch_names, batch, numbers in iter_batches(
        path,
        header=header,
        n_columns=n_columns,
        delimiter=delimiter,
        encoding=encoding,
        final_newline=final_newline,
    ):
        names = batch_names  # the same header in every batch
        rows += batch
        lines += numbers
    return names, rows, lines


def validate(
    path: str | Path,
    names: Sequence[str],
    rows: list[list[str]],
    lines: list[int],
    fields: Sequence[Field],
    *,
    key: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Check ``rows`` against ``fields`` and return a typed DataFrame with one column per field.

    The returned frame keeps each row's source line number in ``_line`` for later messages.
    """
    index = {n: i for i, n in enumerate(names)}
    chosen: dict[str, str | int] = {}
    missing = []
    for f in fields:
        if isinstance(f.column, int):
            chosen[f.name] = f.column
            continue
        options = (f.column,) if isinstance(f.column, str) else f.column
        found = next((o for o in options if o in index), None)
        if found is None:
            if f.required:
                missing.append(" or ".join(map(repr, options)))
            continue
        chosen[f.name] = found
    if missing:
        raise InputError(
            f"missing column(s) {', '.join(missing)}; the file has {', '.join(names)}",
            path=path,
            line=1,
        )
    out: dict[str, object] = {"_line": np.asarray(lines)}
    for f in fields:
        if f.name not in chosen:  # an optional column the file does not have
            out[f.name] = np.full(len(rows), None, dtype=object)
            continue
        where = chosen[f.name]
        col = index[where] if isinstance(where, str) else where
        label = where if isinstance(where, str) else f"{f.name} (column {col + 1})"
        values = pd.Series([row[col] for row in rows], dtype=object).str.strip()
        empty = values.isin(MISSING) if f.kind in ("integer", "number") else values.eq("")
        if f.required and empty.any():
            at = int(np.flatnonzero(empty.to_numpy())[0])
            raise InputError("required value is missing", path=path, line=lines[at], field=label)
        out[f.name] = _convert(path, f, label, values, empty, lines)
    frame = pd.DataFrame(out)
    if key:
        check_unique(path, frame, key)
    return frame


def check_unique(path: str | Path, frame: pd.DataFrame, key: Sequence[str]) -> None:
    """Refuse a second row with the same ``key``, naming both lines."""
    key = list(key)
    if len(key) == 1 and len(frame) > 100_000:  # large files: count distinct codes in Arrow first
        import pyarrow as pa
        import pyarrow.compute as pc

        # The system pool hands its ~200 MB back at once (Arrow's own pool would keep it).
        distinct = pc.count_distinct(pa.array(frame[key[0]]), memory_pool=pa.system_memory_pool())
        if distinct.as_py() == len(frame):
            return
    dup = frame.duplicated(key, keep="first")
    if dup.any():
        at = int(np.flatnonzero(dup.to_numpy())[0])
        first = frame.loc[frame[key].eq(frame.iloc[at][key]).all(axis=1), "_line"].iloc[0]
        shown = ", ".join(str(frame.iloc[at][k]) for k in key)
        raise InputError(
            f"duplicate {'/'.join(key)} {shown} (first seen on line {first})",
            path=path,
            line=int(frame["_line"].iloc[at]),
            field=key[0],
        )


def _first_bad(path, label, bad: np.ndarray, values: pd.Series, lines, problem: str) -> None:
    if bad.any():
        at = int(np.flatnonzero(bad)[0])
        raise InputError(problem, path=path, line=lines[at], field=label, value=values.iloc[at])


def _convert(path, f: Field, label, values: pd.Series, empty: pd.Series, lines) -> object:
    present = ~empty.to_numpy()

    def text(series: pd.Series) -> np.ndarray:
        out = series.to_numpy(dtype=object, copy=True)
        out[~present] = None
        return out

    if f.kind == "text":
        return text(values)
    if f.kind == "code":
        ok = values.str.fullmatch(f.pattern or ODS_CODE).fillna(False).to_numpy()
        _first_bad(
            path, label, present & ~ok, values, lines, f"not a valid code (expected {f.pattern or ODS_CODE})"
        )
        return text(values)
    if f.kind == "postcode":
        norm = values.str.upper().str.replace(r"\s+", "", regex=True)
        ok = norm.str.fullmatch(POSTCODE.replace(" ?", "")).fillna(False).to_numpy()
        if f.pattern:  # official non-standard codes, e.g. GIR 0AA
            ok = ok | norm.str.fullmatch(f.pattern).fillna(False).to_numpy()
        _first_bad(path, label, present & ~ok, values, lines, "not a UK postcode")
        spaced = norm.str[:-3] + " " + norm.str[-3:]
        return text(spaced)
    if f.kind in ("integer", "number"):
        numeric = values
        if f.thousands:
            grouped = values.str.contains(",", regex=False).fillna(False).to_numpy()
            ok = values.str.fullmatch(_GROUPED).fillna(False).to_numpy()
            _first_bad(
                path,
                label,
                present & grouped & ~ok,
                values,
                lines,
                "not a number (thousands separators must group three digits, as in 1,592)",
            )
            numeric = values.str.replace(",", "", regex=False)
        numbers = pd.to_numeric(
            pd.Series(np.where(present, numeric.to_numpy(dtype=object), None)), errors="coerce"
        ).to_numpy(dtype=float)
        words = present & np.isnan(numbers) & ~values.str.lower().isin(["nan", "+nan", "-nan"]).to_numpy()
        _first_bad(path, label, words, values, lines, "not a number")
        _first_bad(path, label, present & ~np.isfinite(numbers), values, lines, "not a finite number")
        low = f.minimum if f.minimum is not None else (0 if f.kind == "integer" else None)
        high = f.maximum if f.maximum is not None else (INT32_MAX if f.kind == "integer" else None)
        if low is not None:
            below = "cannot be negative" if low == 0 else f"must be at least {low:g}"
            _first_bad(path, label, present & (numbers < low), values, lines, below)
        if high is not None:
            _first_bad(path, label, present & (numbers > high), values, lines, f"must be at most {high:g}")
        if f.kind == "integer":
            whole = ~present | (numbers == np.round(numbers))
            _first_bad(path, label, ~whole, values, lines, "not a whole number")
            return pd.array(np.where(present, numbers, np.nan), dtype="Float64").astype("Int64")
        return np.where(present, numbers, np.nan)
    if f.kind == "date":
        parsed = pd.to_datetime(pd.Series(text(values)), format=f.date_format, errors="coerce")
        _first_bad(
            path,
            label,
            present & parsed.isna().to_numpy(),
            values,
            lines,
            f"not a date in the form {f.date_format}",
        )
        return parsed.dt.date.to_numpy()
    raise ValueError(f"unknown field kind {f.kind!r}")  # a programming error, not a user's


def read_validated(
    path: str | Path,
    fields: Sequence[Field],
    *,
    header: bool = True,
    n_columns: int | None = None,
    delimiter: str = ",",
    encoding: str = "utf-8-sig",
    key: Sequence[str] | None = None,
    final_newline: bool = False,
) -> pd.DataFrame:
    """Read and validate a file batch by batch (see ``iter_batches`` and ``validate``); only the
    typed columns of ``fields`` are kept between batches."""
    frames = [
        validate(path, names, rows, lines, fields)
        for names, rows, lines in iter_batches(
            path,
            header=header,
            n_columns=n_columns,
            delimiter=delimiter,
            encoding=encoding,
            final_newline=final_newline,
        )
    ]
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    if key:
        check_unique(path, frame, key)
    return frame


def coverage_notes(
    path: str | Path, count: int, *, national_minimum: int | None, what: str, area_editions: bool = False
) -> list[str]:
    """Check a file's size against the smallest national edition of its kind.

    Kinds published only as national files (``area_editions=False``: IMD, ODS files, ONS lookups and
    centroids, LSOA registrations) are refused under half of ``national_minimum``: a smaller file can
    only be cut short. For kinds also downloaded by area (``area_editions=True``: boundaries by local
    authority, population and list sizes filtered to an area) a file under a third is read as an area
    extract (the largest NHS region holds under a fifth of England) and noted as such; one between a
    third and a half is too big for an extract and too small for the national file, so it is refused
    as cut short. One between a half and the minimum imports with a warning.
    """
    if national_minimum is None or count >= national_minimum:
        return []
    if count >= national_minimum / 2:
        return [
            f"warning: {count:,} {what}, fewer than the {national_minimum:,} of the smallest national "
            "edition; check that the file is complete"
        ]
    if not area_editions:
        raise InputError(
            f"only {count:,} {what}: under half of the {national_minimum:,} of the smallest national "
            "edition, and this file is published only for all of England; the file looks cut short",
            path=path,
        )
    if count >= national_minimum / 3:
        raise InputError(
            f"only {count:,} {what}: under half of the {national_minimum:,} of the smallest national "
            "edition, yet too many for an area extract; the file looks cut short",
            path=path,
        )
    return [
        f"{count:,} {what} (the national file has at least {national_minimum:,}): read as an area extract"
    ]
