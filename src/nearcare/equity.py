"""Equity: does supply follow need? Inequality indices by deprivation (allocation: ``nearcare.allocation``).

Areas (or practices) are ranked from the most to the least deprived; each one's *fractional rank*
R is the mid-point of its share of the cumulative population (0 = most deprived end, 1 = least).

- Concentration index (Wagstaff, van Doorslaer & Paci 1991): C = 2 cov_w(y, R) / mean_w(y), from
  -1 to 1. C > 0: the measure is concentrated among the *less* deprived. Standard error by the
  formula of Kakwani, Wagstaff & van Doorslaer (1997, J Econometrics 77:87) for grouped data, with
  n the number of areas: var(C) = (sum_i f_i a_i^2 - (1 + C)^2) / n, where
  a_i = (y_i / mu)(2 R_i - 1 - C) + 2 - q_{i-1} - q_i and q_i the cumulative share of y.
- Slope index of inequality (SII): the modelled difference in y between the least and the most
  deprived ends of the population. The headline is OHID's method, as published on Fingertips
  (OHID, Public health technical guidance, "Slope index of inequality (SII) and relative index of
  inequality (RII)", fingertips.phe.org.uk/static-reports/public-health-technical-guidance/
  Inequality/SII.html, with PHE's "Slope index of inequality tool (simulated confidence
  intervals)"; the same method is ``phe_sii`` in OHID's PHEindicatormethods R package; after Low &
  Low 2004, J Public Health 26:388): the population-weighted mean of y in each IMD decile is
  regressed, by weighted least squares with each decile's share of the population as its weight,
  on the mid-point of the decile's cumulative population share (deciles ordered from the most
  deprived); the SII is the slope. OHID's 95% interval comes from 100,000 simulated sets of decile
  values, each drawn from a normal distribution with the decile's standard error; as the SII is
  linear in the decile values those draws are exactly normal, so nearcare uses their closed form,
  SII +/- z sqrt(sum c_d^2 se_d^2) with c_d the slope's weight on decile d (the tests check it
  against a simulation and against the worked examples in PHEindicatormethods' tests, taken from
  PHE's SII tool: the SII to 1e-9, the limits to their simulation's noise). A decile's standard error
  is that of a population-weighted mean over its areas, n/(n-1) sum (w_i/W)^2 (y_i - mean)^2; a
  decile with one area takes the pooled within-decile spread of one area's value. Practices'
  deprivation is published by quintile, so at practice level the groups are quintiles.
  The alternative (``sii_level="lsoa"``) fits the same regression to every area (or practice) as a
  point, weighted by population, with a 95% interval from its standard error and Student's t with
  n - 2 d.f.
- Ratio of the population-weighted mean in the most deprived national quintile to that in the
  least deprived.

Verdict on the inverse care law, for a measure where more is better (E2SFCA, FTE per head): it
*holds* when the slope's whole confidence interval shows more for the less deprived; it is
*reversed* (supply follows need) when the interval shows more for the more deprived; otherwise
there is no clear gradient. For a measure where less is better (minutes), the signs swap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from nearcare import distributed
from nearcare._errors import InputError, StoreError
from nearcare.access import practice_gp_fte
from nearcare.need import practice_need_weighted_patients
from nearcare.store import Store


def fractional_rank(deprivation_order: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Mid-point cumulative population share, ranking by ``deprivation_order`` (smaller = more deprived)."""
    order = np.argsort(np.asarray(deprivation_order, float), kind="stable")
    share = np.asarray(weights, float)[order] / np.sum(weights)
    rank = np.empty(len(order))
    rank[order] = np.cumsum(share) - share / 2
    return rank


def concentration_index(
    y: np.ndarray, weights: np.ndarray, deprivation_order: np.ndarray
) -> tuple[float, float]:
    """(C, standard error) of ``y`` over areas ranked by deprivation (see the module notes)."""
    y, w = np.asarray(y, float), np.asarray(weights, float)
    order = np.argsort(np.asarray(deprivation_order, float), kind="stable")
    y, f = y[order], w[order] / w.sum()
    mu = np.sum(f * y)
    if mu == 0:
        raise InputError("the concentration index is undefined when the measure's mean is 0")
    rank = np.cumsum(f) - f / 2
    c = 2 * np.sum(f * (y - mu) * (rank - 0.5)) / mu
    q = np.cumsum(f * y) / mu
    q_before = np.concatenate([[0.0], q[:-1]])
    a = (y / mu) * (2 * rank - 1 - c) + 2 - q_before - q
    n = len(y)
    variance = (np.sum(f * a**2) - (1 + c) ** 2) / n
    return float(c), float(np.sqrt(max(variance, 0.0)))


def slope_index(
    y: np.ndarray, weights: np.ndarray, rank: np.ndarray, *, level: float = 0.95
) -> tuple[float, float, float]:
    """(SII, lower, upper): the slope of y on fractional rank, by weighted least squares."""
    y, w, r = np.asarray(y, float), np.asarray(weights, float), np.asarray(rank, float)
    n = len(y)
    if n < 3:
        raise InputError("the slope index needs at least three areas")
    w = w * n / w.sum()
    r_bar, y_bar = np.sum(w * r) / n, np.sum(w * y) / n
    sxx = np.sum(w * (r - r_bar) ** 2)
    slope = np.sum(w * (r - r_bar) * (y - y_bar)) / sxx
    residual = y - (y_bar + slope * (r - r_bar))
    se = np.sqrt(np.sum(w * residual**2) / (n - 2) / sxx)
    t = stats.t.ppf(0.5 + level / 2, n - 2)
    return float(slope), float(slope - t * se), float(slope + t * se)


def grouped_slope_index(
    values: np.ndarray, populations: np.ndarray, standard_errors: np.ndarray, *, level: float = 0.95
) -> tuple[float, float, float]:
    """(SII, lower, upper) by OHID's method over groups ordered from the most deprived (see the module notes)."""
    y, pop, se = (np.asarray(a, float) for a in (values, populations, standard_errors))
    if len(y) < 2:
        raise InputError("the slope index needs at least two deprivation groups with people")
    share = pop / pop.sum()
    rank = np.cumsum(share) - share / 2
    centred = rank - np.sum(share * rank)
    coefficient = share * centred / np.sum(share * centred**2)  # the slope is sum(coefficient * y)
    slope = float(np.sum(coefficient * y))
    half_width = stats.norm.ppf(0.5 + level / 2) * np.sqrt(np.sum(coefficient**2 * se**2))
    return slope, float(slope - half_width), float(slope + half_width)


def by_group(y: np.ndarray, weights: np.ndarray, group: np.ndarray) -> pd.DataFrame:
    """Per group (decile or quintile): population, population-weighted mean of ``y``, number of
    areas and the standard error of the mean (see the module notes)."""
    y, w = np.asarray(y, float), np.asarray(weights, float)
    frame = pd.DataFrame({"group": group, "w": w, "wy": w * y, "y": y})
    sums = frame.groupby("group").agg(population=("w", "sum"), wy=("wy", "sum"), areas=("y", "size"))
    mean = sums["wy"] / sums["population"]
    frame["share"] = w / frame["group"].map(sums["population"]).to_numpy()
    frame["spread"] = frame["share"] ** 2 * (y - frame["group"].map(mean).to_numpy()) ** 2
    n = sums["areas"].astype(float)
    variance = frame.groupby("group")["spread"].sum() * n / (n - 1).where(n > 1)
    within = w * (y - frame["group"].map(mean).to_numpy()) ** 2
    spare = len(frame) - len(sums)  # degrees of freedom left within groups
    pooled = within.sum() / w.sum() * len(frame) / spare if spare > 0 else np.nan
    variance = variance.where(n > 1, pooled)
    return pd.DataFrame(
        {"population": sums["population"], "value": mean, "areas": sums["areas"], "se": np.sqrt(variance)}
    )


@dataclass
class EquityFigures:
    measure: str
    higher_is_better: bool
    areas: int
    mean: float
    concentration_index: float
    concentration_index_se: float
    sii: float
    sii_low: float
    sii_high: float
    most_deprived_quintile: float
    least_deprived_quintile: float
    deciles: pd.DataFrame
    quintiles: pd.DataFrame
    sii_method: str = ""
    # Units (practices) left out, with the reason: e.g. GP FTE not reported or implausible.
    left_out: pd.DataFrame | None = None

    @property
    def ratio_most_to_least(self) -> float:
        return (
            self.most_deprived_quintile / self.least_deprived_quintile
            if self.least_deprived_quintile
            else np.nan
        )

    @property
    def finding(self) -> str:
        """'holds', 'reversed' or 'unclear' for the inverse care law (see the module notes)."""
        favours_less_deprived = self.sii_low > 0 if self.higher_is_better else self.sii_high < 0
        favours_more_deprived = self.sii_high < 0 if self.higher_is_better else self.sii_low > 0
        return "holds" if favours_less_deprived else "reversed" if favours_more_deprived else "unclear"

    def verdict(self, what: str) -> str:
        """A plain-language sentence with the figures behind it."""
        ratio = (
            f"{self.ratio_most_to_least:.2f}"
            if np.isfinite(self.ratio_most_to_least)
            else "n/a (no areas in the most or least deprived national quintile)"
        )
        figures = (
            f"slope index of inequality {self.sii:+.3g} (95% CI {self.sii_low:+.3g} to {self.sii_high:+.3g}; "
            f"{self.sii_method}) from the most to the least deprived; "
            f"concentration index {self.concentration_index:+.3f} "
            f"(SE {self.concentration_index_se:.3f}); most/least deprived quintile ratio {ratio}"
        )
        if self.finding == "holds":
            return f"The inverse care law holds for {what}: the less deprived areas have better {what} ({figures})."
        if self.finding == "reversed":
            return (
                f"The inverse care law does not hold for {what}: the more deprived areas have better {what}, "
                f"as proportionate universalism asks ({figures})."
            )
        return f"No clear gradient by deprivation in {what} ({figures})."


SII_LEVELS = ("decile", "lsoa")


def equity_figures(
    measure: str,
    y: np.ndarray,
    weights: np.ndarray,
    deprivation_order: np.ndarray,
    decile: np.ndarray,
    *,
    higher_is_better: bool = True,
    sii_level: str = "decile",
    groups: str = "decile",
    unit: str = "area",
) -> EquityFigures:
    """All the figures for one measure over areas with a population and a national IMD decile.

    ``sii_level`` "decile" gives OHID's slope index over the ``groups`` (deciles, or quintiles where
    only those are known); "lsoa" fits it over the areas (each a ``unit``) themselves.
    """
    if sii_level not in SII_LEVELS:
        raise InputError(f"the slope index level must be one of {', '.join(SII_LEVELS)}, not {sii_level!r}")
    y, w = np.asarray(y, float), np.asarray(weights, float)
    ok = np.isfinite(y) & np.isfinite(w) & (w > 0) & np.isfinite(np.asarray(decile, float))
    if ok.sum() < 3:
        raise InputError(
            f"{measure}: fewer than three areas with a value, a population and a deprivation decile"
        )
    y, w, order, decile = (
        y[ok],
        w[ok],
        np.asarray(deprivation_order, float)[ok],
        np.asarray(decile)[ok].astype(int),
    )
    c, se = concentration_index(y, w, order)
    quintile = (decile + 1) // 2
    deciles, quintiles = by_group(y, w, decile), by_group(y, w, quintile)
    if sii_level == "lsoa":
        sii, low, high = slope_index(y, w, fractional_rank(order, w))
        method = f"fitted over {len(y):,} {unit}s, weighted by population"
    else:
        table = deciles if groups == "decile" else quintiles
        sii, low, high = grouped_slope_index(table["value"], table["population"], table["se"])
        method = f"OHID method over {len(table)} IMD {groups}s"
    return EquityFigures(
        measure,
        higher_is_better,
        int(ok.sum()),
        float(np.average(y, weights=w)),
        c,
        se,
        sii,
        low,
        high,
        float(quintiles["value"].get(1, np.nan)),
        float(quintiles["value"].get(5, np.nan)),
        deciles,
        quintiles,
        method,
    )


MEASURES = {  # column of the access table -> (what it is, more is better)
    "e2sfca_need": ("E2SFCA per 1,000 need-weighted people", True),
    "e2sfca": ("E2SFCA per 1,000 people", True),
    "nearest_minutes": ("minutes to the nearest", False),
    "services_within": ("services within the threshold", True),
}


def lsoa_equity(
    store: Store,
    *,
    kind: str = "gp",
    profile: str = "drive",
    mode: str | None = None,
    measure: str = "e2sfca_need",
    sii_level: str = "decile",
) -> EquityFigures:
    """Equity of an access measure across the area's LSOAs, ranked by IMD 2025."""
    frame, mode = _access_rows(store, kind, profile, mode, measure)
    return _lsoa_figures(frame, f"{measure} ({kind}, {profile}, {mode})", measure, sii_level)


def _access_rows(
    store: Store, kind: str, profile: str, mode: str | None, measure: str, columns: str = ""
) -> tuple[pd.DataFrame, str]:
    """(y, population, imd_rank, imd_decile and ``columns`` of small_areas per LSOA; the mode used)."""
    if measure not in MEASURES:
        raise InputError(f"measure must be one of {', '.join(MEASURES)}, not {measure!r}")
    modes = store.df("SELECT DISTINCT mode FROM access WHERE kind = ? AND profile = ?", [kind, profile])[
        "mode"
    ]
    if modes.empty:
        raise StoreError(
            f"no {profile} access measures for {kind}; run `nearcare access --mode {profile}` first"
        )
    mode = mode or (profile if (modes == profile).any() else "crowfly")
    frame = store.df(
        f"SELECT a.{measure} AS y, s.population, s.imd_rank, s.imd_decile{columns} FROM access a "
        "JOIN small_areas s USING (lsoa21_code) WHERE a.kind = ? AND a.profile = ? AND a.mode = ?",
        [kind, profile, mode],
    )
    if frame.empty:
        raise StoreError(f"no {profile} ({mode}) access measures for {kind}")
    return frame, mode


def _lsoa_figures(frame: pd.DataFrame, label: str, measure: str, sii_level: str) -> EquityFigures:
    return equity_figures(
        label,
        frame["y"],
        frame["population"],
        frame["imd_rank"],
        frame["imd_decile"],
        higher_is_better=MEASURES[measure][1],
        sii_level=sii_level,
        unit="LSOA",
    )


# League-table units: the small_areas columns holding each unit's code and name.
LEAGUE_UNITS = {
    "icb": ("icb_code", "icb_name"),
    "sub-icb": ("sub_icb_code", "sub_icb_name"),
    "lad": ("lad_code", "lad_name"),
}
LEAGUE_COLUMNS = [
    "rank",
    "unit_code",
    "unit_name",
    "lsoas",
    "population",
    "mean",
    "concentration_index",
    "concentration_index_se",
    "sii",
    "sii_low",
    "sii_high",
    "finding",
    "not_assessed",
]


@dataclass(frozen=True)
class LeagueUnit:
    """One row of the league table to compute: a unit's LSOA rows and what to measure."""

    code: str
    name: str
    lsoas: pd.DataFrame  # population, the measure, imd_score, imd_decile
    label: str
    measure: str
    sii_level: str


def league_row(unit: LeagueUnit) -> dict[str, object]:
    """A unit's row of the league table; a unit that cannot be assessed says why."""
    part = unit.lsoas
    row: dict[str, object] = {
        "unit_code": unit.code,
        "unit_name": unit.name,
        "lsoas": len(part),
        "population": float(part["population"].sum()),
    }
    try:
        figures = _lsoa_figures(part, unit.label, unit.measure, unit.sii_level)
    except InputError as exc:
        row.update(not_assessed=str(exc), finding="not assessed")
    else:
        row.update(
            mean=figures.mean,
            concentration_index=figures.concentration_index,
            concentration_index_se=figures.concentration_index_se,
            sii=figures.sii,
            sii_low=figures.sii_low,
            sii_high=figures.sii_high,
            finding=figures.finding,
        )
    return row


def league_table(
    store: Store,
    *,
    by: str = "icb",
    kind: str = "gp",
    profile: str = "drive",
    mode: str | None = None,
    measure: str = "e2sfca_need",
    sii_level: str = "decile",
    scheduler: Any = None,
) -> pd.DataFrame:
    """Equity of an access measure in each ICB, sub-ICB or local authority of the built area.

    One row per unit with its LSOAs, population, the population-weighted mean of the measure, the
    concentration index with its SE, the slope index (OHID's method over the IMD deciles present
    in the unit, national deciles) and the finding (holds, reversed, unclear), each unit's LSOAs
    ranked against each other; then a last row for the whole built area (``unit_code`` ``*``).
    ``rank`` 1 is where the inverse care law bites hardest: the largest slope towards the less
    deprived (for minutes, the most negative). A unit whose figures cannot be computed (fewer than
    three LSOAs with figures, or a single decile) keeps its row with the reason in ``not_assessed``.
    LSOAs with no unit code are counted only in the whole-area row. With ``scheduler`` (a
    dask.distributed address or client) each unit's row is a task there, carrying its LSOAs' rows.
    """
    if by not in LEAGUE_UNITS:
        raise InputError(f"--by must be one of {', '.join(LEAGUE_UNITS)}, not {by!r}")
    code, name = LEAGUE_UNITS[by]
    frame, mode = _access_rows(
        store, kind, profile, mode, measure, f", s.{code} AS unit_code, s.{name} AS unit_name"
    )
    label = f"{measure} ({kind}, {profile}, {mode})"
    groups = frame.groupby("unit_code", dropna=True, sort=True)
    jobs = [LeagueUnit(c, str(p["unit_name"].iloc[0] or c), p, label, measure, sii_level) for c, p in groups]
    jobs.append(LeagueUnit("*", "whole built area", frame, label, measure, sii_level))
    rows = distributed.run(league_row, jobs, scheduler=scheduler)
    table = pd.DataFrame(rows).reindex(columns=LEAGUE_COLUMNS)
    units = table.iloc[:-1]
    bite = units["sii"] if MEASURES[measure][1] else -units["sii"]
    table.loc[units.index, "rank"] = bite.rank(ascending=False, method="min")
    order = units.assign(_bite=bite).sort_values(
        ["_bite", "unit_code"], ascending=[False, True], na_position="last"
    )
    table = pd.concat([table.loc[order.index], table.iloc[-1:]], ignore_index=True)
    table["rank"] = table["rank"].astype("Int64")
    table.attrs.update(measure=label, by=by, higher_is_better=MEASURES[measure][1])
    return table


def practice_equity(store: Store, *, sii_level: str = "decile") -> EquityFigures:
    """GP FTE per 10,000 need-weighted patients across practices, ranked by their population's deprivation.

    Only reported, plausible GP FTE counts (``nearcare.access.practice_gp_fte``): an estimate from
    list size at the area's average would only pull a practice to the mean, so practices whose FTE
    is missing or implausible are left out, and listed in ``left_out``.
    """
    practices = practice_gp_fte(store).merge(
        store.df("SELECT practice_code, imd_score, imd_quintile_england FROM practices"), on="practice_code"
    )
    need = practice_need_weighted_patients(store)["need_weighted_patients"]
    practices["need"] = practices["practice_code"].map(need)
    has_figures = practices["imd_score"].notna() & (practices["need"] > 0)
    ok = has_figures & (practices["gp_fte_status"] == "reported")
    if ok.sum() < 3:
        raise StoreError(
            "too few practices with GP FTE and deprivation figures (import gp-workforce and "
            "practice-deprivation)"
        )
    p = practices[ok]
    per_10k = 1e4 * p["gp_fte"] / p["need"]
    left_out = practices[has_figures & ~ok][
        ["practice_code", "name", "patients", "reported_gp_fte", "reason"]
    ]
    # Quintile q stands for deciles 2q-1 and 2q; the decile table uses its lower decile.
    figures = equity_figures(
        "GP FTE per 10,000 need-weighted patients (practices)",
        per_10k,
        p["need"],
        -p["imd_score"],
        2 * p["imd_quintile_england"] - 1,
        sii_level=sii_level,
        groups="quintile",
        unit="practice",
    )
    figures.left_out = left_out.reset_index(drop=True)
    return figures
