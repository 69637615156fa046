"""Report section for a scenario: the change in minutes, people newly beyond thresholds, patient flows."""

from __future__ import annotations

import pandas as pd

from nearcare.report import maps
from nearcare.report.document import Figure, Section, table_from_frame
from nearcare.scenarios import ScenarioResult
from nearcare.store import Store


def scenario_section(store: Store, result: ScenarioResult, ranked: pd.DataFrame | None = None):
    """A report section: the change in minutes on a map, people newly beyond thresholds by decile,
    the practices that take the patients, and (optionally) the ranked closures."""

    drive = result.lsoas[result.lsoas["profile"] == "drive"]
    areas = maps.small_areas_frame(store, "lsoa21_code").merge(drive, on="lsoa21_code")
    areas["shown"] = areas["change_minutes"].clip(upper=30)
    closed = store.df("SELECT * FROM sites WHERE kind = 'gp'")
    figure = maps.choropleth(
        areas,
        "shown",
        title=f"{result.scenario.name}: change in minutes' drive to the nearest GP",
        legend_label="extra minutes (30 = 30 or more, or beyond the stored cutoff)",
        cmap="Reds",
        sites=closed[~closed["code"].isin(result.scenario.closed_sites)],
    )
    bounds = areas.total_bounds
    figure.axes[0].set_xlim(bounds[0] - 2000, bounds[2] + 2000)
    figure.axes[0].set_ylim(bounds[1] - 2000, bounds[3] + 2000)
    newly = result.newly_beyond
    gp = newly[(newly["service"] == "GP practice") & (newly["profile"] == "walk or drive")].dropna(
        subset=["imd_decile"]
    )
    chart = maps.bar_chart(
        gp["imd_decile"].astype(int).tolist(),
        gp["people_newly_beyond"].tolist(),
        title=f"People newly beyond {gp['threshold'].iloc[0]} of a GP practice (each person once)",
        xlabel="IMD 2025 decile (1 = most deprived)",
        ylabel="People",
    )
    receivers = result.practices[result.practices["added_patients"].abs() > 0.5].sort_values(
        "added_patients", ascending=False
    )
    names = store.df("SELECT code AS practice_code, name FROM sites").set_index("practice_code")["name"]
    receivers = receivers.assign(name=receivers["practice_code"].map(names).fillna("(new site)"))
    label = "crow-fly estimates" if result.mode == "crowfly" else "the road network"
    further = drive[drive["change_minutes"] > 0]
    tables = [
        table_from_frame(
            receivers.head(15),
            "Where the patients go (modelled)" if result.model.modelled else "Where the patients go",
            labels={
                "practice_code": "Practice",
                "name": "Name",
                "patients_before": "Patients before",
                "added_patients": "Change",
                "per_gp_fte_before": "Patients per GP FTE before",
                "per_gp_fte_after": "after",
                "gp_fte_estimated": "GP FTE estimated from list size",
            },
            note="GP FTE as reported where plausible; a reported 0, a missing or an implausible figure is estimated from "
            "the list size (the area's patients per FTE).",
        )
    ]
    if ranked is not None:
        tables.append(
            table_from_frame(
                ranked.head(15),
                "Every single practice closure, ranked (worst first)",
                labels={
                    "code": "Practice",
                    "name": "Name",
                    "people_further": "People further",
                    "deprivation_weighted_person_minutes": "Deprivation-weighted person-minutes",
                    "people_newly_beyond_threshold": "Newly beyond a threshold (each person once)",
                    "people_newly_beyond_walk_threshold": "Beyond 20 min walk",
                    "people_newly_beyond_drive_threshold": "Beyond 15 min drive",
                    "largest_rise_in_patients_per_gp_fte": "Largest rise in patients per GP FTE",
                    "largest_rise_at": "at",
                    "largest_rise_gp_fte_estimated": "its GP FTE estimated",
                    "unplaced_patients": "Patients with no practice in reach",
                },
                note="Crow-fly estimates over the whole area; patient flows modelled; GP FTE estimated from the list size "
                "where the reported figure is 0, missing or implausible. Deprivation weight: 1.9 in the most "
                "deprived decile to 1 in the least.",
            )
        )
    return Section(
        f"Scenario: {result.scenario.name}",
        paragraphs=[
            f"Travel times from {label}. {len(further)} LSOAs ({further['population'].sum():,.0f} people) have a longer "
            f"drive to their nearest GP practice. Registered patients: {result.headline()}.",
            *[
                f"Unplaced: {row.patients:,.0f} patients of {row.practice_code}: {row.reason} (practices just outside "
                "the area are not in the data, so some may in fact have one)."
                for row in result.unplaced.itertuples()
            ],
            f"Where patients go: {result.model.describe()}.",
            *filter(None, [result.scenario.source_note()]),
        ],
        figures=[
            Figure(
                maps.png_data_uri(figure), "Map of the change in minutes' drive to the nearest GP practice"
            ),
            Figure(maps.png_data_uri(chart), "Bar chart of people newly beyond the thresholds by IMD decile"),
        ],
        tables=tables,
    )
