"""English Indices of Deprivation (IMD) 2019 (LSOA 2011) and 2025 (LSOA 2021), File 7 layout."""

from __future__ import annotations

from pathlib import Path

from nearcare.sources._importer import Importer, Parsed
from nearcare.sources._read import ENGLISH_LSOA_CODE, Field, coverage_notes, read_validated

PUBLISHER = "Ministry of Housing, Communities and Local Government"
OGL = "Open Government Licence v3.0"
# LSOAs in England: every edition ranks each of them once (ranks run 1..this).
LSOAS = {2025: 33_755, 2019: 32_844}
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
    suffix = {
        "decile": "Decile (where 1 is most deprived 10% of LSOAs)",
        "rank": "Rank (where 1 is most deprived)",
        "score": "Score",
    }[what]
    return f"{stem} {suffix}"


def _fields(edition: int) -> list[Field]:
    code_names = (
        ("lsoa21_code", "LSOA code (2021)") if edition == 2025 else ("lsoa11_code", "LSOA code (2011)")
    )
    imd = "Index of Multiple Deprivation (IMD)"
    fields = [
        Field("lsoa_code", code_names, "code", pattern=ENGLISH_LSOA_CODE),
        # Scores are weighted averages of domain scores; published IMD scores lie within 0-100.
        Field(
            "imd_score",
            ("IMD_score", _official(imd, "score")),
            "number",
            required=False,
            minimum=0,
            maximum=100,
        ),
        Field("imd_rank", ("IMD_rank", _official(imd, "rank")), "integer", minimum=1, maximum=LSOAS[edition]),
        Field("imd_decile", ("IMD_decile", _official(imd, "decile")), "integer", minimum=1, maximum=10),
    ]
    for name, stems in _DOMAINS.items():
        options = tuple(f"{s}_decile" for s in stems) + tuple(
            _official(f"{s} Domain" if " " not in s else s, "decile") for s in stems
        )
        fields.append(Field(f"{name}_decile", options, "integer", required=False, minimum=1, maximum=10))
    return fields


def _parse(path: Path, edition: int) -> Parsed:
    frame = read_validated(path, _fields(edition), key=["lsoa_code"], final_newline=True)
    frame["edition"] = edition
    notes = coverage_notes(path, len(frame), national_minimum=LSOAS[edition], what="LSOAs")
    return Parsed({"imd": frame}, f"IoD{edition}", notes)


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
