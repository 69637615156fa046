"""NHS England ODS organisation files (header-less, 27 columns) and the NHS Choices optician list.

ODS layout (1-based columns): 1 code, 2 name, 4 high-level health geography (ICB), 5-9 address,
10 postcode, 11 open date, 12 close date, 13 status (A/C/D/P), 15 commissioner (for GP
practices the sub-ICB location), 26 prescribing setting (4 = GP practice).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from nearcare.sources._importer import Importer, Parsed
from nearcare.sources._read import GB_LAT, GB_LON, ODS_CODE, Field, coverage_notes, read_validated

STATUS = {"A": "active", "C": "closed", "D": "dormant", "P": "proposed"}
GP_PRESCRIBING_SETTING = "4"
ODS_PUBLISHER = "NHS England, Organisation Data Service"
OGL = "Open Government Licence v3.0"
# Floors under every national edition (rows kept, open and closed): epraccur held 8,655 GP
# practices in Nov 2025, edispensary 20,932 pharmacies in Apr 2025, egdpprac 9,908 dental practices in
# May 2024. A file under a third of these is read as an area extract.
NATIONAL_MINIMUM = {"gp": 7_000, "pharmacy": 15_000, "dentist": 8_000}


def _ods_fields(extra: list[Field]) -> list[Field]:
    return [
        Field("code", 0, "code", pattern=ODS_CODE),
        Field("name", 1),
        Field("hlhg", 3, required=False),
        *[Field(f"address{i}", 3 + i, required=False) for i in range(1, 6)],
        Field("postcode", 9, "postcode", required=False),
        Field("open_date", 10, "date", date_format="%Y%m%d"),
        Field("close_date", 11, "date", required=False, date_format="%Y%m%d"),
        Field("status", 12, "code", pattern="[ACDP]"),
        *extra,
    ]


def _organisations(
    frame: pd.DataFrame, kind: str, *, sub_icb: str | None, icb: str, parent: str | None
) -> pd.DataFrame:
    address = frame[[f"address{i}" for i in range(1, 6)]].apply(
        lambda r: ", ".join(v for v in r if isinstance(v, str) and v), axis=1
    )
    return pd.DataFrame(
        {
            "_line": frame["_line"],
            "code": frame["code"],
            "name": frame["name"],
            "kind": kind,
            "status": frame["status"].map(STATUS),
            "open_date": frame["open_date"],
            "close_date": frame["close_date"],
            "postcode": frame["postcode"],
            "address": address,
            "sub_icb_code": frame[sub_icb] if sub_icb else None,
            "icb_code": frame[icb],
            "parent_code": frame[parent] if parent else None,
            "lat": np.nan,
            "lon": np.nan,
        }
    )


def _latest_date(frame: pd.DataFrame) -> str | None:
    dates = pd.concat([pd.Series(frame["open_date"]), pd.Series(frame["close_date"])]).dropna()
    return f"latest open/close date {max(dates)}" if len(dates) else None


def parse_epraccur(path: Path) -> Parsed:
    """GP practices from ODS ``epraccur.csv``; other prescribing cost centres are left out."""
    frame = read_validated(
        path,
        _ods_fields(
            [
                Field("commissioner", 14, "code", required=False, pattern=ODS_CODE),
                Field("prescribing_setting", 25, "code", pattern=r"\d{1,2}"),
            ]
        ),
        header=False,
        n_columns=27,
        key=["code"],
        final_newline=True,
    )
    practices = frame[frame["prescribing_setting"] == GP_PRESCRIBING_SETTING]
    others = len(frame) - len(practices)
    orgs = _organisations(practices, "gp", sub_icb="commissioner", icb="hlhg", parent=None)
    notes = (
        [
            f"{others} prescribing cost centres that are not GP practices (out-of-hours, walk-in, "
            "prisons, ...) were left out"
        ]
        if others
        else []
    )
    notes += coverage_notes(path, len(orgs), national_minimum=NATIONAL_MINIMUM["gp"], what="GP practices")
    return Parsed({"organisations": orgs}, _latest_date(frame), notes)


def parse_edispensary(path: Path) -> Parsed:
    """Community pharmacies (dispensing contractors' premises) from ODS ``edispensary.csv``."""
    frame = read_validated(
        path,
        _ods_fields([Field("parent", 14, "code", required=False, pattern=ODS_CODE)]),
        header=False,
        n_columns=27,
        key=["code"],
        final_newline=True,
    )
    orgs = _organisations(frame, "pharmacy", sub_icb=None, icb="hlhg", parent="parent")
    notes = coverage_notes(path, len(orgs), national_minimum=NATIONAL_MINIMUM["pharmacy"], what="pharmacies")
    return Parsed({"organisations": orgs}, _latest_date(frame), notes)


def parse_egdpprac(path: Path) -> Parsed:
    """General dental practices from ODS ``egdpprac.csv``."""
    frame = read_validated(
        path, _ods_fields([]), header=False, n_columns=27, key=["code"], final_newline=True
    )
    orgs = _organisations(frame, "dentist", sub_icb=None, icb="hlhg", parent=None)
    notes = coverage_notes(
        path, len(orgs), national_minimum=NATIONAL_MINIMUM["dentist"], what="dental practices"
    )
    return Parsed({"organisations": orgs}, _latest_date(frame), notes)


def parse_nhs_choices_opticians(path: Path) -> Parsed:
    """Opticians from the NHS Choices ``Optician.csv`` ('¬'-separated, Latin-1, with coordinates).

    There is no ODS file of optometrists; this list dates from 2014 and is labelled so. Sites are
    keyed ``NHSC<OrganisationID>``.
    """
    frame = read_validated(
        path,
        [
            Field("organisation_id", "OrganisationID", "code", pattern=r"\d{1,9}"),
            Field("name", "OrganisationName"),
            *[Field(f"address{i}", f"Address{i}", required=False) for i in range(1, 4)],
            Field("address4", "City", required=False),
            Field("address5", "County", required=False),
            Field("postcode", "Postcode", "postcode", required=False),
            Field("lat", "Latitude", "number", required=False, minimum=GB_LAT[0], maximum=GB_LAT[1]),
            Field("lon", "Longitude", "number", required=False, minimum=GB_LON[0], maximum=GB_LON[1]),
            Field("parent", "ParentODSCode", required=False),
        ],
        delimiter="\u00ac",
        encoding="latin-1",
        key=["organisation_id"],
        final_newline=True,
    )
    # OrganisationCode repeats across sites in this list; OrganisationID is unique.
    frame["code"] = "NHSC" + frame["organisation_id"].astype(str)
    frame["status"] = "A"
    frame["open_date"] = None
    frame["close_date"] = None
    orgs = _organisations(frame, "optometrist", sub_icb=None, icb="parent", parent=None)
    orgs["lat"] = frame["lat"]
    orgs["lon"] = frame["lon"]
    return Parsed(
        {"organisations": orgs},
        None,
        ["the NHS Choices optician list is from 2014: label results that use it as dated"],
    )


IMPORTERS = [
    Importer("ods-gp-practices", "ODS epraccur.csv: GP practices", parse_epraccur, ODS_PUBLISHER, OGL),
    Importer(
        "ods-pharmacies", "ODS edispensary.csv: community pharmacies", parse_edispensary, ODS_PUBLISHER, OGL
    ),
    Importer(
        "ods-dental-practices",
        "ODS egdpprac.csv: general dental practices",
        parse_egdpprac,
        ODS_PUBLISHER,
        OGL,
    ),
    Importer(
        "nhs-choices-opticians",
        "NHS Choices Optician.csv (2014): opticians with coordinates",
        parse_nhs_choices_opticians,
        "NHS Choices",
        "Open Government Licence v2.0",
    ),
]
