"""Report sections for the atlas: services, people and deprivation per sub-ICB location; the sources."""

from __future__ import annotations

from nearcare.area import MAX_CENTROID_M, area_label
from nearcare.atlas import imd_profile, sub_icb_summary
from nearcare.report import maps
from nearcare.report.document import Figure, Section, table_from_frame
from nearcare.store import Store


def atlas_sections(store: Store, notes: list[str] | None = None) -> list:
    """Report sections for the atlas: the map, the deprivation profile, the sub-ICB table and gaps."""

    label = area_label(store)
    summary = sub_icb_summary(store)
    total = summary.iloc[-1]
    population_note = store.scalar("SELECT population_note FROM area")
    sites = store.df("SELECT * FROM sites")
    areas = maps.small_areas_frame(store, "lsoa21_code, imd_decile")
    imd_map = maps.choropleth(
        areas,
        "imd_decile",
        title=f"{label}: LSOAs by IMD 2025 decile, with services",
        legend_label="IMD decile (1 = most deprived)",
        cmap="viridis",
        categorical=True,
        sites=sites,
    )
    profile = imd_profile(store)
    chart = maps.bar_chart(
        profile["imd_decile"].tolist(),
        profile["population"].tolist(),
        title="Population by national IMD 2025 decile",
        xlabel="IMD decile (1 = most deprived 10% in England)",
        ylabel="People",
    )
    overview = Section(
        "Atlas: services, people and deprivation",
        paragraphs=[
            f"{label}: {int(total['lsoas'])} LSOAs (2021), population {total['population']:,.0f}; "
            f"{int(total['gp_practices'])} active GP practices, {int(total['pharmacies'])} community pharmacies, "
            f"{int(total['dental_practices'])} dental practices and {int(total['opticians_2014'])} opticians "
            "(NHS Choices list of 2014, dated).",
            f"Population: {population_note}.",
            *[n for n in (notes or []) if n != population_note and not n.startswith("sites placed: ")],
        ],
        figures=[
            Figure(
                maps.png_data_uri(imd_map),
                "Map of LSOAs coloured by IMD 2025 decile with GP practices, "
                "pharmacies, dental practices and opticians marked",
            ),
            Figure(maps.png_data_uri(chart), "Bar chart of population in each national IMD 2025 decile"),
        ],
        tables=[
            table_from_frame(
                summary,
                "Per sub-ICB location",
                labels={
                    "sub_icb_code": "Sub-ICB",
                    "sub_icb_name": "Name",
                    "lsoas": "LSOAs",
                    "population": "Population",
                    "gp_practices": "GP practices",
                    "registered_patients": "Registered patients",
                    "gp_fte": "GP FTE",
                    "patients_per_gp_fte": "Patients per GP FTE",
                    "pharmacies": "Pharmacies",
                    "pharmacies_per_10k": "Pharmacies per 10,000",
                    "dental_practices": "Dental practices",
                    "opticians_2014": "Opticians (2014)",
                },
                digits={"gp_fte": 1, "pharmacies_per_10k": 2},
                note="GP practices count under their commissioning sub-ICB; other services where they stand. "
                "GP FTE excludes locums and trainees (latest workforce year); patients per GP FTE uses practices "
                "with both figures. Registered patients are each practice's latest list size.",
            )
        ],
    )
    ungeocoded = sites[sites["lat"].isna()]
    placement = store.df(
        "SELECT kind, outcome, CASE WHEN in_sites THEN 'yes' ELSE 'no' END AS in_sites, sites "
        "FROM site_placement ORDER BY kind, in_sites DESC, outcome DESC"
    )
    gaps = Section(
        "Placing organisations in the area",
        paragraphs=[
            f"{len(ungeocoded)} organisations in the area could not be placed on the map because their "
            "postcode is not in the imported postcode file. They count in the tables above but not in "
            "travel times."
            if len(ungeocoded)
            else "Every organisation in the area has coordinates.",
            "Each organisation is placed in the LSOA whose boundary contains it; where boundaries are not "
            "imported, in the postcode file's LSOA, else at the nearest LSOA centroid in the postcode's "
            "local authority, else at the nearest centroid within "
            f"{MAX_CENTROID_M:,.0f} m (approximate: the nearest centroid is not always the LSOA the site "
            "stands in).",
        ],
        tables=[
            table_from_frame(
                placement,
                "How each kind of service was placed, and why any were not",
                labels={
                    "kind": "Kind",
                    "outcome": "Outcome",
                    "in_sites": "Counted in the area",
                    "sites": "Organisations",
                },
            ),
            *(
                [
                    table_from_frame(
                        ungeocoded,
                        "Not geocoded",
                        labels={"code": "Code", "name": "Name", "kind": "Kind", "postcode": "Postcode"},
                    )
                ]
                if len(ungeocoded)
                else []
            ),
        ],
    )
    return [overview, gaps]


def sources_section(store: Store):
    """A report section listing every imported file with its publisher, licence and date."""

    provenance = store.df(
        "SELECT kind, path, data_date, publisher, licence, rows, sha256 FROM provenance ORDER BY source_id"
    )
    provenance["sha256"] = provenance["sha256"].str[:12]
    return Section(
        "Sources and licences",
        paragraphs=[
            "Every figure in this report comes from these files. Contains public sector information "
            "licensed under the Open Government Licence v3.0; contains OS data © Crown copyright and "
            "database right; Royal Mail data © Royal Mail copyright and database right; "
            "© OpenStreetMap contributors (ODbL)."
        ],
        tables=[
            table_from_frame(
                provenance,
                "Imported files",
                labels={
                    "kind": "Kind",
                    "path": "File",
                    "data_date": "Data date",
                    "publisher": "Publisher",
                    "licence": "Licence",
                    "rows": "Rows",
                    "sha256": "SHA-256 (start)",
                },
            )
        ],
    )
