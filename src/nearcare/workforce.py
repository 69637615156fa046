"""Workforce and sustainability: trends in GP and nurse FTE, the gap to a benchmark, practices at risk.

Source: the practice-level GP workforce table (``gp_workforce``: one row per practice and year, FTE of
GPs excluding locums and trainees, locums and trainees, nurses, direct patient care and admin, with
the list size), and England's totals per year (``england_workforce``, kept from the national file
when the data were bundled; computed from ``gp_workforce`` when that table is empty).

Coverage, one rule throughout: a practice counts in a year's ratios and FTE sums only if it reported
GP FTE above 0 that year ("covered"); the others are counted (``practices``, ``patients``) but left
out of every ratio, so a ratio's patients and FTE come from the same practices.

Need weighting, relative to England: a practice's patients times nearcare's raw need factor
(``need.age_factor`` of its share aged 65+ times ``need.deprivation_factor`` of its IMD quintile,
missing factors counting 1), divided by England's patient-weighted mean of that factor in the same
year. England's need-weighted patients therefore equal its patients, and an area's show its need
relative to England's. The age mix and deprivation are today's (one edition each), applied to
every year's list size. Without England's mean, the area's own mean is used, and the note says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from nearcare._errors import InputError, StoreError
from nearcare.access import PLAUSIBLE_PATIENTS_PER_GP_FTE
from nearcare.need import age_factor, deprivation_factor
from nearcare.store import Store

FTE_COLUMNS = ("gp_fte", "locum_trainee_fte", "nurse_fte", "direct_patient_care_fte", "admin_fte")
TREND_MEASURES = (
    "gp_fte",
    "nurse_fte",
    "patients_with_gp_fte",
    "patients_per_gp_fte",
    "need_weighted_patients_per_gp_fte",
    "need_weighted_patients_per_nurse_fte",
)
CHANGE_YEARS = (3, 5)
GAP_FTE = ("gp_fte", "gp_fte_needed", "gp_fte_gap", "nurse_fte", "nurse_fte_needed", "nurse_fte_gap")
GAP_SUMS = ("patients", "need_weighted_patients", *GAP_FTE)  # summed over a group's practices

# Practices at risk: each rule adds its points and writes its reason (README, "Workforce").
SINGLE_HANDED_GP_FTE = 1.5  # at most this many GP FTE: single-handed (2 points)
SMALL_GP_FTE = 3.0  # below this: a small practice (1 point)
HIGH_LOAD_RATIO = 1.25  # need-weighted patients per GP FTE this many times the benchmark (1 point)
RISING_LOAD_PCT = 5.0  # ... and up by this much over 3 years (1 more point)
FTE_FALL_PCT = 20.0  # GP FTE down by this much over 3 years (1 point)
LIST_GROWTH_PCT = 20.0  # list size up by this much over 5 years (1 point)
DEPRIVED_QUINTILE = 1  # the practice's population in England's most deprived fifth (1 point)
REMOTE_KM = 5.0  # the next practice further than this in a straight line (1 point)
CLOSURE_PEOPLE = (
    1000.0  # closing it leaves this many people newly beyond 20 min walk / 15 min drive (1 point)
)


def england_workforce(store: Store) -> pd.DataFrame:
    """England's workforce totals per year, from a store holding the national workforce file.

    FTE and ``patients_with_gp_fte`` sum over the practices reporting GP FTE above 0 (all are counted
    in ``practices`` and ``patients``). ``need_factor_mean`` is the patient-weighted mean over those
    practices of the raw need factor (module docstring). ``source_id`` is the workforce file's.
    """
    frame = store.df(
        """
        SELECT w.*, a.pct_65_plus, d.imd_quintile_england
        FROM gp_workforce w
        LEFT JOIN practice_age_mix a USING (practice_code)
        LEFT JOIN practice_deprivation d USING (practice_code)
        """
    )
    if frame.empty:
        raise StoreError("no GP workforce imported (import gp-workforce)")
    frame["need_factor"] = _need_factor(frame["pct_65_plus"], frame["imd_quintile_england"])
    frame["weighted"] = frame["patients"].fillna(0) * frame["need_factor"]
    covered = frame[frame["gp_fte"].fillna(0) > 0].groupby("year")
    table = covered[list(FTE_COLUMNS)].sum()
    table["patients_with_gp_fte"] = covered["patients"].sum()
    table["need_factor_mean"] = covered["weighted"].sum() / table["patients_with_gp_fte"]
    table["practices_with_gp_fte"] = covered.size()
    every = frame.groupby("year")
    table["practices"] = every.size()
    table["patients"] = every["patients"].sum()
    table["source_id"] = every["source_id"].max()
    table["practices_with_gp_fte"] = table["practices_with_gp_fte"].fillna(0).astype(int)
    columns = ["year", "practices", "practices_with_gp_fte", "patients", "patients_with_gp_fte"]
    return table.reset_index()[[*columns, *FTE_COLUMNS, "need_factor_mean", "source_id"]]


def _need_factor(pct_65_plus: pd.Series, imd_quintile: pd.Series) -> np.ndarray:
    """Raw need factor: age times deprivation (a quintile q stands for decile 2q - 0.5); missing -> 1."""
    age = np.nan_to_num(age_factor(pct_65_plus.to_numpy(float) / 100), nan=1.0)
    deprivation = np.nan_to_num(deprivation_factor(2 * imd_quintile.to_numpy(float) - 0.5), nan=1.0)
    return age * deprivation


def england_figures(store: Store) -> tuple[pd.DataFrame, str]:
    """England's totals per year and a line saying where they come from."""
    # A store made before this table existed, opened read-only, does not have it.
    kept = "england_workforce" in store.tables()
    table = store.df("SELECT * FROM england_workforce ORDER BY year") if kept else pd.DataFrame()
    if len(table):
        return table, (
            f"England: totals of the national workforce file ({int(table['practices'].max()):,} practices), "
            "kept when the data were bundled"
        )
    table = england_workforce(store)
    return table, (
        f"England: computed from the imported workforce file ({int(table['practices'].max()):,} practices); "
        "it is England only if the whole national file was imported"
    )


def _area_filter(frame: pd.DataFrame, area: str | None, built: str) -> pd.DataFrame:
    """Rows of practices in ``area``: the built area (None or its code), a sub-ICB or an ICB code."""
    if area is None or area.upper() == built.upper():
        return frame
    kept = frame[
        (frame["sub_icb_code"].str.upper() == area.upper()) | (frame["icb_code"].str.upper() == area.upper())
    ]
    if kept.empty:
        codes = sorted({*frame["sub_icb_code"].dropna(), *frame["icb_code"].dropna()})
        raise InputError(
            f"no practices in area {area!r}; the store's sub-ICB and ICB codes are {', '.join(codes)}"
        )
    return kept


_PLACES = """LEFT JOIN (SELECT DISTINCT sub_icb_code, sub_icb_name, icb_code, icb_name FROM small_areas) g
       USING (sub_icb_code)"""


def _built_area(store: Store) -> str:
    row = store.df("SELECT area_code FROM area")
    return str(row["area_code"].iloc[0]) if len(row) else ""


def practice_years(store: Store, area: str | None = None) -> tuple[pd.DataFrame, str]:
    """Per practice of the built area (or of ``area``: a sub-ICB or ICB code) and year: list size,
    FTE, covered flag and need-weighted patients."""
    frame = store.df(
        f"""
        SELECT w.practice_code, p.name, p.sub_icb_code, g.sub_icb_name, g.icb_code, g.icb_name,
               p.imd_quintile_england, p.pct_65_plus, w.year, w.patients,
               w.gp_fte, w.locum_trainee_fte, w.nurse_fte, w.direct_patient_care_fte, w.admin_fte
        FROM gp_workforce w
        JOIN practices p USING (practice_code)
        {_PLACES}
        ORDER BY w.practice_code, w.year
        """
    )
    if frame.empty:
        raise StoreError("no GP workforce for the area's practices (import gp-workforce, then build)")
    frame = _area_filter(frame, area, _built_area(store)).copy()
    frame["covered"] = frame["gp_fte"].fillna(0) > 0
    frame["need_factor"] = _need_factor(frame["pct_65_plus"], frame["imd_quintile_england"])
    england, _ = england_figures(store)
    mean = frame["year"].map(england.set_index("year")["need_factor_mean"])
    if mean.isna().any():
        covered = frame[frame["covered"]]
        weights = covered["patients"].fillna(0)
        own = (covered["need_factor"] * weights).groupby(covered["year"]).sum() / weights.groupby(
            covered["year"]
        ).sum()
        mean = mean.fillna(frame["year"].map(own))
        note = "need-weighted relative to the area's own average (England's not available for some years)"
    else:
        note = "need-weighted relative to England (its need-weighted patients equal its patients)"
    frame["need_weighted_patients"] = frame["patients"] * frame["need_factor"] / mean
    return frame, note


def _ratios(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    gp, nurse = frame["gp_fte"].where(frame["gp_fte"] > 0), frame["nurse_fte"].where(frame["nurse_fte"] > 0)
    frame["patients_per_gp_fte"] = frame["patients_with_gp_fte"] / gp
    frame["need_weighted_patients_per_gp_fte"] = frame["need_weighted_patients"] / gp
    frame["patients_per_nurse_fte"] = frame["patients_with_gp_fte"] / nurse
    frame["need_weighted_patients_per_nurse_fte"] = frame["need_weighted_patients"] / nurse
    return frame


def _sum_covered(panel: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Sums per group and year: every practice in counts and patients, covered ones in FTE and ratios."""
    panel = panel.assign(
        practices=1,
        practices_with_gp_fte=panel["covered"].astype(int),
        patients_with_gp_fte=panel["patients"].where(panel["covered"]),
        need_weighted_patients=panel["need_weighted_patients"].where(panel["covered"]),
        **{c: panel[c].where(panel["covered"]) for c in FTE_COLUMNS},
    )
    columns = [
        "practices",
        "practices_with_gp_fte",
        "patients",
        "patients_with_gp_fte",
        "need_weighted_patients",
        *FTE_COLUMNS,
    ]
    return panel.groupby([*keys, "year"], dropna=False)[columns].sum(min_count=1).reset_index()


@dataclass
class WorkforceTrends:
    """FTE and patients per FTE by year (``years``) and their change over 3 and 5 years (``changes``)
    for each practice, sub-ICB location, ICB and England; ``notes`` say what each figure covers."""

    years: pd.DataFrame
    changes: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def trends(store: Store, area: str | None = None) -> WorkforceTrends:
    """Workforce trends for the built area's practices (or ``area``'s: a sub-ICB or ICB code), their
    sub-ICB locations and ICB(s), and England."""
    panel, need_note = practice_years(store, area)
    england, england_note = england_figures(store)
    parts = []
    for level, code, name in (
        ("practice", "practice_code", "name"),
        ("sub_icb", "sub_icb_code", "sub_icb_name"),
        ("icb", "icb_code", "icb_name"),
    ):
        summed = _sum_covered(panel, [code, name]).rename(columns={code: "code", name: "name"})
        parts.append(summed.assign(level=level))
    nation = england.assign(level="england", code="E92000001", name="England")
    nation["need_weighted_patients"] = nation["patients_with_gp_fte"]
    years = _ratios(pd.concat([*parts, nation[parts[0].columns]], ignore_index=True))
    years = years[
        ["level", "code", "name", *[c for c in years.columns if c not in ("level", "code", "name")]]
    ]
    uncovered = panel[~panel["covered"]]
    notes = [
        need_note,
        england_note,
        "FTE and ratios count only practices reporting GP FTE above 0 that year; "
        f"{len(uncovered)} practice-years of the area's practices did not and are left out of them"
        + (
            f" ({', '.join(f'{y}: {n}' for y, n in uncovered.groupby('year').size().items())})"
            if len(uncovered)
            else ""
        ),
        "practices are today's in the area (as built), followed back through the years they reported; "
        "a sub-ICB's or ICB's change mixes staffing change with practices reporting or not (see practices_with_gp_fte)",
    ]
    return WorkforceTrends(years.reset_index(drop=True), _changes(years), notes)


def _changes(years: pd.DataFrame) -> pd.DataFrame:
    latest = int(years["year"].max())
    rows = []
    for (level, code, name), unit in years.groupby(["level", "code", "name"], sort=False, dropna=False):
        by_year = unit.set_index("year")
        for measure in TREND_MEASURES:
            value = by_year[measure].get(latest, np.nan)
            row = {
                "level": level,
                "code": code,
                "name": name,
                "measure": measure,
                "year": latest,
                "value": value,
            }
            for span in CHANGE_YEARS:
                before = by_year[measure].get(latest - span, np.nan)
                row[f"change_{span}y"] = value - before
                row[f"change_{span}y_pct"] = 100 * (value - before) / before if before else np.nan
            rows.append(row)
    return pd.DataFrame(rows)


@dataclass
class WorkforceGap:
    """GP and nurse FTE needed to reach a benchmark, in ``year``: ``groups`` has one row per group of
    each ``grouping`` (total, sub_icb, neighbourhood, imd_quintile), whose gaps add up to the total's;
    ``practices`` the per-practice figures; ``notes`` the benchmark and coverage."""

    year: int
    benchmark_per_gp_fte: float
    benchmark_per_nurse_fte: float
    groups: pd.DataFrame
    practices: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def _benchmark(value: float | None, england: pd.Series, column: str, label: str) -> tuple[float, str]:
    if value is not None:
        if not np.isfinite(value) or value <= 0:
            raise InputError(f"the benchmark must be a positive number of patients per FTE, not {value}")
        return float(value), f"{label}: {value:,.0f} need-weighted patients per FTE (given)"
    england_value = float(england["patients_with_gp_fte"] / england[column])
    return england_value, (
        f"{label}: England's {england_value:,.0f} need-weighted patients per FTE in {int(england['year'])} "
        f"(over its {int(england['practices_with_gp_fte']):,} practices reporting GP FTE)"
    )


def gap(
    store: Store,
    *,
    patients_per_gp_fte: float | None = None,
    patients_per_nurse_fte: float | None = None,
    year: int | None = None,
    area: str | None = None,
) -> WorkforceGap:
    """The GP and nurse FTE the area's practices would need to reach a benchmark of need-weighted
    patients per FTE (England's in that year by default): per practice, needed FTE = need-weighted
    patients / benchmark, gap = needed - actual (negative: above the benchmark); groups sum these.
    ``area``: a sub-ICB or ICB code of the store (default: the built area)."""
    panel, need_note = practice_years(store, area)
    year = int(panel["year"].max()) if year is None else year
    if year not in set(panel["year"]):
        raise InputError(f"no workforce figures for {year}; the store holds {sorted(set(panel['year']))}")
    row, england_note = _england_year(
        store, year, needed=patients_per_gp_fte is None or patients_per_nurse_fte is None
    )
    gp_benchmark, gp_note = _benchmark(patients_per_gp_fte, row, "gp_fte", "GP benchmark")
    nurse_benchmark, nurse_note = _benchmark(patients_per_nurse_fte, row, "nurse_fte", "nurse benchmark")
    now = panel[panel["year"] == year]
    left_out = now[~now["covered"]]
    practices = now[now["covered"]].copy()
    practices = practices.merge(_practice_places(store), on="practice_code", how="left")
    practices["gp_fte_needed"] = practices["need_weighted_patients"] / gp_benchmark
    practices["gp_fte_gap"] = practices["gp_fte_needed"] - practices["gp_fte"]
    practices["nurse_fte_needed"] = practices["need_weighted_patients"] / nurse_benchmark
    practices["nurse_fte_gap"] = practices["nurse_fte_needed"] - practices["nurse_fte"].fillna(0)
    practices["imd_quintile"] = practices["imd_quintile_england"].map(
        lambda q: f"{int(q)}" if pd.notna(q) else "unknown"
    )
    practices["total"] = "area"
    practices["sub_icb"] = practices["sub_icb_code"].fillna("unknown")
    practices["neighbourhood"] = practices["neighbourhood"].fillna("(none)")
    groupings = ["total", "sub_icb", "imd_quintile"]
    if practices["neighbourhood"].ne("(none)").any():
        groupings.insert(2, "neighbourhood")
    sums = list(GAP_SUMS)
    groups = pd.concat(
        [
            practices.groupby(g)[sums]
            .sum()
            .assign(practices=practices.groupby(g).size())
            .reset_index()
            .rename(columns={g: "group"})
            .assign(grouping=g)
            for g in groupings
        ],
        ignore_index=True,
    )[["grouping", "group", "practices", *sums]]
    unreported = len(_area_practices(store, area).query("~has_workforce"))
    notes = [
        gp_note,
        nurse_note,
        need_note,
        england_note,
        f"{len(practices)} practices reporting GP FTE in {year}; "
        + (
            f"{len(left_out)} did not ({left_out['patients'].sum():,.0f} patients) and are left out of the gap"
            if len(left_out)
            else "none left out"
        ),
        f"{unreported} of the area's practices have no workforce figures in any year and are left out",
        "a group's gap is the sum of its practices' (shortfalls net of surpluses), so the groups of each kind add up to the total",
    ]
    keep = ["practice_code", "name", "sub_icb", "neighbourhood", "imd_quintile", *GAP_SUMS]
    return WorkforceGap(
        year, gp_benchmark, nurse_benchmark, groups, practices[keep].reset_index(drop=True), notes
    )


def _england_year(store: Store, year: int, *, needed: bool) -> tuple[pd.Series, str]:
    """England's row for ``year`` (empty if absent and not ``needed``) and where it comes from."""
    england, note = england_figures(store)
    rows = england[england["year"] == year]
    if rows.empty:
        if needed:
            raise InputError(f"England's figures have no {year}; give the benchmark(s)")
        return pd.Series(dtype=float), note
    return rows.iloc[0], note


def _area_practices(store: Store, area: str | None) -> pd.DataFrame:
    """The practices of ``area`` (see ``practice_years``) and whether they have workforce figures."""
    frame = store.df(
        f"""
        SELECT p.practice_code, p.name, p.sub_icb_code, g.sub_icb_name, g.icb_code, p.imd_quintile_england,
               p.practice_code IN (SELECT practice_code FROM gp_workforce) AS has_workforce
        FROM practices p {_PLACES}
        ORDER BY p.practice_code
        """
    )
    return _area_filter(frame, area, _built_area(store))


def _practice_places(store: Store) -> pd.DataFrame:
    """Each practice's site (LSOA, British National Grid) and neighbourhood, if any are designed."""
    return store.df(
        """
        SELECT s.code AS practice_code, s.lsoa21_code, s.easting, s.northing, s.lat, s.lon, n.neighbourhood
        FROM sites s LEFT JOIN neighbourhoods n USING (lsoa21_code)
        WHERE s.kind = 'gp'
        """
    )


def practices_at_risk(
    store: Store,
    *,
    closures: pd.DataFrame | None = None,
    patients_per_gp_fte: float | None = None,
    area: str | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Practices scored by the transparent rules above (constants), with each one's reasons.

    ``closures`` is ``scenarios.rank_closures``'s table (code, people_newly_beyond_threshold): what
    closing each practice alone would do; without it that rule is not assessed. The benchmark is
    England's need-weighted patients per GP FTE in the latest year, or ``patients_per_gp_fte``.
    Returns one row per practice of the area (score, reasons, the figures behind them), highest first.
    """
    panel, _ = practice_years(store, area)
    year = int(panel["year"].max())
    row, _ = _england_year(store, year, needed=patients_per_gp_fte is None)
    benchmark, benchmark_note = _benchmark(patients_per_gp_fte, row, "gp_fte", "benchmark")
    wide = {
        column: panel.pivot_table(index="practice_code", columns="year", values=column, aggfunc="first")
        for column in ("gp_fte", "locum_trainee_fte", "patients", "need_weighted_patients")
    }
    load = (wide["need_weighted_patients"] / wide["gp_fte"].where(wide["gp_fte"] > 0)).reindex(
        columns=range(year - 5, year + 1)
    )
    gp_fte = wide["gp_fte"].reindex(columns=range(year - 5, year + 1))
    patients = wide["patients"].reindex(columns=range(year - 5, year + 1))
    places = _practice_places(store)
    frame = (
        _area_practices(store, area)
        .drop(columns="has_workforce")
        .merge(places, on="practice_code", how="left")
    )
    frame["year"] = year
    frame["gp_fte"] = frame["practice_code"].map(gp_fte[year])
    frame["locum_trainee_fte"] = frame["practice_code"].map(
        wide["locum_trainee_fte"].reindex(columns=[year])[year]
    )
    frame["patients"] = frame["practice_code"].map(patients[year])
    frame["need_weighted_patients_per_gp_fte"] = frame["practice_code"].map(load[year])
    frame["load_change_3y_pct"] = frame["practice_code"].map(100 * (load[year] / load[year - 3] - 1))
    frame["gp_fte_change_3y_pct"] = frame["practice_code"].map(
        100 * (gp_fte[year] / gp_fte[year - 3].where(gp_fte[year - 3] > 0) - 1)
    )
    frame["list_change_5y_pct"] = frame["practice_code"].map(
        100 * (patients[year] / patients[year - 5].where(patients[year - 5] > 0) - 1)
    )
    frame["next_practice_km"] = _next_practice_km(frame)
    notes = [
        benchmark_note,
        "the score adds the points of each rule met; the reasons list them",
    ]
    if closures is not None:
        frame["people_newly_beyond_if_closed"] = frame["practice_code"].map(
            closures.set_index("code")["people_newly_beyond_threshold"]
        )
    else:
        frame["people_newly_beyond_if_closed"] = np.nan
        notes.append("what closing each practice would do was not assessed (no closure ranking given)")
    scored = [_score(row, benchmark) for row in frame.itertuples(index=False)]
    frame["risk_score"] = [s for s, _ in scored]
    frame["reasons"] = ["; ".join(r) for _, r in scored]
    frame = frame.sort_values(["risk_score", "practice_code"], ascending=[False, True]).reset_index(drop=True)
    return frame, notes


def _next_practice_km(frame: pd.DataFrame) -> np.ndarray:
    """Straight-line distance (km) from each practice to the nearest other practice of the area."""
    located = frame["easting"].notna().to_numpy()
    out = np.full(len(frame), np.nan)
    points = frame.loc[located, ["easting", "northing"]].to_numpy(float)
    if len(points) >= 2:
        distance, _ = cKDTree(points).query(points, k=2)
        out[located] = distance[:, 1] / 1000
    return out


def _score(row, benchmark: float) -> tuple[int, list[str]]:
    """Points and reasons for one practice (the rules are the module's constants)."""
    points, reasons = 0, []
    fte, load = row.gp_fte, row.need_weighted_patients_per_gp_fte
    if pd.isna(fte) or fte <= 0:
        reasons.append(f"no GP FTE reported in {row.year}: staffing not assessed")
    elif fte <= SINGLE_HANDED_GP_FTE:
        points += 2
        reasons.append(f"single-handed: {fte:.1f} GP FTE{_locums(row)}")
    elif fte < SMALL_GP_FTE:
        points += 1
        reasons.append(f"small: {fte:.1f} GP FTE{_locums(row)}")
    low, high = PLAUSIBLE_PATIENTS_PER_GP_FTE
    if pd.notna(fte) and fte > 0 and not low <= row.patients / fte <= high:
        reasons.append(
            f"{row.patients / fte:,.0f} patients per reported GP FTE: outside the national "
            f"{low:,.0f}-{high:,.0f}, so the FTE figure may be wrong (check it)"
        )
    if pd.notna(load) and load >= HIGH_LOAD_RATIO * benchmark:
        points += 1
        reasons.append(
            f"{load:,.0f} need-weighted patients per GP FTE, {load / benchmark:.2f} times the benchmark"
        )
        if pd.notna(row.load_change_3y_pct) and row.load_change_3y_pct >= RISING_LOAD_PCT:
            points += 1
            reasons.append(f"and rising: up {row.load_change_3y_pct:.0f}% in 3 years")
    if pd.notna(row.gp_fte_change_3y_pct) and row.gp_fte_change_3y_pct <= -FTE_FALL_PCT:
        points += 1
        reasons.append(f"GP FTE down {-row.gp_fte_change_3y_pct:.0f}% in 3 years")
    if pd.notna(row.list_change_5y_pct) and row.list_change_5y_pct >= LIST_GROWTH_PCT:
        points += 1
        reasons.append(f"list up {row.list_change_5y_pct:.0f}% in 5 years")
    if pd.notna(row.imd_quintile_england) and row.imd_quintile_england == DEPRIVED_QUINTILE:
        points += 1
        reasons.append("serves England's most deprived fifth (IMD quintile 1)")
    if pd.notna(row.next_practice_km) and row.next_practice_km > REMOTE_KM:
        points += 1
        reasons.append(f"next practice {row.next_practice_km:.1f} km away (straight line)")
    if pd.notna(row.people_newly_beyond_if_closed) and row.people_newly_beyond_if_closed >= CLOSURE_PEOPLE:
        points += 1
        reasons.append(
            f"closing it would leave {row.people_newly_beyond_if_closed:,.0f} people newly beyond "
            "20 minutes' walk or 15 minutes' drive of a practice"
        )
    return points, reasons


def _locums(row) -> str:
    """Locum and trainee FTE beside a small GP FTE (GP FTE excludes them): a practice run by locums."""
    locums = getattr(row, "locum_trainee_fte", np.nan)
    return f" (and {locums:.1f} locum or trainee FTE)" if pd.notna(locums) and locums > 0 else ""
