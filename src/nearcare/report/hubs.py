"""Report section for neighbourhood hubs: the map of people and minutes to the hub, and the choices."""

from __future__ import annotations

from nearcare._errors import StoreError
from nearcare.hubs import STATUS_ASSIGNED, HubPlan, choose_hubs
from nearcare.report import maps
from nearcare.report.document import Figure, Section, table_from_frame
from nearcare.store import Store


def hub_sections(store: Store) -> list[Section]:
    """The hub section for the stored neighbourhoods (one hub each, among practices, by drive), or
    nothing when there are no neighbourhoods or no drive travel times to GP practices."""
    try:
        plan = choose_hubs(store)
    except StoreError:
        return []
    return [hub_section(store, plan)]


def hub_map(store: Store, plan: HubPlan):
    """LSOAs coloured by minutes to their hub (grey: not assigned), neighbourhoods outlined, hubs as
    stars sized by the people they serve."""
    areas = maps.small_areas_frame(store, "lsoa21_code").merge(
        plan.lsoas[["lsoa21_code", "neighbourhood", "minutes"]], on="lsoa21_code"
    )
    how = "crow-fly estimate" if plan.mode == "crowfly" else "road network"
    figure = maps.choropleth(
        areas,
        "minutes",
        title=f"Minutes to the neighbourhood's hub ({plan.profile}, {how})\n"
        "stars: the hubs, sized by the people they serve; lines: neighbourhoods",
        legend_label="Minutes to the hub",
    )
    axes = figure.axes[0]
    areas.dissolve("neighbourhood").boundary.plot(ax=axes, color="#212b32", linewidth=0.7)
    people = plan.hubs["population"].astype(float)
    axes.scatter(
        plan.hubs["easting"],
        plan.hubs["northing"],
        s=30 + 120 * people / max(float(people.max()), 1.0),  # star size: the people the hub serves
        marker="*",
        c="#d5281b",
        edgecolors="#ffffff",
        linewidths=0.6,
        zorder=4,
    )
    return figure


def hub_section(store: Store, plan: HubPlan) -> Section:
    table = plan.neighbourhoods.merge(
        plan.hubs[["neighbourhood", "code", "name", "mean_minutes"]], on="neighbourhood", how="left"
    )
    table["gap_pct"] = 100 * table["gap"]
    unassigned = plan.lsoas[plan.lsoas["status"] != STATUS_ASSIGNED]
    tables = [
        table_from_frame(
            table,
            "Hubs chosen (exact p-median) and the greedy heuristic's gap",
            labels={
                "neighbourhood": "Neighbourhood",
                "population": "Population",
                "candidates": "Candidates",
                "code": "Hub",
                "name": "Name",
                "mean_minutes": "Mean minutes (need-weighted)",
                "status": "Status",
                "gap_pct": "Greedy gap %",
                "population_unreachable": "People unreachable",
            },
            digits={"mean_minutes": 1, "gap_pct": 2},
        )
    ]
    if len(unassigned):
        tables.append(
            table_from_frame(
                unassigned,
                "LSOAs not assigned to a hub",
                labels={
                    "lsoa21_code": "LSOA",
                    "neighbourhood": "Neighbourhood",
                    "population": "Population",
                    "status": "Why",
                },
                note="unreachable: no stored travel-time pair to any candidate in the neighbourhood; "
                "not placed: no choice of hubs reaches every LSOA of the neighbourhood",
            )
        )
    return Section(
        "Neighbourhood hubs",
        paragraphs=[
            plan.summary() + ".",
            "Each neighbourhood's hub is the candidate site that minimises the need-weighted travel time "
            "of its people (the p-median problem), solved exactly with CBC and checked against a greedy "
            "heuristic with interchange; `nearcare neighbourhoods hubs` chooses more hubs, other "
            "candidates or a maximum travel time.",
            *plan.notes,
        ],
        figures=[
            Figure(maps.png_data_uri(hub_map(store, plan)), "Map of minutes to each neighbourhood's hub")
        ],
        tables=tables,
    )
