"""Neighbourhood hubs: where each neighbourhood's health centre should stand (the p-median problem).

In each neighbourhood, choose ``p`` hub sites among candidates (its GP practices, all its service
sites, or points from a file) to minimise the need-weighted travel time of its people, each LSOA
going to its nearest chosen hub. Optionally every LSOA must reach a hub within ``max_minutes`` (a
covering constraint).

Formulation (Hakimi 1964; ReVelle & Swain 1970). LSOAs ``i`` with need-weighted population
``w_i`` (``nearcare.need``), candidates ``j``, minutes ``t_ij`` from the stored travel-time pairs::

    minimise    sum_ij w_i t_ij y_ij
    subject to  sum_j y_ij = 1          every LSOA goes to one hub
                y_ij <= x_j             only to an open hub
                sum_j x_j = p           p hubs (all candidates, if there are fewer)
                x_j in {0, 1}, 0 <= y_ij <= 1   (y is integral at an optimum)

and with ``max_minutes`` only the pairs with ``t_ij <= max_minutes`` exist. An LSOA with no stored
pair to any candidate (within ``max_minutes``, and within the cutoff the travel times were computed
to) cannot be served by any choice: it is left out of the problem and *listed* as unreachable, never
dropped silently. Solved exactly with CBC through PuLP (the solver is passed in, as for
defibrillator sites), and by a greedy heuristic (add the site that lowers the cost most) followed by
Teitz-Bart interchange (swap a chosen site for another while that lowers the cost); the gap between
the greedy and the exact cost is reported.

The kernels (``p_median_exact``, ``p_median_greedy``, ``need_minutes``) see arrays only: a matrix of
minutes (``inf`` where there is no pair), the weights and ``p``. ``choose_hubs`` builds them from a
store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from nearcare._errors import InputError, StoreError
from nearcare.area import place_in_lsoas
from nearcare.geo import to_wgs84
from nearcare.need import need_weighted_population
from nearcare.scenarios import NewSite, Scenario, _locate, check_openings, load_context, new_site_pairs
from nearcare.sources._read import read_rows
from nearcare.store import SERVICE_KINDS, Store

if TYPE_CHECKING:
    import pulp

CANDIDATE_SETS = ("practices", "sites")  # or a path to a CSV of points
STATUS_ASSIGNED = "assigned"
STATUS_UNREACHABLE = "unreachable"  # no stored pair to any candidate (within max_minutes)
STATUS_NOT_PLACED = "not placed"  # the neighbourhood has no feasible choice of hubs


# --- the kernels: arrays only ------------------------------------------------------------------------


def allowed_minutes(minutes: np.ndarray, max_minutes: float | None = None) -> np.ndarray:
    """The minutes matrix with pairs beyond ``max_minutes`` (and missing ones) as ``inf``."""
    allowed = np.where(np.isfinite(minutes), np.asarray(minutes, float), np.inf)
    if max_minutes is not None:
        allowed = np.where(allowed <= max_minutes, allowed, np.inf)
    return allowed


def need_minutes(minutes: np.ndarray, weights: np.ndarray, chosen: Sequence[int]) -> float:
    """Need-weighted minutes when each row goes to its nearest chosen column (inf if a row has none)."""
    if not len(chosen):
        return float("inf") if len(weights) else 0.0
    best = minutes[:, list(chosen)].min(axis=1)
    if not np.isfinite(best).all():
        return float("inf")
    return float(np.dot(weights, best))


def _check(minutes: np.ndarray, weights: np.ndarray, p: int) -> None:
    if minutes.ndim != 2 or minutes.shape[0] != len(weights):
        raise InputError("minutes must be a matrix with one row per weight")
    if p < 1:
        raise InputError("p (hubs per neighbourhood) must be at least 1", value=p)
    if (np.asarray(weights) < 0).any():
        raise InputError("need weights cannot be negative")
    if len(weights) and not np.isfinite(minutes).any(axis=1).all():
        raise InputError("every row needs a pair to at least one candidate (list the others as unreachable)")


def p_median_exact(
    minutes: np.ndarray,
    weights: np.ndarray,
    p: int,
    *,
    max_minutes: float | None = None,
    solver: pulp.LpSolver | None = None,
) -> list[int] | None:
    """The p-median (see the module notes) solved exactly: the chosen columns, or None if infeasible.

    ``minutes[i, j]`` is row i's minutes to candidate j (``inf``: no pair); ``weights[i]`` its need;
    ``solver`` any PuLP solver (default CBC, quiet). With ``max_minutes``, every row must reach a
    chosen candidate within it (None when no p candidates do so). Raises ``StoreError`` if the
    solver ends without an optimum for another reason.
    """
    import pulp  # lazily: importing PuLP takes about 0.4 s, which every CLI command would pay

    _check(minutes, weights, p)
    allowed = allowed_minutes(minutes, max_minutes)
    n, m = allowed.shape
    if n == 0 or m == 0:
        return [] if n == 0 else None
    if not np.isfinite(allowed).any(axis=1).all():
        return None  # a row no candidate reaches within max_minutes: the covering constraint fails
    model = pulp.LpProblem("p_median", pulp.LpMinimize)
    x = [model.add_variable(f"x{j}", cat="Binary") for j in range(m)]
    rows, cols = np.nonzero(np.isfinite(allowed))
    y = {
        (i, j): model.add_variable(f"y{i}_{j}", lowBound=0, upBound=1)
        for i, j in zip(rows, cols, strict=True)
    }
    model += pulp.lpSum(float(weights[i] * allowed[i, j]) * v for (i, j), v in y.items())
    by_row: list[list[pulp.LpVariable]] = [[] for _ in range(n)]
    for (row, col), v in y.items():
        by_row[row].append(v)
        model += v <= x[col]
    for row_vars in by_row:
        model += pulp.lpSum(row_vars) == 1
    model += pulp.lpSum(x) == min(p, m)
    status = pulp.LpStatus[model.solve(solver or pulp.PULP_CBC_CMD(msg=False))]
    if status == "Infeasible":
        return None
    if status != "Optimal":
        raise StoreError(f"the hub siting problem was not solved ({status})")
    return [j for j, v in enumerate(x) if (value := v.value()) is not None and value > 0.5]


def _cost_key(best: np.ndarray, weights: np.ndarray) -> tuple[int, float]:
    """(rows unserved, need-weighted minutes of the served): greedy serves everyone first."""
    served = np.isfinite(best)
    return int((~served).sum()), float(np.dot(weights[served], best[served]))


def p_median_greedy(
    minutes: np.ndarray,
    weights: np.ndarray,
    p: int,
    *,
    max_minutes: float | None = None,
    interchange: bool = True,
) -> list[int]:
    """Greedy p-median: add the candidate that lowers the cost most, ``p`` times, then (``interchange``)
    swap a chosen candidate for an unchosen one while that lowers it (Teitz & Bart 1968).

    Rows left unserved count first (so with ``max_minutes`` it covers before it shortens); the result
    may still leave rows unserved where the exact method proves no choice serves them all.
    """
    allowed = allowed_minutes(minutes, max_minutes)
    _check(minutes, weights, p)
    n, m = allowed.shape
    weights = np.asarray(weights, float)
    chosen: list[int] = []
    best = np.full(n, np.inf)
    for _ in range(min(p, m)):
        keys = [
            _cost_key(np.minimum(best, allowed[:, j]), weights) if j not in chosen else (n + 1, np.inf)
            for j in range(m)
        ]
        pick = min(range(m), key=lambda j: keys[j])
        chosen.append(pick)
        best = np.minimum(best, allowed[:, pick])
    while interchange and 0 < len(chosen) < m:
        current = _cost_key(allowed[:, chosen].min(axis=1), weights)
        swaps = [
            (_cost_key(allowed[:, [c for c in chosen if c != out] + [into]].min(axis=1), weights), out, into)
            for out in chosen
            for into in range(m)
            if into not in chosen
        ]
        key, out, into = min(swaps)
        if not (
            key[0] < current[0] or (key[0] == current[0] and key[1] < current[1] - 1e-9 * max(1, current[1]))
        ):
            break
        chosen = [into if c == out else c for c in chosen]
    return sorted(chosen)


# --- from a store --------------------------------------------------------------------------------------


@dataclass
class HubPlan:
    """Hubs chosen in each neighbourhood, and where every LSOA's people go.

    ``hubs``: neighbourhood, code, name, kind, easting, northing, lat, lon, lsoas, population,
    need_weighted_population and mean_minutes (need-weighted) of the LSOAs it serves.
    ``lsoas``: every LSOA of a neighbourhood with population, need_weighted_population, hub, minutes
    and status (assigned, unreachable: no pair to any candidate, or not placed: its neighbourhood
    has no feasible choice). ``neighbourhoods``: per neighbourhood, the candidates, hubs chosen,
    status, the exact and greedy need-weighted minutes and the gap, and the people by status.
    """

    hubs: pd.DataFrame
    lsoas: pd.DataFrame
    neighbourhoods: pd.DataFrame
    profile: str
    mode: str
    candidates: str
    per_neighbourhood: int
    max_minutes: float | None
    cutoff_minutes: float | None  # the travel-time run's cutoff: no pair beyond it is stored
    notes: list[str] = field(default_factory=list)

    def people(self, status: str) -> float:
        return float(self.lsoas.loc[self.lsoas["status"] == status, "population"].sum())

    def _greedy_solved(self) -> pd.DataFrame:
        """Neighbourhoods solved exactly where greedy also found a feasible choice (it may not, with
        ``max_minutes``: the exact method can prove a choice exists that greedy misses)."""
        solved = self.neighbourhoods[self.neighbourhoods["status"] == "optimal"]
        return solved[np.isfinite(solved["greedy_need_minutes"].astype(float))]

    @property
    def gap(self) -> float:
        """The greedy heuristic's excess need-weighted minutes over the exact optimum, summed over the
        neighbourhoods where greedy found a feasible choice."""
        solved = self._greedy_solved()
        exact, greedy = solved["exact_need_minutes"].sum(), solved["greedy_need_minutes"].sum()
        return float((greedy - exact) / exact) if exact > 0 else 0.0

    def summary(self) -> str:
        how = "crow-fly estimate" if self.mode == "crowfly" else "road network"
        within = f" within {self.max_minutes:g} minutes" if self.max_minutes is not None else ""
        total = float(self.lsoas["population"].sum())
        assigned = self.lsoas[self.lsoas["status"] == STATUS_ASSIGNED]
        mean = (
            np.average(assigned["minutes"], weights=assigned["need_weighted_population"])
            if assigned["need_weighted_population"].sum() > 0
            else float("nan")
        )
        optimal = int((self.neighbourhoods["status"] == "optimal").sum())
        missed = optimal - len(self._greedy_solved())
        greedy_missed = f" (in {missed} it found no choice within the time)" if missed else ""
        reach = (
            f"no pair to any candidate within {self.max_minutes:g} minutes"
            if self.max_minutes
            else "no pair to any candidate"
        )
        return (
            f"{len(self.hubs)} hubs in {optimal} of {len(self.neighbourhoods)} neighbourhoods "
            f"({self.per_neighbourhood} each, among {self.candidates}; {self.profile}, {how}{within}): "
            f"{self.people(STATUS_ASSIGNED):,.0f} of {total:,.0f} people assigned, need-weighted mean "
            f"{mean:.1f} minutes to their hub; {self.people(STATUS_UNREACHABLE):,.0f} unreachable ({reach}), "
            f"{self.people(STATUS_NOT_PLACED):,.0f} in neighbourhoods with no feasible choice; "
            f"greedy with interchange is {100 * self.gap:.2f}% above the exact optimum{greedy_missed}"
        )


def _stored_mode(store: Store, profile: str, mode: str | None, kinds: list[str]) -> str:
    """The stored run's mode: ``crowfly``, or the profile for a network run (None: the run covering the
    most LSOAs, the network on a tie)."""
    runs = store.df(
        "SELECT mode, min(origins) AS origins FROM travel_runs WHERE profile = ? AND destination_kind IN "
        "(SELECT unnest(?)) GROUP BY 1",
        [profile, kinds],
    )
    if runs.empty:
        raise StoreError(
            f"no {profile} travel times stored: run `nearcare travel-times --profile {profile}` first"
        )
    stored = {"network": profile, "crowfly": "crowfly", None: None}[mode]
    if stored is None:
        runs = runs.assign(network=runs["mode"] != "crowfly").sort_values(
            ["origins", "network"], ascending=False
        )
        return str(runs["mode"].iloc[0])
    if stored not in set(runs["mode"]):
        raise StoreError(
            f"no {profile} travel times by {mode} stored: run `nearcare travel-times` for it first"
        )
    return stored


def read_candidates(store: Store, path: str | Path) -> pd.DataFrame:
    """Hub candidates from a CSV: ``code`` and ``postcode`` or ``lat``,``lon``; optional ``name`` and
    ``neighbourhood`` (else the neighbourhood of the LSOA the point stands in)."""
    path = Path(path)
    names, rows, lines = read_rows(path, header=True)
    if "code" not in names or not ("postcode" in names or {"lat", "lon"} <= set(names)):
        raise InputError("expected columns code and postcode, or code, lat and lon", path=path, line=1)
    records = []
    for row, line in zip(rows, lines, strict=True):
        table = {k: v.strip() for k, v in zip(names, row, strict=False) if v.strip()}
        where = f"{path} line {line}"
        if "code" not in table:
            raise InputError("required value is missing", path=path, line=line, field="code")
        located: dict[str, object] = dict(table)
        for key in ("lat", "lon"):
            if key in table:
                try:
                    located[key] = float(table[key])
                except ValueError:
                    raise InputError(
                        "not a number", path=path, line=line, field=key, value=table[key]
                    ) from None
        easting, northing = _locate(store, located, where)
        records.append(
            {
                "code": table["code"],
                "name": table.get("name", table["code"]),
                "neighbourhood": table.get("neighbourhood"),
                "easting": easting,
                "northing": northing,
                "_line": line,
            }
        )
    frame = pd.DataFrame(records, columns=["code", "name", "neighbourhood", "easting", "northing", "_line"])
    if frame.empty:
        raise InputError("no candidate sites in the file", path=path)
    check_openings(
        Scenario("hub candidates", open=[_new_site(r) for r in frame.itertuples()]), where=str(path)
    )
    frame["lon"], frame["lat"] = to_wgs84(frame["easting"].to_numpy(float), frame["northing"].to_numpy(float))
    known = store.df("SELECT DISTINCT neighbourhood FROM neighbourhoods")["neighbourhood"]
    named = frame["neighbourhood"].notna()
    unknown = frame[named & ~frame["neighbourhood"].isin(known)]
    if len(unknown):
        raise InputError(
            "not a stored neighbourhood", path=path, line=int(unknown["_line"].iloc[0]), field="neighbourhood"
        )
    if (~named).any():
        areas = store.df(
            "SELECT lsoa21_code, lad_code, boundary, centroid_easting, centroid_northing FROM small_areas"
        )
        orgs = frame.loc[~named, ["lat", "lon"]].assign(postcode_lsoa21_code=None, postcode_lad_code=None)
        centroids = areas.rename(columns={"centroid_easting": "easting", "centroid_northing": "northing"})
        lsoa, _ = place_in_lsoas(orgs, areas, centroids.dropna(subset=["easting"]))
        frame.loc[~named, "lsoa21_code"] = lsoa
        of = store.df("SELECT lsoa21_code, neighbourhood FROM neighbourhoods").set_index("lsoa21_code")[
            "neighbourhood"
        ]
        frame.loc[~named, "neighbourhood"] = frame.loc[~named, "lsoa21_code"].map(of)
        outside = frame[frame["neighbourhood"].isna()]
        if len(outside):
            raise InputError(
                "the point is in no neighbourhood (give a neighbourhood column to place it)",
                path=path,
                line=int(outside["_line"].iloc[0]),
                value=outside["code"].iloc[0],
            )
    return frame.drop(columns=["_line", "lsoa21_code"], errors="ignore").assign(kind="candidate")


def _new_site(row) -> NewSite:
    return NewSite(row.code, row.name, "gp", row.easting, row.northing)


def _candidate_sites(store: Store, candidates: str | Path) -> pd.DataFrame:
    """Candidates with their neighbourhood: practices or all service sites standing in one, or a file's."""
    if str(candidates) in CANDIDATE_SETS:
        kinds = ["gp"] if str(candidates) == "practices" else list(SERVICE_KINDS)
        return store.df(
            "SELECT s.code, s.name, s.kind, s.easting, s.northing, s.lat, s.lon, n.neighbourhood FROM sites s "
            "JOIN neighbourhoods n USING (lsoa21_code) WHERE s.kind IN (SELECT unnest(?)) AND s.easting IS NOT NULL "
            "ORDER BY n.neighbourhood, s.code",
            [kinds],
        )
    return read_candidates(store, candidates)


def _pairs(
    store: Store, sites: pd.DataFrame, candidates: str | Path, profile: str, mode: str
) -> pd.DataFrame:
    """LSOA-to-candidate minutes: stored pairs, or for a file's points, new ones by the scenario engine's
    way of timing a new site."""
    if str(candidates) in CANDIDATE_SETS:
        return store.df(
            "SELECT origin_id, destination_id, minutes FROM travel_times WHERE profile = ? AND mode = ? "
            "AND destination_id IN (SELECT unnest(?))",
            [profile, mode, sites["code"].tolist()],
        )
    ctx = load_context(store, mode="crowfly" if mode == "crowfly" else "drive")
    found = new_site_pairs(
        store, ctx, Scenario("hub candidates", open=[_new_site(r) for r in sites.itertuples()])
    )
    if found is None:
        return pd.DataFrame(columns=["origin_id", "destination_id", "minutes"])
    return found.loc[found["profile"] == profile, ["origin_id", "destination_id", "minutes"]]


def choose_hubs(
    store: Store,
    *,
    per_neighbourhood: int = 1,
    candidates: str | Path = "practices",
    max_minutes: float | None = None,
    profile: str = "drive",
    mode: str | None = None,
    solver: pulp.LpSolver | None = None,
) -> HubPlan:
    """Choose ``per_neighbourhood`` hubs in every stored neighbourhood, exactly and greedily (module notes).

    ``candidates``: ``practices`` (GP practice sites in the neighbourhood), ``sites`` (every service
    site in it) or the path of a CSV of points (``read_candidates``); ``mode``: network or crowfly
    (None: the stored run covering the most LSOAs).
    """
    if per_neighbourhood < 1:
        raise InputError("hubs per neighbourhood must be at least 1", value=per_neighbourhood)
    if max_minutes is not None and not max_minutes > 0:
        raise InputError("the maximum travel time must be more than 0 minutes", value=max_minutes)
    if profile not in ("walk", "drive"):
        raise InputError(f"profile must be walk or drive, not {profile!r}")
    if mode not in (None, "network", "crowfly"):
        raise InputError(f"mode must be network or crowfly, not {mode!r}")
    members = store.df("SELECT lsoa21_code, neighbourhood FROM neighbourhoods ORDER BY 2, 1")
    if members.empty:
        raise StoreError("no neighbourhoods stored: run `nearcare neighbourhoods design` or `load` first")
    kinds = ["gp"] if str(candidates) != "sites" else list(SERVICE_KINDS)
    stored = _stored_mode(store, profile, mode, kinds)
    cutoff = store.df(
        "SELECT min(max_minutes) AS m FROM travel_runs WHERE profile = ? AND mode = ? AND destination_kind IN "
        "(SELECT unnest(?))",
        [profile, stored, kinds],
    )["m"].iloc[0]
    sites = _candidate_sites(store, candidates)
    pairs = _pairs(store, sites, candidates, profile, stored)
    need = need_weighted_population(store)
    lsoas = members.join(need[["population", "need_weighted_population"]], on="lsoa21_code")
    lsoas[["population", "need_weighted_population"]] = lsoas[
        ["population", "need_weighted_population"]
    ].fillna(0.0)
    lsoas["hub"], lsoas["minutes"], lsoas["status"] = None, np.nan, STATUS_UNREACHABLE
    hub_rows, rows = [], []
    for name, group in lsoas.groupby("neighbourhood", sort=True):
        here = sites[sites["neighbourhood"] == name].reset_index(drop=True)
        codes = group["lsoa21_code"].to_numpy()
        matrix = (
            pairs[pairs["origin_id"].isin(codes) & pairs["destination_id"].isin(here["code"])]
            .pivot_table(index="origin_id", columns="destination_id", values="minutes", aggfunc="min")
            .reindex(index=codes, columns=here["code"])
            .to_numpy(float)
        )
        allowed = allowed_minutes(matrix, max_minutes)
        reachable = np.isfinite(allowed).any(axis=1)
        weights = group["need_weighted_population"].to_numpy(float)[reachable]
        row = {
            "neighbourhood": name,
            "lsoas": len(group),
            "population": float(group["population"].sum()),
            "candidates": len(here),
            "hubs": 0,
            "status": "optimal",
            "exact_need_minutes": np.nan,
            "greedy_need_minutes": np.nan,
            "gap": np.nan,
        }
        exact = None
        if len(here) == 0:
            row["status"] = "no candidate site"
        elif not reachable.any():
            row["status"] = "no LSOA reaches a candidate"
        else:
            reach = allowed[reachable]
            exact = p_median_exact(reach, weights, per_neighbourhood, solver=solver)
            greedy = p_median_greedy(reach, weights, per_neighbourhood)
            if exact is None:  # each LSOA reaches some candidate in time, but no p of them reach all
                row["status"] = "infeasible"
            else:
                row["exact_need_minutes"] = need_minutes(reach, weights, exact)
                row["greedy_need_minutes"] = need_minutes(reach, weights, greedy)
                e, g = row["exact_need_minutes"], row["greedy_need_minutes"]
                row["gap"] = (g - e) / e if e > 0 else 0.0
                row["hubs"] = len(exact)
        if exact:
            reach = allowed[reachable]
            nearest = np.array(exact)[reach[:, exact].argmin(axis=1)]
            at = group.index[reachable]
            lsoas.loc[at, "hub"] = here["code"].to_numpy()[nearest]
            lsoas.loc[at, "minutes"] = reach[np.arange(len(reach)), nearest]
            lsoas.loc[at, "status"] = STATUS_ASSIGNED
            for j in exact:
                served = lsoas.loc[at][lsoas.loc[at, "hub"] == here["code"].iloc[j]]
                need_served = served["need_weighted_population"].sum()
                hub_rows.append(
                    {
                        **here.iloc[j][
                            ["neighbourhood", "code", "name", "kind", "easting", "northing", "lat", "lon"]
                        ],
                        "lsoas": len(served),
                        "population": float(served["population"].sum()),
                        "need_weighted_population": float(need_served),
                        "mean_minutes": float(
                            np.average(served["minutes"], weights=served["need_weighted_population"])
                        )
                        if need_served > 0
                        else float(served["minutes"].mean()),
                    }
                )
        elif len(here) and reachable.any():
            lsoas.loc[group.index[reachable], "status"] = STATUS_NOT_PLACED
        status = lsoas.loc[group.index, "status"]
        for label in (STATUS_ASSIGNED, STATUS_UNREACHABLE, STATUS_NOT_PLACED):
            row[f"population_{label.replace(' ', '_')}"] = float(
                group.loc[status == label, "population"].sum()
            )
        rows.append(row)
    hub_columns = [
        "neighbourhood",
        "code",
        "name",
        "kind",
        "easting",
        "northing",
        "lat",
        "lon",
        "lsoas",
        "population",
        "need_weighted_population",
        "mean_minutes",
    ]
    notes = [
        f"Travel times: the stored {profile} pairs ({'crow-fly estimates' if stored == 'crowfly' else 'road network'}), "
        f"computed to {cutoff:g} minutes; an LSOA with no pair to any candidate within that"
        + (f" or within {max_minutes:g} minutes" if max_minutes is not None else "")
        + " is listed as unreachable.",
        f"Need: {need['age_note'].iloc[0] if len(need) else 'no LSOAs'}; weights from nearcare.need.",
    ]
    return HubPlan(
        pd.DataFrame(hub_rows, columns=hub_columns),
        lsoas.reset_index(drop=True),
        pd.DataFrame(rows),
        profile,
        stored,
        str(candidates),
        per_neighbourhood,
        max_minutes,
        None if pd.isna(cutoff) else float(cutoff),
        notes,
    )
