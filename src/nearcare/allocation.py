"""Proportionate allocation: share staff or money in proportion to need, and what it does to equity.

``allocate_units`` shares N units among practices (by need-weighted patients) or LSOAs (by
need-weighted population) with ``nearcare.equity.allocate``, stores the result in
``allocations``, and compares an equity measure before and after by deprivation quintile:

- practices: GP FTE per 10,000 need-weighted patients, before and after adding the units as FTE;
- LSOAs or neighbourhoods: units per 1,000 people, for the need-proportional share against an
  equal share per head.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from nearcare._errors import InputError, StoreError
from nearcare.equity import allocate, equity_figures
from nearcare.need import need_weighted_population, practice_need_weighted_patients
from nearcare.store import Store

TARGETS = ("practices", "lsoas", "neighbourhoods")


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

    @property
    def summary(self) -> str:
        return (f"{self.units:,.6g} units shared among {len(self.allocation):,} {self.to} in proportion to need. "
                f"Concentration index of {self.measure} by deprivation: {self.concentration_before:+.3f} before, "
                f"{self.concentration_after:+.3f} after (negative: more for the more deprived).")


def allocate_units(store: Store, units: float, *, to: str = "practices", floor: float | None = None,
                   cap: float | None = None) -> AllocationResult:
    if to not in TARGETS:
        raise InputError(f"--to must be one of {', '.join(TARGETS)}, not {to!r}")
    if to == "neighbourhoods" and store.count("neighbourhoods") == 0:
        raise StoreError("no neighbourhoods in this store yet: design or load them first (nearcare neighbourhoods)")
    if to == "neighbourhoods":
        areas = need_weighted_population(store).join(
            store.df("SELECT lsoa21_code, neighbourhood FROM neighbourhoods").set_index("lsoa21_code"))
        ranks = store.df("SELECT lsoa21_code, imd_rank FROM small_areas").set_index("lsoa21_code")["imd_rank"]
        groups = areas.assign(imd_rank=ranks).groupby("neighbourhood").apply(lambda g: pd.Series({
            "need": g["need_weighted_population"].sum(), "population": g["population"].sum(),
            # A neighbourhood's deprivation: its population-weighted mean IMD rank and the decile of that rank.
            "rank": np.average(g["imd_rank"], weights=g["population"]),
            "decile": int(round(np.average(g["imd_decile"], weights=g["population"])))}), include_groups=False)
        need = groups["need"]
        shares = allocate(need, units, floors=floor, caps=cap)
        before_y = np.full(len(groups), 1e3 * units / groups["population"].sum())
        after_y = 1e3 * shares.to_numpy() / groups["population"].to_numpy()
        weights, order, decile = groups["population"], groups["rank"], groups["decile"]
        measure = "units per 1,000 people (equal share per head before)"
    elif to == "practices":
        practices = store.df("SELECT practice_code, gp_fte, imd_score, imd_quintile_england FROM practices")
        need = practice_need_weighted_patients(store)["need_weighted_patients"].reindex(practices["practice_code"])
        usable = practices.assign(need=need.to_numpy())
        usable = usable[usable["need"].notna() & usable["imd_score"].notna() & usable["gp_fte"].notna()]
        if usable.empty:
            raise StoreError("no practice has list size, GP FTE and deprivation figures to allocate by")
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
    table = pd.DataFrame({"target_kind": to, "target_code": shares.index, "need": need.reindex(shares.index).to_numpy(),
                          "floor": floor, "cap": cap, "units": shares.to_numpy()})
    with store.transaction() as con:
        con.execute("DELETE FROM allocations WHERE target_kind = ?", [to])
        store.insert("allocations", table)
    return AllocationResult(to, units, table.set_index("target_code"), measure, before.quintiles["value"],
                            after.quintiles["value"], before.concentration_index, after.concentration_index)
