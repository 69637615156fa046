"""Write docs/SCHEMA.md from the store's DDL, with a sentence per table (run after changing the schema)."""

from __future__ import annotations

import re
from pathlib import Path

from nearcare.store import ANALYSIS_SCHEMA, AREA_SCHEMA, NETWORK_SCHEMA, SOURCE_SCHEMA

ABOUT = {
    "provenance": "Every imported file: kind, path, SHA-256, rows, data date, publisher, licence, time of import. "
    "A user's own files are here too, with publisher `user` and licence unknown (NULL): a defibrillator CSV "
    "(kind `defibrillator-csv`), neighbourhoods (`neighbourhoods`) and scenario files (`scenario`, rows = its "
    "changes).",
    "organisations": "Organisations from the ODS files and the optician list. `kind` is gp, pharmacy, dentist or "
    "optometrist (branch is reserved for ODS branch sites, which have no importer yet); `status` "
    "active, closed, dormant or proposed; `sub_icb_code` is a GP practice's commissioner; `lat`/`lon` "
    "only where the source gives coordinates (others are geocoded by postcode at `build`).",
    "postcodes": "Postcode points (Code-Point Open or ONSPD), in British National Grid metres and WGS84 degrees, "
    "with the LSOA 2021 (ONSPD only) and local authority (Code-Point's district, ONSPD's `oslaua`) "
    "where the file gives them.",
    "lsoa_boundaries": "LSOA 2021 boundaries as WKB in WGS84.",
    "lsoa_centroids": "Population-weighted centroids by LSOA code (2011 or 2021 codes).",
    "imd": "English Indices of Deprivation by edition (2019 on LSOA 2011, 2025 on LSOA 2021). Decile 1 is the most "
    "deprived 10% in England.",
    "lsoa_nhs_lookup": "LSOA 2021 to sub-ICB location and ICB (NHS and ONS codes).",
    "lsoa11_lsoa21": "LSOA 2011 to LSOA 2021 with the ONS change code (U unchanged, S split, M merged, X redrawn) and "
    "local authority.",
    "rural_urban": "ONS Rural-Urban Classification 2021.",
    "population": "Population estimates by LSOA, geography (lsoa11 or lsoa21) and year.",
    "gp_list_sizes": "Registered patients per practice per extract date.",
    "gp_registrations_lsoa": "Registered patients per practice per LSOA (when the LSOA-level file is imported).",
    "gp_workforce": "FTE by practice and year: GPs excluding locums and trainees (`gp_fte`), locums and trainees, "
    "nurses, direct patient care, admin.",
    "england_workforce": "England's totals per year from the national workforce file, over practices reporting GP "
    "FTE above 0 (derived when the bundle is made; the benchmark for `nearcare workforce gap`).",
    "practice_age_mix": "Age mix of each practice's list, in percentages.",
    "qof_prevalence": "QOF prevalence and achievement (percent) by practice and condition.",
    "osm_extracts": "OpenStreetMap extracts: path, SHA-256, extent, number of highway ways and defibrillators.",
    "area": "The area last built: code, kind (icb, sub-icb, local-authority, lsoa-list), name, and the population note.",
    "small_areas": "The area's LSOAs with names, local authority, sub-ICB, ICB, population, IMD 2025, rural-urban "
    "class, centroid (WGS84 and BNG) and boundary.",
    "sites": "The area's active organisations with coordinates (`geocoded_by`: source coordinates or postcode; NULL "
    "when not geocoded; `easting`/`northing` NULL then too) and the LSOA each stands in. GP practices belong "
    "to their commissioning sub-ICB, other services to the sub-ICB they stand in. `lsoa_placed_by` says how the "
    "LSOA was found (a boundary, the postcode file's LSOA, the nearest centroid in the postcode's local "
    "authority, or the nearest centroid).",
    "site_placement": "Per kind of service: how many organisations were placed in an LSOA of the area and how, and "
    "how many were not and why (not geocoded, outside the area, too far from any LSOA centroid); "
    "`in_sites` says whether they were kept in `sites` (on their commissioner's word) or left out.",
    "practices": "Each GP practice in the area: latest list size (and its date), latest GP and nurse FTE (and year), "
    "patients per GP FTE, age mix.",
    "networks": "One row per built network (walk, drive): the OSM extract it came from, its size, what was dropped "
    "outside the largest strongly connected part, and the walking speed.",
    "network_nodes": "Network nodes (OSM nodes) numbered from 0 per mode, in British National Grid metres.",
    "network_edges": "Directed edges: `length_m` in metres and `minutes` at the mode's speed.",
    "travel_times": "Pairs within the cutoff: LSOA (`origin_id`) to site (`destination_id`), door to door. `profile` "
    "is the travel asked for (walk, drive); `mode` how it was computed (walk, drive, or crowfly for a "
    "straight-line estimate).",
    "nearest_services": "For each LSOA, profile and kind of service: the nearest site by time, with no cutoff.",
    "travel_runs": "One row per profile and kind of service: cutoff, counts, and how many points were too far from "
    "the network.",
    "practice_deprivation": "Deprivation of each practice's registered population (IMD score, OHID Fingertips "
    "indicator 93553) and its quintile among all practices in the imported file (1 = most "
    "deprived fifth in England).",
    "access": "Access per LSOA, kind of service, profile and mode: minutes to the nearest, services within the "
    "threshold, and E2SFCA (supply per 1,000 people; `e2sfca_need` per 1,000 need-weighted people), with "
    "the supply measure and catchment used.",
    "defibrillators": "Known defibrillators (from OSM, a CSV export or public reports): place, access (public, "
    "restricted, unknown), hours, whether outdoors, guardian, The Circuit registration, expiry and "
    "check dates, and status (reported, verified, registered). `source_id`: the OSM extract or the CSV it came "
    "from; NULL for one added by a public report (its record is in `defib_reports`).",
    "defib_reports": "Public reports of defibrillators, each matched to a known one within 50 m or added as new.",
    "neighbourhoods": "Each LSOA's neighbourhood (designed or loaded) and how it was made. `source_id`: the loaded "
    "file; NULL when designed.",
    "allocations": "The last proportionate allocation for each kind of target: need, floor, cap and units given.",
    "unsnapped": "LSOA centroids and sites farther than the snapping limit from the network: reported, not joined.",
}


def main() -> None:
    out = [
        "# Store schema",
        "",
        "One DuckDB file per analysis. *Source tables* are filled by `nearcare import`; *area tables* are derived "
        "by `nearcare build`; *network tables* by `nearcare network` and `nearcare travel-times`; "
        "*analysis tables* by `nearcare access` and `nearcare allocate`. Coordinates: "
        "`lat`/`lon` are WGS84 degrees; `easting`/`northing` are British National Grid (EPSG:27700) metres. "
        "Written by `scripts/write_schema_doc.py` from `nearcare/store.py`; a test checks that every table is here.",
        "",
    ]
    for title, ddl in (
        ("Source tables", SOURCE_SCHEMA),
        ("Area tables", AREA_SCHEMA),
        ("Network and travel-time tables", NETWORK_SCHEMA),
        ("Analysis tables", ANALYSIS_SCHEMA),
    ):
        out += [f"## {title}", ""]
        for match in re.finditer(r"CREATE TABLE IF NOT EXISTS (\w+) \((.*?)\n\);", ddl, re.S):
            name, body = match.group(1), match.group(2)
            out += [f"### `{name}`", "", ABOUT[name], "", "| column | type |", "|---|---|"]
            for line in body.strip().splitlines():
                line = line.strip().rstrip(",")
                if line.startswith("PRIMARY KEY"):
                    out.append(f"| *key* | {line[12:].strip()} |")
                    continue
                for part in line.split(", ") if line.startswith("min_lon") else [line]:
                    column, kind = part.split(None, 1)
                    out.append(f"| `{column}` | {kind} |")
            out.append("")
    Path(__file__).resolve().parents[1].joinpath("docs", "SCHEMA.md").write_text("\n".join(out))


if __name__ == "__main__":
    main()
