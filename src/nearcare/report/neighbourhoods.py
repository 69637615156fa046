"""Report section for neighbourhoods: the map, a profile per neighbourhood and suggested teams."""

from __future__ import annotations

from nearcare.neighbourhoods import TEAM_PER_10K_NEED, DesignCheck, profiles
from nearcare.report import maps
from nearcare.report.document import Figure, Section, table_from_frame
from nearcare.store import Store


def neighbourhood_section(store: Store, result: DesignCheck):
    """A report section: the map, a profile row per neighbourhood and the suggested teams."""

    areas = maps.small_areas_frame(store, "lsoa21_code").merge(
        store.df("SELECT lsoa21_code, neighbourhood FROM neighbourhoods"), on="lsoa21_code"
    )
    shapes = areas.dissolve("neighbourhood").reset_index()
    figure, axes = maps.new_figure((9, 9))
    shapes.plot(ax=axes, column="neighbourhood", cmap="tab20", edgecolor="#ffffff", linewidth=0.8)
    for _, row in shapes.iterrows():
        point = row.geometry.representative_point()
        axes.annotate(row["neighbourhood"], (point.x, point.y), ha="center", fontsize=6)
    axes.set_title("Neighbourhoods")
    axes.set_axis_off()
    profile, team = profiles(store)
    checks = result.neighbourhoods.merge(profile, on=["neighbourhood", "lsoas", "population"])
    columns = {
        "neighbourhood": "Neighbourhood",
        "population": "Population",
        "within_bounds": "In bounds",
        "contiguous": "Contiguous",
        "pct_65_plus_modelled": "% 65+ (modelled)",
        "pct_imd_quintile_1": "% most deprived fifth",
        "gp_practices": "GP practices",
        "pharmacies": "Pharmacies",
    }
    for optional, label in (
        ("drive_minutes_to_gp_crowfly", "Drive to GP (min, crow-fly)"),
        ("gp_access_per_1000_need", "GP FTE per 1,000 need"),
        ("qof_hyp_pct", "Hypertension %"),
        ("defibrillators", "Defibrillators"),
    ):
        if optional in checks:
            columns[optional] = label
    return Section(
        "Neighbourhoods and their teams",
        paragraphs=[
            result.summary + ".",
            "Designed with the max-p heuristic (PySAL spopt) over LSOAs that share a boundary, within each "
            "sub-ICB location; suggested teams use nearcare's planning ratios per 10,000 need-weighted people "
            "(change them with --ratios), shared in proportion to need.",
        ],
        figures=[Figure(maps.png_data_uri(figure), "Map of the neighbourhoods, each labelled")],
        tables=[
            table_from_frame(
                checks,
                "Neighbourhood profiles",
                labels=columns,
                digits={
                    "pct_65_plus_modelled": 1,
                    "pct_imd_quintile_1": 1,
                    "drive_minutes_to_gp_crowfly": 1,
                    "gp_access_per_1000_need": 2,
                    "qof_hyp_pct": 1,
                },
            ),
            table_from_frame(
                team,
                "Suggested team (staff, in proportion to need)",
                labels={"neighbourhood": "Neighbourhood", **{r: r for r in TEAM_PER_10K_NEED}},
                digits=dict.fromkeys(TEAM_PER_10K_NEED, 1),
            ),
        ],
    )
