"""Report section for the workforce: trends with charts, the gap to England's benchmark, practices at risk."""

from __future__ import annotations

from typing import Any

import pandas as pd

from nearcare._errors import StoreError
from nearcare.report import maps
from nearcare.report.document import Figure, Section, table_from_frame
from nearcare.store import Store
from nearcare.workforce import GAP_FTE, WorkforceGap, WorkforceTrends, gap, practices_at_risk, trends

MEASURE_LABELS = {
    "gp_fte": "GP FTE",
    "nurse_fte": "Nurse FTE",
    "patients_with_gp_fte": "Patients (practices reporting GP FTE)",
    "patients_per_gp_fte": "Patients per GP FTE",
    "need_weighted_patients_per_gp_fte": "Need-weighted patients per GP FTE",
    "need_weighted_patients_per_nurse_fte": "Need-weighted patients per nurse FTE",
}


def workforce_sections(
    store: Store, *, risk: pd.DataFrame | None = None, notes: list[str] | None = None
) -> list[Section]:
    """The workforce sections, or none when the store holds no workforce figures for the area.
    ``risk`` and its ``notes``: practices at risk already scored (with closures, say); else scored
    here without the closure rule."""
    try:
        found = trends(store)
        shortfall = gap(store)
        if risk is None:
            risk, notes = practices_at_risk(store)
    except StoreError:
        return []
    return [
        trends_section(found),
        gap_section(shortfall),
        risk_section(store, risk, notes or []),
    ]


def trend_chart(found: WorkforceTrends, measure: str) -> Figure:
    """One line per sub-ICB, ICB and England: ``measure`` by year."""
    figure, axes = maps.new_figure((8, 4))
    rows = found.years[found.years["level"] != "practice"]
    styles: dict[str, dict[str, Any]] = {
        "england": {"color": "#212b32", "linestyle": "--"},
        "icb": {"color": "#005eb8", "linewidth": 2.5},
    }
    others = iter(["#d5281b", "#ffb81c", "#007f3b", "#78be20", "#330072", "#ae2573"] * 50)
    for (level, code), unit in rows.groupby(["level", "code"], sort=False):
        style = styles.get(str(level)) or {"color": next(others)}
        axes.plot(unit["year"], unit[measure], marker="o", markersize=3, label=f"{code} ({level})", **style)
    axes.set_title(MEASURE_LABELS[measure])
    axes.set_xlabel("year")
    axes.set_ylabel(MEASURE_LABELS[measure])
    axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    axes.spines[["top", "right"]].set_visible(False)
    return Figure(
        maps.png_data_uri(figure), f"{MEASURE_LABELS[measure]} by year, per sub-ICB, ICB and England"
    )


def trends_section(found: WorkforceTrends) -> Section:
    changes = found.changes[found.changes["level"] != "practice"].assign(
        measure=lambda f: f["measure"].map(MEASURE_LABELS)
    )
    return Section(
        "Workforce trends",
        paragraphs=[
            *found.notes,
            "Source: NHS General Practice Workforce, practice level (HEEC's yearly table).",
        ],
        figures=[
            trend_chart(found, "need_weighted_patients_per_gp_fte"),
            trend_chart(found, "gp_fte"),
            trend_chart(found, "nurse_fte"),
        ],
        tables=[
            table_from_frame(
                changes,
                f"Change over 3 and 5 years to {int(changes['year'].max())}",
                labels={
                    "code": "Area",
                    "measure": "Measure",
                    "value": "Value",
                    "change_3y": "3-year change",
                    "change_3y_pct": "%",
                    "change_5y": "5-year change",
                    "change_5y_pct": "% ",
                },
                digits={"value": 1, "change_3y": 1, "change_3y_pct": 1, "change_5y": 1, "change_5y_pct": 1},
            )
        ],
    )


def gap_section(shortfall: WorkforceGap) -> Section:
    total = shortfall.groups[shortfall.groups["grouping"] == "total"].iloc[0]
    by_quintile = shortfall.groups[shortfall.groups["grouping"] == "imd_quintile"]
    chart = maps.bar_chart(
        list(by_quintile["group"]),
        list(by_quintile["gp_fte_gap"]),
        title="GP FTE gap by deprivation quintile (1 most deprived)",
        xlabel="IMD quintile of the practice's population",
        ylabel="GP FTE needed minus GP FTE",
    )
    return Section(
        "The workforce gap",
        paragraphs=[
            f"In {shortfall.year}, reaching {shortfall.benchmark_per_gp_fte:,.0f} need-weighted patients per GP FTE "
            f"would take {total['gp_fte_needed']:,.1f} GP FTE against {total['gp_fte']:,.1f} "
            f"(gap {total['gp_fte_gap']:+,.1f}); nurses: {total['nurse_fte_needed']:,.1f} against "
            f"{total['nurse_fte']:,.1f} (gap {total['nurse_fte_gap']:+,.1f}).",
            *shortfall.notes,
        ],
        figures=[Figure(maps.png_data_uri(chart), "GP FTE gap by deprivation quintile")],
        tables=[
            table_from_frame(
                shortfall.groups,
                "GP and nurse FTE needed to reach the benchmark",
                labels={
                    "grouping": "By",
                    "group": "Group",
                    "practices": "Practices",
                    "need_weighted_patients": "Need-weighted patients",
                    "gp_fte": "GP FTE",
                    "gp_fte_needed": "GP FTE needed",
                    "gp_fte_gap": "GP gap",
                    "nurse_fte": "Nurse FTE",
                    "nurse_fte_needed": "Nurse FTE needed",
                    "nurse_fte_gap": "Nurse gap",
                },
                digits=dict.fromkeys(GAP_FTE, 1),
            )
        ],
    )


def risk_map(store: Store, risk: pd.DataFrame) -> Figure:
    """The area's LSOAs in grey, practices coloured and sized by their risk score."""
    figure, axes = maps.new_figure((9, 9))
    maps.small_areas_frame(store, "lsoa21_code").plot(
        ax=axes, color="#e8edee", edgecolor="#ffffff", linewidth=0.2
    )
    located = risk[risk["easting"].notna()].sort_values("risk_score")
    points = axes.scatter(
        located["easting"],
        located["northing"],
        c=located["risk_score"],
        s=12 + 10 * located["risk_score"],
        cmap="YlOrRd",
        edgecolors="#212b32",
        linewidths=0.4,
        zorder=3,
    )
    figure.colorbar(points, ax=axes, shrink=0.6, label="risk score (points)")
    axes.set_title("GP practices by risk score")
    axes.set_axis_off()
    return Figure(maps.png_data_uri(figure), "Map of GP practices coloured and sized by risk score")


def risk_section(store: Store, risk: pd.DataFrame, notes: list[str]) -> Section:
    top = risk[risk["risk_score"] > 0].head(20)
    return Section(
        "Practices at risk",
        paragraphs=[
            "Each rule met adds points: single-handed (at most 1.5 GP FTE) 2, small (under 3) 1; need-weighted "
            "patients per GP FTE at least 1.25 times the benchmark 1, and up 5% or more in 3 years 1 more; GP "
            "FTE down 20% or more in 3 years 1; list up 20% or more in 5 years 1; the practice's population "
            "in England's most deprived fifth 1; next practice over 5 km away 1; closing it would leave 1,000 "
            "or more people newly beyond 20 minutes' walk or 15 minutes' drive 1 (README, Workforce).",
            *notes,
        ],
        figures=[risk_map(store, risk)],
        tables=[
            table_from_frame(
                top,
                f"The {len(top)} practices with the highest scores (of {len(risk)})",
                labels={
                    "practice_code": "Code",
                    "name": "Practice",
                    "risk_score": "Score",
                    "reasons": "Reasons",
                },
            )
        ],
    )
