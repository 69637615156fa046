"""Report sections for travel times: minutes to the nearest GP practice, mapped per LSOA."""

from __future__ import annotations

import numpy as np

from nearcare.network import ACCESS_SPEED_KPH, DETOUR_FACTOR
from nearcare.network.search import CROWFLY_SPEED_KPH
from nearcare.report import maps
from nearcare.report.document import Figure, Section, table_from_frame
from nearcare.store import Store


def travel_sections(store: Store) -> list:
    """Report sections: maps of minutes to the nearest GP practice, per LSOA, for each profile run."""

    runs = store.df(
        "SELECT * FROM travel_runs WHERE destination_kind = 'gp' AND mode <> 'crowfly' ORDER BY profile DESC"
    )  # walk first; crow-fly estimates are shown with the access measures
    if runs.empty:
        return []
    figures, paragraphs = [], []
    for _, run in runs.iterrows():
        near = store.df(
            "SELECT origin_id AS lsoa21_code, minutes FROM nearest_services "
            "WHERE destination_kind = 'gp' AND profile = ? AND mode = ?",
            [run["profile"], run["mode"]],
        )
        areas = maps.small_areas_frame(store, "lsoa21_code")
        areas = areas[areas["lsoa21_code"].isin(near["lsoa21_code"])].merge(near, on="lsoa21_code")
        sites = store.df("SELECT * FROM sites WHERE kind = 'gp'")
        label = {"walk": "walking", "drive": "driving"}[run["profile"]]
        method = (
            "over the OpenStreetMap network"
            if run["mode"] != "crowfly"
            else f"straight line x {DETOUR_FACTOR} at {CROWFLY_SPEED_KPH[run['profile']]:g} km/h (crowfly estimate)"
        )
        figure = maps.choropleth(
            areas,
            "minutes",
            title=f"Minutes {label} to the nearest GP practice ({run['mode']})",
            legend_label="minutes",
            cmap="magma_r",
            sites=sites,
        )
        figure.axes[0].set_xlim(areas.total_bounds[[0, 2]] + np.array([-2000, 2000]))
        figure.axes[0].set_ylim(areas.total_bounds[[1, 3]] + np.array([-2000, 2000]))
        figures.append(
            Figure(
                maps.png_data_uri(figure),
                f"Map of minutes {label} from each LSOA's population-weighted centroid to the nearest GP practice",
            )
        )
        reached = near["minutes"].notna()
        paragraphs.append(
            f"{label.capitalize()}, {method}: {int(reached.sum())} LSOAs; median {near['minutes'].median():.1f} "
            f"minutes to the nearest GP practice, longest {near['minutes'].max():.1f}. "
            f"{int(run['unsnapped_origins'])} LSOA centroids and {int(run['unsnapped_destinations'])} practices lay "
            f"more than {run['max_snap_m'] or 0:,.0f} m from the network (outside the extract) and were left out."
        )
    networks = store.df("SELECT * FROM networks ORDER BY mode")
    return [
        Section(
            "Travel times to the nearest GP practice",
            paragraphs=[
                *paragraphs,
                "Walking at the stored walking speed; driving at typical speeds by road class, capped by posted "
                "limits, with no congestion. The straight leg from each point to the nearest way is walked at "
                f"walking speed when walking; when driving it is driven ({DETOUR_FACTOR} x the straight line at "
                f"{ACCESS_SPEED_KPH:g} km/h), and a point may join the roads through a private or other "
                f"access-only way at {ACCESS_SPEED_KPH:g} km/h where that is quicker. Services beyond the network's extent cannot be reached in it, so times near its "
                "edge may be overstated.",
            ],
            figures=figures,
            tables=[
                table_from_frame(
                    networks,
                    "Networks built from the OpenStreetMap extract",
                    labels={
                        "mode": "Mode",
                        "nodes": "Nodes",
                        "edges": "Edges",
                        "dropped_nodes": "Nodes dropped (not in the largest strongly connected part)",
                        "dropped_edges": "Edges dropped",
                        "walk_speed_kph": "Walking speed (km/h)",
                    },
                    digits={"walk_speed_kph": 1},
                )
            ]
            if len(networks)
            else [],
        )
    ]
