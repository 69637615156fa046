"""English Indices of Deprivation (IMD) 2019 (LSOA 2011) and 2025 (LSOA 2021), File 7 layout."""

from __future__ import annotations

from pathlib import Path

from nearcare.sources import Importer, Parsed
from nearcare.sources._read import ENGLISH_LSOA_CODE, Field, read_validated

PUBLISHER = "Ministry of Housing, Communities and Local Government"
OGL = "Open Government Licence v3.0"
_DOMAINS = {
    "income": ("Income",),
    "employment": ("Employment",),
    "education": ("Education",),
    "health": ("Health",),
    "crime": ("Crime",),
    "housing": ("Housing_and_Services", "Housing_and_Access", "Barriers to Housing and Services"),
    "environment": ("Environment", "Living Environment"),
}


def _official(stem: str, what: str) -> str:
    suffix = {"decile": "Decile (where 1 is most deprived 10% of LSOAs)",
              "rank": "Rank (where 1 is most deprived)", "score": "Score"}[what]
    return f"{stem} {suffix}"


def _fields(edition: int) -> list[Field]:
    code_names = ("lsoa21_code", "LSOA code (2021)") if edition == 2025 else ("lsoa11_code", "LSOA code (2011)")
    imd = "Index of Multiple Deprivation (IMD)"
    fields = [
        Field("lsoa_code", code_names, "code", pattern=ENGLISH_LSOA_CODE),
        Field("imd_score", ("IMD_score", _official(imd, "score")), "number", required=False),
        Field("imd_rank", ("IMD_rank", _official(imd, "rank")), "integer"),
        Field("imd_decile", ("IMD_decile", _official(imd, "decile")), "integer"),
    ]
    for name, stems in _DOMAINS.items():
        options = tuple(f"{s}_decile" for s in stems) + tuple(
            _official(f"{s} Domain" if " " not in s else s, "decile") for s in stems)
        fields.append(Field(f"{name}_decile", options, "integer", required=False))
    return fields


def _parse(path: Path, edition: int) -> Parsed:
    frame = read_validated(path, _fields(edition), key=["lsoa_code"])
    deciles = [c for c in frame.columns if c.endswith("_decile")]
    for column in deciles:
        values = frame[column].dropna()
        if ((values < 1) | (values > 10)).any():
            from nearcare._errors import InputError

            row = frame[(frame[column] < 1) | (frame[column] > 10)].iloc[0]
            raise InputError("a decile must lie between 1 and 10", path=path, line=int(row["_line"]),
                             field=column, value=row[column])
    frame["edition"] = edition
    return Parsed({"imd": frame}, f"IoD{edition}")


def parse_imd2025(path: Path) -> Parsed:
    """IoD2025 on LSOA 2021 (scores, ranks and deciles for IMD and its seven domains)."""
    return _parse(path, 2025)


def parse_imd2019(path: Path) -> Parsed:
    """IoD2019 on LSOA 2011 (scores are optional: some re-publications carry only ranks and deciles)."""
    return _parse(path, 2019)


IMPORTERS = [
    Importer("imd2025", "English Indices of Deprivation 2025, LSOA 2021", parse_imd2025, PUBLISHER, OGL),
    Importer("imd2019", "English Indices of Deprivation 2019, LSOA 2011", parse_imd2019, PUBLISHER, OGL),
]
