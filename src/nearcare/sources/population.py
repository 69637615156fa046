"""ONS small-area population estimates (SAPE) by LSOA.

Files list local authorities and regions too; only LSOA rows are kept. The vintage matters:
estimates up to mid-2020 are on LSOA 2011, later ones on LSOA 2021. ``build`` maps 2011 figures to
2021 areas with the ONS lookup and labels the result.
"""

from __future__ import annotations

import re
from pathlib import Path

from nearcare._errors import InputError
from nearcare.sources._importer import Importer, Parsed
from nearcare.sources._read import LSOA_CODE, Field, coverage_notes, read_rows, validate

CODE_COLUMNS = ("Area Codes", "LSOA Code", "LSOA 2021 Code", "LSOA 2011 Code", "lsoa_code")
# LSOAs in England alone (some re-publications drop Wales); SAPE files cover England and Wales.
NATIONAL_MINIMUM = {"lsoa11": 32_844, "lsoa21": 33_755}
MAX_LSOA_POPULATION = 100_000  # LSOAs hold about 1,000-3,000 people; the largest under 20,000


def parse_population(path: Path, *, year: int | None = None, geography: str | None = None) -> Parsed:
    """LSOA populations (all ages). ``year`` and ``geography`` (lsoa11|lsoa21) are read from the
    file's name and header when not given."""
    names, rows, lines = read_rows(path, header=True, final_newline=True)
    code_column = next((c for c in CODE_COLUMNS if c in names), None)
    if code_column is None:
        raise InputError(f"missing column: one of {', '.join(CODE_COLUMNS)}", path=path, line=1)
    if year is None:
        found = re.search(r"mid[-_ ]?(\d{4})", path.name, flags=re.IGNORECASE)
        if not found:
            raise InputError("cannot tell the estimate's year from the file name; give --year", path=path)
        year = int(found.group(1))
    if geography is None:
        geography = "lsoa21" if ("2021" in code_column or year >= 2021) else "lsoa11"
    if geography not in ("lsoa11", "lsoa21"):
        raise InputError(f"geography must be lsoa11 or lsoa21, not {geography!r}")
    at = names.index(code_column)
    keep = [i for i, r in enumerate(rows) if r[at].strip()[:3] in ("E01", "W01")]
    skipped = len(rows) - len(keep)
    if not keep:
        raise InputError(
            f"no LSOA rows (codes starting E01 or W01) in column {code_column!r}",
            path=path,
            field=code_column,
        )
    frame = validate(
        path,
        names,
        [rows[i] for i in keep],
        [lines[i] for i in keep],
        [
            Field("lsoa_code", code_column, "code", pattern=LSOA_CODE),
            Field(
                "population",
                ("All Ages", "Total", "all_ages", "population"),
                "integer",
                thousands=True,
                maximum=MAX_LSOA_POPULATION,
            ),
        ],
        key=["lsoa_code"],
    )
    frame["geography"] = geography
    frame["year"] = year
    notes = [f"{skipped} rows for larger areas (local authorities, regions) were left out"] if skipped else []
    notes += coverage_notes(
        path, len(frame), national_minimum=NATIONAL_MINIMUM[geography], what="LSOAs", area_editions=True
    )  # ONS has published small-area estimates by region
    return Parsed({"population": frame}, f"mid-{year}", notes)


IMPORTERS = [
    Importer(
        "population",
        "ONS LSOA population estimates (SAPE)",
        parse_population,
        "Office for National Statistics",
        "Open Government Licence v3.0",
    ),
]
