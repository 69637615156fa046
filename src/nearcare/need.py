"""Need-weighted population: people weighted by age and deprivation, in proportion to likely need.

An approximation in the spirit of the Carr-Hill formula that allocates GP funding, **not the
formula itself** (which uses age-sex workload weights, list turnover, an additional-needs index
from morbidity and mortality, and market forces). nearcare's weights, written here and in the
README, are:

- age: a person aged 65 or over counts ``AGE_WEIGHT_65_PLUS`` = 2.2 times a younger person
  (roughly the ratio of GP consultation rates of older to younger patients in the workload data
  behind Carr-Hill);
- deprivation: a factor of 1 + ``DEPRIVATION_STEP`` x (5.5 - IMD decile), so 1.225 in the most
  deprived national decile and 0.775 in the least.

Both factors are scaled to average 1 over the area's population, so the need-weighted population
adds up to the real one and only its distribution changes.

A second, different weight ranks *harm* rather than sharing resources: ``deprivation_priority_weight``
= 1 + ``PRIORITY_STEP`` x (10 - IMD decile), 1.9 in the most deprived decile and 1 in the least, not
scaled (a harm to the most deprived counts 1.9 times the same harm to the least). Scenario ranking
(deprivation-weighted person-minutes) and defibrillator deserts use it. The two are kept apart on
purpose: the need factor is a modest, total-preserving adjustment of demand in the spirit of
Carr-Hill; the priority weight is a steeper ordering of losses, with no total to preserve. Where the share aged 65+ of an LSOA is
not imported, it is *modelled* as that of the nearest GP practice's registered list (straight
line), and labelled so.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from nearcare.store import Store

AGE_WEIGHT_65_PLUS = 2.2
DEPRIVATION_STEP = 0.05
PRIORITY_STEP = 0.1
MIDDLE_DECILE = 5.5  # where an LSOA has no IMD decile, the priority weight takes the middle


def age_factor(share_65_plus: np.ndarray) -> np.ndarray:
    share = np.asarray(share_65_plus, float)
    return (1 - share) + AGE_WEIGHT_65_PLUS * share


def deprivation_factor(imd_decile: np.ndarray) -> np.ndarray:
    return 1 + DEPRIVATION_STEP * (5.5 - np.asarray(imd_decile, float))


def deprivation_priority_weight(imd_decile: pd.Series) -> pd.Series:
    """Weight of a harm by deprivation: 1 + 0.1 x (10 - IMD decile), 1.9 for decile 1 and 1 for decile 10.

    Not scaled; an LSOA with no decile counts as the middle (5.5, weight 1.45).
    """
    return 1 + PRIORITY_STEP * (10 - imd_decile.fillna(MIDDLE_DECILE))


def _scaled(factor: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Scale so that the ``weights``-weighted mean is 1 (missing factors count as 1)."""
    factor = np.where(np.isfinite(factor), factor, 1.0)
    mean = np.average(factor, weights=weights) if weights.sum() > 0 else 1.0
    return factor / mean


def lsoa_share_65_plus(store: Store) -> tuple[pd.Series, str]:
    """Share of each LSOA's people aged 65+, modelled from the nearest practice's list."""
    areas = store.df("SELECT lsoa21_code, centroid_easting AS x, centroid_northing AS y FROM small_areas")
    practices = store.df(
        "SELECT s.easting AS x, s.northing AS y, p.pct_65_plus FROM practices p JOIN sites s "
        "ON s.code = p.practice_code WHERE p.pct_65_plus IS NOT NULL AND s.easting IS NOT NULL"
    )
    if practices.empty:
        return pd.Series(np.nan, index=areas["lsoa21_code"]), "no age mix imported: age not weighted"
    located = areas["x"].notna().to_numpy()
    share = np.full(len(areas), np.nan)
    _, nearest = cKDTree(practices[["x", "y"]].to_numpy()).query(areas.loc[located, ["x", "y"]].to_numpy())
    share[located] = practices["pct_65_plus"].to_numpy()[nearest] / 100
    return pd.Series(
        share, index=areas["lsoa21_code"].to_numpy()
    ), "share aged 65+ modelled from the nearest GP practice's registered list"


def need_weighted_population(store: Store) -> pd.DataFrame:
    """Per LSOA: population, the age and deprivation factors, and the need-weighted population."""
    areas = store.df("SELECT lsoa21_code, population, imd_decile FROM small_areas ORDER BY lsoa21_code")
    share, note = lsoa_share_65_plus(store)
    population = areas["population"].fillna(0).to_numpy(float)
    areas["share_65_plus"] = share.reindex(areas["lsoa21_code"]).to_numpy()
    areas["age_factor"] = _scaled(age_factor(areas["share_65_plus"]), population)
    areas["deprivation_factor"] = _scaled(deprivation_factor(areas["imd_decile"]), population)
    raw = population * areas["age_factor"] * areas["deprivation_factor"]
    total = raw.sum()
    areas["need_weighted_population"] = raw * (population.sum() / total) if total > 0 else raw
    areas["age_note"] = note
    return areas.set_index("lsoa21_code")


def practice_need_weighted_patients(store: Store) -> pd.DataFrame:
    """Per practice: registered patients weighted by its own age mix and its population's deprivation."""
    practices = store.df("SELECT practice_code, patients, pct_65_plus, imd_quintile_england FROM practices")
    patients = practices["patients"].fillna(0).to_numpy(float)
    # A practice quintile spans two deciles: use their middle (quintile q -> decile 2q - 0.5).
    decile = 2 * practices["imd_quintile_england"].to_numpy(float) - 0.5
    age = _scaled(age_factor(practices["pct_65_plus"].to_numpy(float) / 100), patients)
    deprivation = _scaled(deprivation_factor(decile), patients)
    raw = patients * age * deprivation
    practices["need_weighted_patients"] = raw * (patients.sum() / raw.sum()) if raw.sum() > 0 else raw
    return practices.set_index("practice_code")
