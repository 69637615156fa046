"""Reading and validating public CSV files: the one way every importer reads its input.

Every row is checked for its length (a truncated row is an error, not a short record), and every
field for its kind, before anything is written; the first problem found is raised as an
``InputError`` naming the file, the line and the field.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Sequence
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
MISSING = {"", "NA", "N/A", "NULL", "null", "NaN", "nan", ".."}


@dataclass(frozen=True)
class Field:
    """One field of a source file: where it is, what it must hold, and its name in the store."""

    name: str
    column: str | int | tuple[str, ...]  # header name, alternatives, or 0-based position
    kind: str = "text"  # text | code | integer | number | date | postcode
    required: bool = True
    pattern: str | None = None  # for kind="code": the whole value must match
    date_format: str | None = None  # for kind="date"
    thousands: bool = False  # for numbers written like "1,632"


def _open_text(path: Path, encoding: str) -> io.TextIOBase:
    raw = open(path, "rb")
    if path.suffix == ".gz":
        raw = gzip.open(raw)  # type: ignore[assignment]
    return io.TextIOWrapper(raw, encoding=encoding, newline="")


def read_rows(
    path: str | Path,
    *,
    header: bool,
    n_columns: int | None = None,
    delimiter: str = ",",
    encoding: str = "utf-8-sig",
) -> tuple[list[str], list[list[str]], list[int]]:
    """Read a delimited file; return its header (or column numbers), rows and each row's line number.

    With ``n_columns`` every row must have exactly that many fields; otherwise every row must have
    as many fields as the header.
    """
    path = Path(path)
    if not path.exists():
        raise InputError("no such file", path=path)
    if path.stat().st_size == 0:
        raise InputError("the file is empty", path=path)
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        with _open_text(path, encoding) as text, reading_progress(path) as advance:
            reader = csv.reader(text, delimiter=delimiter)
            names: list[str] | None = None
            if header:
                try:
                    names = [h.strip() for h in next(reader)]
                except StopIteration:
                    raise InputError("the file is empty", path=path) from None
            expected = n_columns if n_columns is not None else (len(names) if names else None)
            for row in reader:
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue  # blank line
                if expected is None:
                    expected = len(row)
                if len(row) != expected:
                    raise InputError(
                        f"row has {len(row)} fields, expected {expected} (truncated or malformed row)",
                        path=path, line=reader.line_num,
                    )
                rows.append(row)
                lines.append(reader.line_num)
                if len(rows) % 50_000 == 0:
                    advance(text.buffer.tell() if hasattr(text, "buffer") else 0)
    except UnicodeDecodeError as exc:
        raise InputError(f"not text in {encoding} ({exc.reason})", path=path) from None
    except csv.Error as exc:
        raise InputError(f"not a valid CSV file ({exc})", path=path) from None
    if not rows:
        raise InputError("the file has no data rows", path=path)
    if names is None:
        names = [str(i) for i in range(len(rows[0]))]
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
            path=path, line=1,
        )
    table = np.array(rows, dtype=object)
    out: dict[str, object] = {"_line": np.asarray(lines)}
    for f in fields:
        if f.name not in chosen:  # an optional column the file does not have
            out[f.name] = np.full(len(rows), None, dtype=object)
            continue
        where = chosen[f.name]
        col = index[where] if isinstance(where, str) else where
        label = where if isinstance(where, str) else f"{f.name} (column {col + 1})"
        values = pd.Series(table[:, col], dtype=object).str.strip()
        empty = values.isin(MISSING) if f.kind in ("integer", "number") else values.eq("")
        if f.required and empty.any():
            at = int(np.flatnonzero(empty.to_numpy())[0])
            raise InputError("required value is missing", path=path, line=lines[at], field=label)
        out[f.name] = _convert(path, f, label, values, empty, lines)
    frame = pd.DataFrame(out)
    if key:
        dup = frame.duplicated(list(key), keep="first")
        if dup.any():
            at = int(np.flatnonzero(dup.to_numpy())[0])
            first = frame.loc[frame[list(key)].eq(frame.loc[at, list(key)]).all(axis=1), "_line"].iloc[0]
            shown = ", ".join(str(frame.loc[at, k]) for k in key)
            raise InputError(
                f"duplicate {'/'.join(key)} {shown} (first seen on line {first})",
                path=path, line=lines[at], field=key[0],
            )
    return frame


def _first_bad(path, label, bad: np.ndarray, values: pd.Series, lines, problem: str) -> None:
    if bad.any():
        at = int(np.flatnonzero(bad)[0])
        raise InputError(problem, path=path, line=lines[at], field=label, value=values.iloc[at])


def _convert(path, f: Field, label, values: pd.Series, empty: pd.Series, lines) -> object:
    present = ~empty.to_numpy()

    def text(series: pd.Series) -> np.ndarray:
        return np.where(present, series.to_numpy(dtype=object), None)

    if f.kind == "text":
        return text(values)
    if f.kind == "code":
        ok = values.str.fullmatch(f.pattern or ODS_CODE).fillna(False).to_numpy()
        _first_bad(path, label, present & ~ok, values, lines, f"not a valid code (expected {f.pattern or ODS_CODE})")
        return text(values)
    if f.kind == "postcode":
        norm = values.str.upper().str.replace(r"\s+", "", regex=True)
        ok = norm.str.fullmatch(POSTCODE.replace(" ?", "")).fillna(False).to_numpy()
        _first_bad(path, label, present & ~ok, values, lines, "not a UK postcode")
        spaced = norm.str[:-3] + " " + norm.str[-3:]
        return text(spaced)
    if f.kind in ("integer", "number"):
        numeric = values.str.replace(",", "", regex=False) if f.thousands else values
        numbers = pd.to_numeric(pd.Series(np.where(present, numeric.to_numpy(dtype=object), None)),
                                errors="coerce").to_numpy(dtype=float)
        _first_bad(path, label, present & np.isnan(numbers), values, lines, "not a number")
        if f.kind == "integer":
            whole = np.isnan(numbers) | (numbers == np.round(numbers))
            _first_bad(path, label, ~whole, values, lines, "not a whole number")
            negative = ~np.isnan(numbers) & (numbers < 0)
            _first_bad(path, label, negative, values, lines, "a count cannot be negative")
            return pd.array(np.where(np.isnan(numbers), None, numbers), dtype="Int64")
        return numbers
    if f.kind == "date":
        parsed = pd.to_datetime(pd.Series(text(values)), format=f.date_format, errors="coerce")
        _first_bad(path, label, present & parsed.isna().to_numpy(), values, lines,
                   f"not a date in the form {f.date_format}")
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
) -> pd.DataFrame:
    """Read and validate a file in one step (see ``read_rows`` and ``validate``)."""
    names, rows, lines = read_rows(path, header=header, n_columns=n_columns, delimiter=delimiter, encoding=encoding)
    return validate(path, names, rows, lines, fields, key=key)

