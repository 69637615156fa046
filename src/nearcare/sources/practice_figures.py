"""Practice figures: GP workforce FTE, age mix of the registered list, and QOF prevalence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from nearcare._errors import InputError
from nearcare.sources._importer import Importer, Parsed
from nearcare.sources._read import ODS_CODE, Field, check_unique, read_rows, validate

OGL = "Open Government Licence v3.0"
QOF_CONDITIONS = ("AF", "BP", "CHD", "CHOL", "HF", "HYP", "LVSD", "PAD", "STIA")
MAX_LIST_SIZE = 1_000_000  # the largest practices hold about 100,000 patients
MAX_FTE = 2_000  # whole-time equivalents at one practice; the largest have a few hundred
YEARS = (1990, 2100)


def parse_workforce(path: Path, *, year: int | None = None) -> Parsed:
    """GP workforce FTE by practice: NHS 'General Practice Workforce' practice-level CSV
    (``PRAC_CODE``, one year per file: give ``year``) or a yearly table with a ``Year`` column."""
    names, rows, lines = read_rows(path, header=True, final_newline=True)
    frame = validate(
        path,
        names,
        rows,
        lines,
        [
            Field("practice_code", ("PRAC_CODE", "Practice.Code", "PRACTICE_CODE"), "code", pattern=ODS_CODE),
            Field("year", ("Year", "YEAR"), "integer", required=False, minimum=YEARS[0], maximum=YEARS[1]),
            # HEEC's yearly table averages snapshots, so patients may be fractional.
            Field("patients", "TOTAL_PATIENTS", "number", required=False, minimum=0, maximum=MAX_LIST_SIZE),
            *[
                Field(name, column, "number", required=False, minimum=0, maximum=MAX_FTE)
                for name, column in (
                    ("gp_fte", "TOTAL_GP_EXTGL_FTE"),
                    ("locum_trainee_fte", "TOTAL_LOCUUM_TRN_FTE"),
                    ("nurse_fte", "TOTAL_NURSES_FTE"),
                    ("direct_patient_care_fte", "TOTAL_DPC_FTE"),
                    ("admin_fte", "TOTAL_ADMIN_FTE"),
                )
            ],
        ],
    )
    if frame["year"].isna().all():
        if year is None:
            raise InputError("the file has no Year column; give --year", path=path)
        frame["year"] = year
    elif frame["year"].isna().any():
        row = frame[frame["year"].isna()].iloc[0]
        raise InputError("required value is missing", path=path, line=int(row["_line"]), field="Year")
    check_unique(path, frame, ["practice_code", "year"])
    return Parsed({"gp_workforce": frame}, f"years {int(frame['year'].min())}-{int(frame['year'].max())}")


def parse_age_mix(path: Path) -> Parsed:
    """Age mix of each practice's registered list (House of Commons Library ``gp_demographics.csv``,
    from NHS registrations by age)."""
    names, rows, lines = read_rows(path, header=True, final_newline=True)
    frame = validate(
        path,
        names,
        rows,
        lines,
        [
            Field("practice_code", "PRACTICE_CODE", "code", pattern=ODS_CODE),
            Field("patients", "Total", "integer", maximum=MAX_LIST_SIZE),
            Field("mean_age", "AgeAll", "number", required=False, minimum=0, maximum=120),
            # shares of the list, 0-1
            *[
                Field(name, column, "number", required=False, minimum=0, maximum=1)
                for name, column in (
                    ("pct_male", "Percent_male"),
                    ("pct_65_plus", "65perc"),
                    ("pct_50_plus", "50perc"),
                    ("pct_0_64", "0_64perc"),
                )
            ],
        ],
        key=["practice_code"],
    )
    for column in ("pct_male", "pct_65_plus", "pct_50_plus", "pct_0_64"):
        frame[column] = frame[column] * 100  # the file holds shares; the store holds percentages
    return Parsed({"practice_age_mix": frame}, "about April 2020")


def parse_qof(path: Path) -> Parsed:
    """QOF prevalence and achievement by practice, wide layout (``Prevalence_AF``, ``Achievement_AF``,
    ``List.Size_AF``, ...), as in the Health Equity Evidence Centre's CVD table."""
    names, rows, lines = read_rows(path, header=True, final_newline=True)
    unattributed = 0
    if "Practice.Code" in names:  # rows with no practice code cannot be attributed to anyone
        at = names.index("Practice.Code")
        keep = [i for i, r in enumerate(rows) if r[at].strip() not in ("", "NA")]
        unattributed = len(rows) - len(keep)
        rows, lines = [rows[i] for i in keep], [lines[i] for i in keep]
    conditions = [c for c in QOF_CONDITIONS if f"Prevalence_{c}" in names]
    if not conditions:
        raise InputError("no Prevalence_<condition> columns found", path=path, line=1)
    fields = [Field("practice_code", "Practice.Code", "code", pattern=ODS_CODE)]
    for c in conditions:
        fields += [
            Field(f"prevalence_{c}", f"Prevalence_{c}", "number", required=False, minimum=0, maximum=100),
            Field(f"achievement_{c}", f"Achievement_{c}", "number", required=False, minimum=0, maximum=100),
            Field(f"list_{c}", f"List.Size_{c}", "integer", required=False, maximum=MAX_LIST_SIZE),
        ]
    frame = validate(path, names, rows, lines, fields, key=["practice_code"])
    long = pd.concat(
        [
            pd.DataFrame(
                {
                    "_line": frame["_line"],
                    "practice_code": frame["practice_code"],
                    "condition": c,
                    "prevalence_pct": frame[f"prevalence_{c}"],
                    "achievement_pct": frame[f"achievement_{c}"],
                    "list_size": frame[f"list_{c}"],
                }
            )
            for c in conditions
        ],
        ignore_index=True,
    )
    notes = ["QOF year is not stated in this file (list sizes match about 2023-24)"]
    if unattributed:
        notes.append(f"{unattributed} rows with no practice code were left out")
    return Parsed({"qof_prevalence": long}, None, notes)


def parse_practice_deprivation(path: Path) -> Parsed:
    """Deprivation of each practice's population: OHID Fingertips indicator 93553 ('Deprivation
    score (IMD 2019)') as downloaded, one row per area; only rows for GP practices are kept.

    The quintile is among all practices in the file (1 = most deprived fifth), so import the
    national file, not a local extract, for national quintiles.
    """
    names, rows, lines = read_rows(path, header=True, final_newline=False)  # Fingertips ends without one
    if "Area Type" not in names:
        raise InputError(
            "missing column 'Area Type'; is this a Fingertips indicator download?", path=path, line=1
        )
    at = names.index("Area Type")
    keep = [i for i, r in enumerate(rows) if r[at].strip() in ("GP", "GPs")]
    if not keep:
        raise InputError("no rows with Area Type 'GP'", path=path)
    frame = validate(
        path,
        names,
        [rows[i] for i in keep],
        [lines[i] for i in keep],
        [
            Field("practice_code", "Area Code", "code", pattern=ODS_CODE),
            Field("imd_score", "Value", "number", minimum=0, maximum=100),
            Field("indicator", "Indicator ID", "integer"),
        ],
        key=["practice_code"],
    )
    if set(frame["indicator"].dropna().astype(int)) != {93553}:
        raise InputError(
            "expected indicator 93553 (Deprivation score, IMD 2019)",
            path=path,
            value=sorted(set(frame["indicator"].dropna().astype(int)))[0],
        )
    # Rank 0 = most deprived (highest score); quintile 1 = most deprived fifth.
    rank = frame["imd_score"].rank(ascending=False, method="first")
    frame["imd_quintile_england"] = np.ceil(rank / len(frame) * 5).astype(int).clip(1, 5)
    frame["edition"] = 2019
    return Parsed(
        {
            "practice_deprivation": frame[
                ["_line", "practice_code", "imd_score", "imd_quintile_england", "edition"]
            ]
        },
        "IMD 2019",
    )


IMPORTERS = [
    Importer(
        "gp-workforce",
        "NHS General Practice Workforce, FTE by practice",
        parse_workforce,
        "NHS England (formerly NHS Digital), General Practice Workforce",
        OGL,
    ),
    Importer(
        "practice-age-mix",
        "Age mix of practice lists (House of Commons Library gp_demographics.csv)",
        parse_age_mix,
        "House of Commons Library, from NHS Digital",
        "Open Parliament Licence v3.0",
    ),
    Importer(
        "qof-prevalence",
        "QOF prevalence by practice (wide table)",
        parse_qof,
        "NHS England QOF, via Health Equity Evidence Centre",
        OGL,
    ),
    Importer(
        "practice-deprivation",
        "OHID Fingertips indicator 93553: IMD score of each practice's population",
        parse_practice_deprivation,
        "Office for Health Improvement and Disparities, Fingertips",
        OGL,
    ),
]
