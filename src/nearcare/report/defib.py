"""Report section for defibrillators: coverage and deserts on a map, best new sites, the unregistered."""

from __future__ import annotations

import pandas as pd

from nearcare.defib import Coverage, Siting, register
from nearcare.report import maps
from nearcare.report.document import Figure, Section, table_from_frame
from nearcare.store import Store


def defib_section(store: Store, cov: Coverage, siting: Siting, deserts_frame: pd.DataFrame):
    """A report section: coverage and deserts on a map, the chosen sites with their gains, the unregistered list."""

    areas = maps.small_areas_frame(store, "lsoa21_code").merge(cov.by_lsoa, on="lsoa21_code")
    # Shares of the residents placed on the walking network; areas with none are 'no data' on the map.
    areas["share"] = (
        100 * areas["people_night_first"] / areas["people_assessed"].where(areas["people_assessed"] > 0)
    )
    figure = maps.choropleth(
        areas,
        "share",
        title=f"Residents within {cov.distance_m:g} m of a public defibrillator at night, and proposed sites",
        legend_label="% of residents",
        cmap="Greens",
    )
    axes = figure.axes[0]
    known = store.df("SELECT easting, northing FROM defibrillators")
    axes.scatter(
        known["easting"],
        known["northing"],
        marker="P",
        s=80,
        c="#d5281b",
        edgecolors="#212b32",
        zorder=4,
        label="known defibrillator",
    )
    axes.scatter(
        siting.chosen["easting"],
        siting.chosen["northing"],
        marker="*",
        s=140,
        c="#ffb81c",
        edgecolors="#212b32",
        zorder=4,
        label="proposed site",
    )
    axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    bounds = areas.total_bounds
    axes.set_xlim(bounds[0] - 1000, bounds[2] + 1000)
    axes.set_ylim(bounds[1] - 1000, bounds[3] + 1000)
    missing = register(store)
    unregistered_list = missing[missing["status"] != "registered"]
    return Section(
        "Defibrillators: coverage, deserts and best new sites",
        paragraphs=[
            f"{len(missing)} defibrillator{'' if len(missing) == 1 else 's'} known. Residents on the walking network "
            f"within {cov.distance_m:g} m along paths of a public defibrillator available then: day "
            f"{cov.share('day'):.1f}%, evening {cov.share('evening'):.1f}%, night {cov.share('night'):.1f}% (of "
            f"{cov.assessed_people:,.0f} assessed); within {cov.second_band_m:g} m at night "
            f"{cov.share('night', 'second'):.1f}%. {_sentence(cov.not_assessed_note())}: they are left out of these "
            f"shares, the deserts and the siting. Assessed plus not assessed: {cov.total_people:,.0f} residents.",
            f"{len(deserts_frame)} LSOAs are deserts at night (nobody assessed within {cov.distance_m:g} m).",
            f"Best {len(siting.chosen)} new sites (maximal covering, solved exactly with CBC): "
            f"{siting.exact_people:,.0f} more people covered at night; a greedy choice covers "
            f"{siting.greedy_people:,.0f} (gap {100 * siting.gap:.1f}%).",
            "Residents are postcode points sharing their LSOA's population equally; areas whose postcodes are not in "
            "the imported postcode file are represented by their LSOA centre.",
        ],
        figures=[
            Figure(
                maps.png_data_uri(figure),
                "Map of the share of residents within walking distance of a public "
                "defibrillator at night, with known and proposed sites",
            )
        ],
        tables=[
            table_from_frame(
                siting.chosen,
                "Proposed sites, in the order they add most",
                labels={
                    "site_id": "Candidate",
                    "name": "Name",
                    "host": "Host",
                    "marginal_people": "People added",
                },
            ),
            table_from_frame(
                deserts_frame.head(10),
                "Deserts at night, by priority (population x deprivation weight)",
                labels={
                    "lsoa21_code": "LSOA",
                    "people_assessed": "People assessed",
                    "people_not_assessed": "Not assessed",
                    "imd_decile": "IMD decile",
                    "priority": "Priority",
                },
            ),
            table_from_frame(
                unregistered_list,
                "Known defibrillators not registered on The Circuit",
                labels={
                    "defib_id": "Defibrillator",
                    "status": "Status",
                    "access": "Access",
                    "hours": "Hours",
                    "location_note": "Where",
                    "reports": "Reports",
                },
            ),
        ],
    )


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]
