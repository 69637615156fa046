"""Proportionate allocation: share staff or money in proportion to need, and what it does to equity.

``allocate_units`` shares N units among practices (by need-weighted patients) or LSOAs (by
need-weighted population) with ``allocate``, stores the result in
``allocations``, and compares an equity measure before and after by deprivation quintile:

- practices: GP FTE per 10,000 need-weighted patients, before and after adding the units as FTE.
  Every practice with a list size and a deprivation score gets a share (need does not depend on
  FTE); where its GP FTE is missing or implausible, the FTE before is the estimate from
  ``nearcare.access.practice_gp_fte``, and those practices are listed in ``estimated_fte``;
  practices with no list size or deprivation score are left out and counted in ``left_out``;
- LSOAs or neighbourhoods: units per 1,000 people, for the need-proportional share against an
  equal share per head.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from nearcare._errors import InputError, StoreError
from nearcare.access import practice_gp_fte
from nearcare.equity import equity_figures
from nearcare.need import need_weighted_population, practice_need_weighted_patients
from nearcare.store import Store

TARGETS = ("practices", "lsoas", "neighbourhoods")
ALLOCATION_TOLERANCE = 1e-9  # units: floors and caps may miss the total by this much (rounding)


def _bound(bound: pd.Series | float | None, index: pd.Index, default: float) -> pd.Series:
    """A floor or cap per target: one number for all, a Series (``default`` where missing), or none."""
    if bound is None:
        return pd.Series(default, index=index)
    if isinstance(bound, pd.Series):
        return bound.reindex(index).fillna(default)
    return pd.Series(float(bound), index=index)


def allocate(
    need: pd.Series,
    units: float,
    *,
    floors: pd.Series | float | None = None,
    caps: pd.Series | float | None = None,
) -> pd.Series:
    """Share ``units`` in proportion to ``need``, each share kept within its floor and cap.

    Finds the factor k with sum(clip(k * need, floor, cap)) = units by bisection (the sum rises with
    k), so shares stay proportional to need except where a floor or cap binds.
    """
    need = need.astype(float)
    if need.empty:
        raise InputError("nothing to allocate to")
    if (~np.isfinite(need)).any() or (need < 0).any():
        raise InputError(
            "need must be a finite number of 0 or more for every target", value=need[~(need >= 0)].index[0]
        )
    if not np.isfinite(units) or units < 0:
        raise InputError("units must be a number of 0 or more", value=units)
    low = _bound(floors, need.index, 0.0)
    high = _bound(caps, need.index, np.inf)
    if (low > high).any():
        raise InputError("a floor is above its cap", value=(low > high).idxmax())
    if low.sum() > units + ALLOCATION_TOLERANCE:
        raise InputError(f"the floors add up to {low.sum():,.6g}, more than the {units:,.6g} units to share")
    if high.sum() < units - ALLOCATION_TOLERANCE:
        raise InputError(f"the caps add up to {high.sum():,.6g}, less than the {units:,.6g} units to share")
    if need.sum() > 0:
        # A target with no need gets only its floor, so the capped targets with need must hold the rest.
        most = high[need > 0].sum() + low[need == 0].sum()
        if most < units - ALLOCATION_TOLERANCE:
            raise InputError(
                f"in proportion to need at most {most:,.6g} of the {units:,.6g} units can be shared: the "
                "targets with need are capped and those with no need get only their floor"
            )
    weights = need if need.sum() > 0 else pd.Series(1.0, index=need.index)
    w, lo, hi = weights.to_numpy(), low.to_numpy(), high.to_numpy()

    def total(k: float) -> float:
        return float(np.clip(k * w, lo, hi).sum())

    k_low, k_high = 0.0, max(units, 1.0) / max(w.sum(), 1e-300)
    while total(k_high) < units and k_high < 1e300:
        k_high *= 2
    for _ in range(200):
        middle = (k_low + k_high) / 2
        k_low, k_high = (middle, k_high) if total(middle) < units else (k_low, middle)
    shares = np.clip(k_high * w, lo, hi)
    # What bisection leaves (rounding, or needs so small that no finite factor reaches the caps) goes
    # to the targets with need that a bound does not hold, in proportion to need, else to their room.
    has_need = w > 0
    for _ in range(100):
        residual = units - shares.sum()
        if abs(residual) <= ALLOCATION_TOLERANCE * max(1.0, units) * 1e-3:
            break
        movable = has_need & ((shares < hi) if residual > 0 else (shares > lo))
        if not movable.any():
            break
        room = (hi - shares) if residual > 0 else (shares - lo)
        weight = w * movable
        # Normalise before scaling: residual x a subnormal need would underflow to 0.
        share = weight / weight.sum() if weight.sum() > 0 else np.full_like(weight, np.nan)
        if not np.isfinite(share).all():
            weight = np.where(movable, np.minimum(room, 1e300), 0.0)
            share = weight / weight.sum()
        step = np.minimum(abs(residual) * share, room)
        shares = shares + np.sign(residual) * step
    return pd.Series(shares, index=need.index)


@dataclass
class AllocationResult:
    to: str
    units: float
    allocation: pd.DataFrame  # target_code, need, floor, cap, units
    measure: str
    before: pd.Series  # by quintile
    after: pd.Series
    concentration_before: float
    concentration_after: float
    estimated_fte: pd.DataFrame | None = None  # practices given a share whose FTE before is an estimate
    left_out: str = ""  # who got no share, and why

    @property
    def summary(self) -> str:
        estimated = (
            f" {len(self.estimated_fte)} practices' GP FTE before is estimated from list size (not reported "
            "or not plausible)."
            if self.estimated_fte is not None and len(self.estimated_fte)
            else ""
        )
        return (
            f"{self.units:,.6g} units shared among {len(self.allocation):,} {self.to} in proportion to need. "
            f"Concentration index of {self.measure} by deprivation: {self.concentration_before:+.3f} before, "
            f"{self.concentration_after:+.3f} after (negative: more for the more deprived).{estimated}"
            f"{' ' + self.left_out if self.left_out else ''}"
        )


def allocate_units(
    store: Store, units: float, *, to: str = "practices", floor: float | None = None, cap: float | None = None
) -> AllocationResult:
    if to not in TARGETS:
        raise InputError(f"--to must be one of {', '.join(TARGETS)}, not {to!r}")
    if to == "neighbourhoods" and store.count("neighbourhoods") == 0:
        raise StoreError(
            "no neighbourhoods in this store yet: design or load them first (nearcare neighbourhoods)"
        )
    estimated, left_out = None, ""
    if to == "neighbourhoods":
        areas = need_weighted_population(store).join(
            store.df("SELECT lsoa21_code, neighbourhood FROM neighbourhoods").set_index("lsoa21_code")
        )
        ranks = store.df("SELECT lsoa21_code, imd_rank FROM small_areas").set_index("lsoa21_code")["imd_rank"]
        groups = (
            areas.assign(imd_rank=ranks)
            .groupby("neighbourhood")
            .apply(
                lambda g: pd.Series(
                    {
                        "need": g["need_weighted_population"].sum(),
                        "population": g["population"].sum(),
                        # A neighbourhood's deprivation: its population-weighted mean IMD rank and the decile of that rank.
                        "rank": np.average(g["imd_rank"], weights=g["population"]),
                        "decile": round(float(np.average(g["imd_decile"], weights=g["population"]))),
                    }
                ),
                include_groups=False,
            )
        )
        need = groups["need"]
        shares = allocate(need, units, floors=floor, caps=cap)
        before_y = np.full(len(groups), 1e3 * units / groups["population"].sum())
        after_y = 1e3 * shares.to_numpy() / groups["population"].to_numpy()
        weights, order, decile = groups["population"], groups["rank"], groups["decile"]
        measure = "units per 1,000 people (equal share per head before)"
    elif to == "practices":
        checked = practice_gp_fte(store)
        practices = checked[["practice_code", "gp_fte", "gp_fte_status"]].merge(
            store.df("SELECT practice_code, imd_score, imd_quintile_england FROM practices"),
            on="practice_code",
        )
        need = practice_need_weighted_patients(store)["need_weighted_patients"].reindex(
            practices["practice_code"]
        )
        usable = practices.assign(need=need.to_numpy())
        has_need = usable["need"].notna() & (usable["need"] > 0)
        has_deprivation = usable["imd_score"].notna()
        usable = usable[has_need & has_deprivation & usable["gp_fte"].notna()]
        if usable.empty:
            raise StoreError("no practice has list size, GP FTE and deprivation figures to allocate by")
        dropped = {
            "no registered patients": int((~has_need).sum()),
            "no deprivation score": int((has_need & ~has_deprivation).sum()),
        }
        if sum(dropped.values()):
            left_out = (
                f"{sum(dropped.values())} practices got no share: "
                + ", ".join(f"{n} with {why}" for why, n in dropped.items() if n)
                + "."
            )
        estimated = checked[
            checked["practice_code"].isin(usable.loc[usable["gp_fte_status"] == "estimated", "practice_code"])
        ].reset_index(drop=True)
        need = usable.set_index("practice_code")["need"]
        shares = allocate(need, units, floors=floor, caps=cap)
        before_y = 1e4 * usable["gp_fte"].to_numpy() / usable["need"].to_numpy()
        after_y = 1e4 * (usable["gp_fte"].to_numpy() + shares.to_numpy()) / usable["need"].to_numpy()
        weights, order, decile = usable["need"], -usable["imd_score"], 2 * usable["imd_quintile_england"] - 1
        measure = "GP FTE per 10,000 need-weighted patients"
    else:
        areas = need_weighted_population(store)
        areas = areas[areas["population"] > 0]
        need = areas["need_weighted_population"]
        shares = allocate(need, units, floors=floor, caps=cap)
        ranks = store.df("SELECT lsoa21_code, imd_rank FROM small_areas").set_index("lsoa21_code")["imd_rank"]
        population = areas["population"].to_numpy()
        before_y = np.full(len(areas), 1e3 * units / population.sum())  # an equal share per head
        after_y = 1e3 * shares.to_numpy() / population
        weights, order, decile = areas["population"], ranks.reindex(areas.index), areas["imd_decile"]
        measure = "units per 1,000 people (equal share per head before)"
    before = equity_figures(measure, before_y, weights, order, decile)
    after = equity_figures(measure, after_y, weights, order, decile)
    table = pd.DataFrame(
        {
            "target_kind": to,
            "target_code": shares.index,
            "need": need.reindex(shares.index).to_numpy(),
            "floor": floor,
            "cap": cap,
            "units": shares.to_numpy(),
        }
    )
    with store.transaction() as con:
        con.execute("DELETE FROM allocations WHERE target_kind = ?", [to])
        store.insert("allocations", table)
    return AllocationResult(
        to,
        units,
        table.set_index("target_code"),
        measure,
        before.quintiles["value"],
        after.quintiles["value"],
        before.concentration_index,
        after.concentration_index,
        estimated,
        left_out,
    )
