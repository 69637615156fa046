"""Report sections for access and equity: access maps, inequality indices and verdicts, allocations."""

from __future__ import annotations

import numpy as np
import pandas as pd

from nearcare._errors import InputError, StoreError
from nearcare.access import (
    PHARMACY_DISTANCE_M,
    PLAUSIBLE_PATIENTS_PER_GP_FTE,
    estimated_gp_fte,
    pharmacies_within_distance,
    practice_gp_fte,
)
from nearcare.equity import LEAGUE_UNITS, MEASURES, EquityFigures, league_table, lsoa_equity, practice_equity
from nearcare.report import maps
from nearcare.report.document import Figure, Section, Table, format_value
from nearcare.store import Store


def equity_sections(store: Store) -> list:
    """Report sections: access maps and decile tables, equity indices and verdicts, allocations."""

    runs = store.df(
        "SELECT DISTINCT profile, mode FROM access WHERE kind = 'gp' ORDER BY mode = 'crowfly' DESC, profile"
    )
    if runs.empty:
        return []
    figures, paragraphs, rows = [], [], []
    key: str | None = None
    for _, run in runs.iterrows():
        profile, mode = run["profile"], run["mode"]
        label = f"{'walking' if profile == 'walk' else 'driving'}, {'crow-fly estimate' if mode == 'crowfly' else 'road network'}"
        access = store.df(
            "SELECT lsoa21_code, e2sfca_need, threshold_minutes, catchment, supply_measure FROM access "
            "WHERE kind = 'gp' AND profile = ? AND mode = ?",
            [profile, mode],
        )
        areas = maps.small_areas_frame(store, "lsoa21_code").merge(access, on="lsoa21_code")
        figure = maps.choropleth(
            areas,
            "e2sfca_need",
            title=f"GP access (E2SFCA, {label})",
            legend_label="GP FTE per 1,000 need-weighted people",
            cmap="viridis",
            sites=store.df("SELECT * FROM sites WHERE kind = 'gp'"),
        )
        bounds = areas.total_bounds
        figure.axes[0].set_xlim(bounds[0] - 2000, bounds[2] + 2000)
        figure.axes[0].set_ylim(bounds[1] - 2000, bounds[3] + 2000)
        figures.append(
            Figure(
                maps.png_data_uri(figure),
                f"Map of GP access per LSOA ({label}): E2SFCA per 1,000 need-weighted people",
            )
        )
        paragraphs.append(
            f"{label.capitalize()}: {len(access)} LSOAs; {access['catchment'].iloc[0]}; GP supply is "
            f"{access['supply_measure'].iloc[0]}."
        )
        for kind, measure in (
            ("gp", "e2sfca_need"),
            ("gp", "nearest_minutes"),
            ("pharmacy", "nearest_minutes"),
            ("pharmacy", "services_within"),
        ):
            try:
                figures_for = lsoa_equity(store, kind=kind, profile=profile, mode=mode, measure=measure)
            except (InputError, StoreError):
                continue
            rows.append(_inequality_row(f"{MEASURES[measure][0]} ({kind}, {label})", figures_for))
            if kind == "gp" and measure == "e2sfca_need":
                paragraphs.append(figures_for.verdict(f"GP access per need ({label})"))
                key = key or paragraphs[-1].split(" (slope index", 1)[0] + "."  # the summary's finding
                deciles = figures_for.deciles
                chart = maps.bar_chart(
                    deciles.index.tolist(),
                    deciles["value"].tolist(),
                    title=f"GP access by IMD decile ({label})",
                    xlabel="IMD 2025 decile (1 = most deprived)",
                    ylabel="E2SFCA per 1,000 need-weighted",
                )
                figures.append(
                    Figure(maps.png_data_uri(chart), f"Bar chart of GP access by IMD decile ({label})")
                )
    within = pharmacies_within_distance(store)
    population = store.df("SELECT lsoa21_code, population, imd_decile FROM small_areas").set_index(
        "lsoa21_code"
    )
    none_near = population.loc[within[within == 0].index, "population"].sum()
    paragraphs.append(
        f"{none_near:,.0f} people ({100 * none_near / population['population'].sum():.1f}%) live in LSOAs "
        f"whose population-weighted centre is more than {PHARMACY_DISTANCE_M / 1000:g} km in a straight "
        "line from any pharmacy."
    )
    try:
        practices = practice_equity(store)
        paragraphs.append(practices.verdict("GP FTE per need-weighted patient across practices"))
        chart = maps.bar_chart(
            practices.quintiles.index.tolist(),
            practices.quintiles["value"].tolist(),
            title="GP FTE per 10,000 need-weighted patients, by practice deprivation",
            xlabel="Practice population's IMD quintile in England (1 = most deprived)",
            ylabel="GP FTE per 10,000",
        )
        figures.append(
            Figure(
                maps.png_data_uri(chart),
                "Bar chart of GP FTE per 10,000 need-weighted patients by practice deprivation quintile",
            )
        )
        rows.append(_inequality_row(practices.measure, practices))
        if practices.left_out is not None and len(practices.left_out):
            paragraphs.append(
                f"{len(practices.left_out)} practices are left out of the practice-level comparison "
                "because their GP FTE is not reported or not plausible (listed below)."
            )
    except StoreError as exc:
        paragraphs.append(f"Practice-level equity not shown: {exc}.")
    tables = [
        Table(
            "Inequality by deprivation (areas ranked from most to least deprived)",
            [
                "Measure",
                "Mean",
                "Concentration index",
                "SE",
                "Slope index",
                "95% CI",
                "Slope index method",
                "Most/least deprived quintile",
                "Inverse care law",
            ],
            rows,
            note="Concentration index above 0 and slope index above 0: more for the less deprived "
            "(for minutes, the reverse is worse for the more deprived). The slope index is OHID's "
            "(Fingertips) method: a weighted regression of the decile (or, for practices, "
            "quintile) values on their mid-point population rank.",
        )
    ]
    estimated = estimated_gp_fte(store)
    if len(estimated):
        tables.append(gp_fte_table(estimated))
    sections = [
        Section(
            "Access and equity: does supply follow need?",
            paragraphs=[
                *paragraphs,
                "Need-weighted people: population weighted by age (65+ counts 2.2 times) and deprivation (IMD "
                "decile), an approximation in the spirit of the Carr-Hill formula, not the formula itself; the "
                "share aged 65+ of each LSOA is modelled from its nearest practice's list. Crow-fly figures "
                "are straight-line estimates, not road travel times. Near the edge of the area, access looks "
                "better than it is: people beyond the edge who use the same practices are not counted.",
            ],
            figures=figures,
            tables=tables,
            key=key,
        )
    ]
    league = league_section(store, profile=runs["profile"].iloc[0], mode=runs["mode"].iloc[0])
    if league is not None:
        sections.append(league)
    allocations = store.df("SELECT * FROM allocations WHERE target_kind = 'practices'")
    if len(allocations):
        sections.append(_allocation_section(store, allocations))
    return sections


def league_section(store: Store, *, profile: str, mode: str) -> Section | None:
    """Where the inverse care law bites hardest: GP access equity per ICB (or, in an area of one ICB,
    per sub-ICB or local authority), ranked, with a map of the units; None if the area has one unit."""
    counts = store.df(
        "SELECT count(DISTINCT icb_code) AS icb, count(DISTINCT sub_icb_code) AS sub_icb, "
        "count(DISTINCT lad_code) AS lad FROM small_areas"
    ).iloc[0]
    by = next((unit for unit in LEAGUE_UNITS if counts[unit.replace("-", "_")] > 1), None)
    if by is None:
        return None
    try:
        league = league_table(store, by=by, profile=profile, mode=mode)
    except (InputError, StoreError):
        return None
    run = f"{'walking' if profile == 'walk' else 'driving'}, {'crow-fly estimate' if mode == 'crowfly' else 'road network'}"
    rows = [
        [
            format_value(r.rank) if pd.notna(r.rank) else "",
            "whole area" if r.unit_code == "*" else f"{r.unit_name} ({r.unit_code})",
            format_value(r.lsoas),
            format_value(r.population),
            format_value(r.mean, 3),
            format_value(r.concentration_index, 3),
            format_value(r.concentration_index_se, 3),
            format_value(r.sii, 3),
            f"{r.sii_low:.3g} to {r.sii_high:.3g}" if pd.notna(r.sii) else "",
            r.finding if pd.notna(r.sii) else f"not assessed: {r.not_assessed}",
        ]
        for r in league.itertuples()
    ]
    units = {"icb": "ICB", "sub-icb": "sub-ICB location", "lad": "local authority"}[by]
    units_assessed = league.iloc[:-1]
    holds = int((units_assessed["finding"] == "holds").sum())
    return Section(
        f"Where the inverse care law bites hardest: GP access by {units}",
        paragraphs=[
            f"GP access per need (E2SFCA, {run}) in each of {len(units_assessed)} {units}s, its LSOAs "
            f"ranked by national IMD 2025 within it; rank 1 has the steepest slope favouring the less "
            f"deprived. The inverse care law holds (the slope's whole 95% interval favours the less "
            f"deprived) in {holds} of them. The last row is the whole area.",
        ],
        figures=[
            Figure(
                maps.png_data_uri(_league_map(store, league, by, units)),
                f"Map of the slope index of inequality in GP access per {units}",
            )
        ],
        tables=[
            Table(
                f"Equity of GP access by {units}, ranked",
                [
                    "Rank",
                    units[0].upper() + units[1:],
                    "LSOAs",
                    "Population",
                    "Mean E2SFCA per 1,000 need-weighted",
                    "Concentration index",
                    "SE",
                    "Slope index",
                    "95% CI",
                    "Inverse care law",
                ],
                rows,
                note="Slope index by OHID's method over the IMD deciles present in each unit; a unit with "
                "fewer than three LSOAs with figures, or a single decile, is not assessed.",
            )
        ],
    )


def _league_map(store: Store, league: pd.DataFrame, by: str, units: str):
    """Units coloured by their slope index: dissolved LSOA boundaries where the store has them,
    else a dot at the unit's population-weighted centroid (national runs import no boundaries)."""
    code = LEAGUE_UNITS[by][0]
    values = league[league["unit_code"] != "*"].set_index("unit_code")["sii"]
    figure, axes = maps.new_figure((9, 9))
    shapes = maps.small_areas_frame(store, f"{code} AS unit_code")
    drawn = set()
    colours = {"cmap": "RdBu_r", "vmin": -abs(values).max(), "vmax": abs(values).max()}
    if len(shapes):
        dissolved = shapes.dissolve("unit_code").reset_index()
        dissolved["sii"] = dissolved["unit_code"].map(values)
        dissolved.plot(
            column="sii",
            ax=axes,
            edgecolor="#ffffff",
            linewidth=0.5,
            legend=True,
            **colours,
            legend_kwds={"label": "slope index (GP access per need)", "shrink": 0.6},
            missing_kwds={"color": "#d8dde0"},
        )
        drawn = set(dissolved["unit_code"])
    points = store.df(
        f"SELECT {code} AS unit_code, sum(population * centroid_easting) / sum(population) AS x, "
        f"sum(population * centroid_northing) / sum(population) AS y FROM small_areas "
        f"WHERE population > 0 AND centroid_easting IS NOT NULL GROUP BY 1"
    )
    points = points[~points["unit_code"].isin(drawn) & points["unit_code"].isin(values.index)]
    if len(points):
        dots = axes.scatter(
            points["x"],
            points["y"],
            c=points["unit_code"].map(values),
            s=80,
            edgecolors="#212b32",
            linewidths=0.5,
            **colours,
        )
        if not drawn:
            figure.colorbar(dots, ax=axes, shrink=0.6, label="slope index (GP access per need)")
        axes.set_aspect("equal")
    axes.set_title(f"Slope index of inequality in GP access per {units} (red: favours the less deprived)")
    axes.set_axis_off()
    return figure


def _inequality_row(what: str, figures: EquityFigures) -> list[str]:
    """One row of the inequality table (its columns are listed where the table is built)."""
    return [
        what,
        format_value(figures.mean, 3),
        format_value(figures.concentration_index, 3),
        format_value(figures.concentration_index_se, 3),
        format_value(figures.sii, 3),
        f"{figures.sii_low:.3g} to {figures.sii_high:.3g}",
        figures.sii_method,
        format_value(figures.ratio_most_to_least, 2),
        figures.finding,
    ]


def gp_fte_table(estimated: pd.DataFrame):
    """Report table of the practices whose GP FTE was not used as reported (``estimated_gp_fte``)."""

    low, high = PLAUSIBLE_PATIENTS_PER_GP_FTE
    rows = [
        [
            r.practice_code,
            r.name,
            format_value(r.patients),
            format_value(r.reported_gp_fte, 2),
            format_value(r.estimated_gp_fte, 2),
            r.reason,
        ]
        for r in estimated.itertuples()
    ]
    return Table(
        "GP practices whose FTE was estimated from list size",
        ["Practice", "Name", "Patients", "Reported GP FTE", "Estimated GP FTE", "Reason"],
        rows,
        note=f"A reported GP FTE of 0, or one giving fewer than {low:,.0f} or more than {high:,.0f} patients "
        "per FTE (the 0.5th and 99.5th percentiles across English practices in the 2024 national "
        "workforce file), is treated as missing. Missing FTE is estimated at the patients per FTE of "
        "the area's practices with plausible figures; E2SFCA and allocation use the estimate, the "
        "practice-level comparison leaves these practices out.",
    )


def _allocation_section(store: Store, allocations: pd.DataFrame):
    practices = (
        practice_gp_fte(store)[["practice_code", "gp_fte", "gp_fte_status"]]
        .merge(store.df("SELECT practice_code, imd_quintile_england FROM practices"), on="practice_code")
        .merge(allocations.rename(columns={"target_code": "practice_code"}), on="practice_code")
    )
    practices["before"] = 1e4 * practices["gp_fte"] / practices["need"]
    practices["after"] = 1e4 * (practices["gp_fte"] + practices["units"]) / practices["need"]
    grouped = practices.groupby("imd_quintile_england").apply(
        lambda g: pd.Series(
            {
                "before": 1e4 * g["gp_fte"].sum() / g["need"].sum(),
                "after": 1e4 * (g["gp_fte"] + g["units"]).sum() / g["need"].sum(),
                "units": g["units"].sum(),
            }
        ),
        include_groups=False,
    )
    figure, axes = maps.new_figure((7, 3.6))
    x = np.arange(len(grouped))
    axes.bar(x - 0.2, grouped["before"], 0.4, label="before", color="#aeb7bd")
    axes.bar(x + 0.2, grouped["after"], 0.4, label="after", color="#005eb8")
    axes.set_xticks(x, [str(q) for q in grouped.index])
    axes.set_xlabel("Practice population's IMD quintile (1 = most deprived)")
    axes.set_ylabel("GP FTE per 10,000 need-weighted")
    axes.set_title("GP FTE per need before and after the proportionate allocation")
    axes.legend()
    axes.spines[["top", "right"]].set_visible(False)
    units = allocations["units"].sum()
    return Section(
        "Proportionate allocation",
        paragraphs=[
            f"{units:,.4g} GP FTE shared among {len(allocations)} practices in proportion to their "
            "need-weighted patients (floors and caps as given). Quintile 1 receives "
            f"{grouped['units'].get(1, 0):,.3g} FTE and quintile 5 {grouped['units'].get(5, 0):,.3g}. "
            f"{int((practices['gp_fte_status'] != 'reported').sum())} of these practices' GP FTE before the "
            "allocation is estimated from list size (not reported, or not plausible; listed in the "
            "section above)."
        ],
        figures=[
            Figure(
                maps.png_data_uri(figure),
                "Bar chart of GP FTE per 10,000 need-weighted patients by practice "
                "deprivation quintile, before and after the allocation",
            )
        ],
    )
