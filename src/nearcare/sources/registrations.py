"""NHS 'Patients Registered at a GP Practice': practice totals and the LSOA-level file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from nearcare._errors import InputError
from nearcare.sources._importer import Importer, Parsed
from nearcare.sources._read import (
    LSOA_CODE,
    ODS_CODE,
    Field,
    check_unique,
    coverage_notes,
    read_rows,
    validate,
)

PUBLISHER = "NHS England (formerly NHS Digital), Patients Registered at a GP Practice"
OGL = "Open Government Licence v3.0"
MAX_LIST_SIZE = 1_000_000  # the largest practices hold about 100,000 patients
# Practices in England: never under 6,000 in any monthly file so far (6,658 in Jan 2021).
NATIONAL_MINIMUM_PRACTICES = 6_000
# Extract dates appear as 01JAN2021 in older files and 2026-04-01 in newer ones.
_DATE_FORMATS = ("%d%b%Y", "%Y-%m-%d", "%d/%m/%Y")


def _extract_dates(path: Path, frame: pd.DataFrame) -> pd.Series:
    text = frame["extract_date"].astype(str).str.upper()
    for fmt in _DATE_FORMATS:
        parsed = pd.to_datetime(text, format=fmt, errors="coerce")
        if parsed.notna().all():
            return parsed.dt.date
    bad = frame.iloc[
        int(np.flatnonzero(pd.to_datetime(text, format=_DATE_FORMATS[0], errors="coerce").isna())[0])
    ]
    raise InputError(
        "EXTRACT_DATE is not a date like 01JAN2021 or 2021-01-01",
        path=path,
        line=int(bad["_line"]),
        field="EXTRACT_DATE",
        value=bad["extract_date"],
    )


def _all_persons(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Keep the all-persons rows where a file splits by sex or age."""
    if frame[column].notna().any():
        return frame[frame[column].fillna("ALL").str.upper().isin(["ALL", "ALL_AGES"])]
    return frame


def parse_practice_totals(path: Path) -> Parsed:
    """Registered patients per practice (``gp-reg-pat-prac-all.csv``)."""
    names, rows, lines = read_rows(path, header=True, final_newline=True)
    frame = validate(
        path,
        names,
        rows,
        lines,
        [
            Field("practice_code", ("CODE", "PRACTICE_CODE"), "code", pattern=ODS_CODE),
            Field("extract_date", "EXTRACT_DATE"),
            Field("sex", "SEX", required=False),
            Field("age", "AGE", required=False),
            Field("patients", "NUMBER_OF_PATIENTS", "integer", maximum=MAX_LIST_SIZE),
            Field("type", "TYPE", required=False),
        ],
    )
    frame = _all_persons(_all_persons(frame, "sex"), "age")
    if frame["type"].notna().any():
        frame = frame[frame["type"].fillna("GP") == "GP"]
    frame = frame.assign(extract_date=_extract_dates(path, frame))
    check_unique(path, frame, ["practice_code", "extract_date"])
    date = str(frame["extract_date"].max())
    # Accepted for an area: list sizes are commonly filtered to an ICB (as in the bundled LLR subset).
    notes = coverage_notes(
        path,
        frame["practice_code"].nunique(),
        national_minimum=NATIONAL_MINIMUM_PRACTICES,
        what="practices",
        area_editions=True,
    )
    return Parsed(
        {"gp_list_sizes": frame[["_line", "practice_code", "extract_date", "patients"]]}, date, notes
    )


def parse_lsoa_registrations(path: Path) -> Parsed:
    """Registered patients per practice per LSOA (``gp-reg-pat-prac-lsoa-all.csv``)."""
    # NHS England's files from this publication end in CRLF (as the practice totals file does).
    names, rows, lines = read_rows(path, header=True, final_newline=True)
    frame = validate(
        path,
        names,
        rows,
        lines,
        [
            Field("practice_code", "PRACTICE_CODE", "code", pattern=ODS_CODE),
            Field(
                "lsoa_code",
                ("LSOA_CODE", "LSOA_CODE_2021", "LSOA_CODE_2011"),
                "code",
                pattern=LSOA_CODE + "|NO2011|NO2021",
            ),
            Field("extract_date", "EXTRACT_DATE"),
            Field("sex", "SEX", required=False),
            Field("patients", "NUMBER_OF_PATIENTS", "integer", maximum=MAX_LIST_SIZE),
        ],
    )
    frame = _all_persons(frame, "sex")
    unknown = frame["lsoa_code"].str.startswith("NO")
    notes = (
        [f"{int(frame.loc[unknown, 'patients'].sum())} patients with no known LSOA were left out"]
        if unknown.any()
        else []
    )
    frame = frame[~unknown].assign(extract_date=_extract_dates(path, frame[~unknown]))
    check_unique(path, frame, ["practice_code", "lsoa_code", "extract_date"])
    # Published for all of England only: every practice appears, so a file with fewer is cut short.
    notes += coverage_notes(
        path, frame["practice_code"].nunique(), national_minimum=NATIONAL_MINIMUM_PRACTICES, what="practices"
    )
    date = str(frame["extract_date"].max())
    return Parsed(
        {"gp_registrations_lsoa": frame[["_line", "practice_code", "lsoa_code", "extract_date", "patients"]]},
        date,
        notes,
    )


IMPORTERS = [
    Importer(
        "gp-list-sizes",
        "NHS registered patients, practice totals (gp-reg-pat-prac-all.csv)",
        parse_practice_totals,
        PUBLISHER,
        OGL,
    ),
    Importer(
        "gp-lsoa-registrations",
        "NHS registered patients by practice and LSOA (gp-reg-pat-prac-lsoa-all.csv)",
        parse_lsoa_registrations,
        PUBLISHER,
        OGL,
    ),
]
