"""Access to services per LSOA: minutes to the nearest, services within a threshold, and E2SFCA.

Enhanced two-step floating catchment area (E2SFCA; Luo & Qi 2009, Health & Place 15:1100)::

    R_j = S_j / sum_i P_i W(t_ij)        (supply per head of the weighted demand around site j)
    A_i = sum_j R_j W(t_ij)              (weighted supply per head reachable from area i)

over pairs with t_ij within the catchment; S_j is a site's supply, P_i an area's demand (people,
or need-weighted people) and W a distance-decay weight:

- ``step`` (default): zones of the catchment with weights 1, 0.68 and 0.22 (Luo & Qi's, from a
  Gaussian); a time on a zone's upper bound belongs to that zone;
- ``gaussian``: Dai's (2010) truncated Gaussian, W = (exp(-t^2 / 2 t0^2) - e^-1/2) / (1 - e^-1/2);
- ``gravity``: W = max(t, 1)^-beta within the catchment (the gravity-based 2SFCA of Wang 2012).

Computed from the stored pairs table (only pairs within the catchment; no dense origins-by-sites
matrix), with ``np.bincount`` for the two sums. Values are supply per 1,000 people (GP FTE, or
sites, per 1,000).

Defaults follow English practice: 20 minutes' walk, 15 minutes' drive; for pharmacies also the
number within 1.6 km in a straight line (the distance the pharmacy regulations use for
controlled localities).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from nearcare._errors import InputError, StoreError
from nearcare.need import need_weighted_population
from nearcare.store import Store

DEFAULT_THRESHOLD_MINUTES = {"walk": 20.0, "drive": 15.0}
PHARMACY_DISTANCE_M = 1600.0
LUO_QI_WEIGHTS = (1.0, 0.68, 0.22)
PER_PEOPLE = 1000.0
SERVICE_KINDS = ("gp", "pharmacy", "dentist", "optometrist")


@dataclass(frozen=True)
class Catchment:
    """A catchment of ``max_minutes`` and the distance-decay weight used inside it."""

    max_minutes: float
    decay: str = "step"  # step | gaussian | gravity
    zones: tuple[tuple[float, float], ...] = field(default=())  # (upper bound in minutes, weight)
    beta: float = 1.5  # gravity only

    def __post_init__(self) -> None:
        if self.max_minutes <= 0:
            raise InputError("a catchment must be longer than 0 minutes", value=self.max_minutes)
        if self.decay not in ("step", "gaussian", "gravity"):
            raise InputError(f"decay must be step, gaussian or gravity, not {self.decay!r}")
        if self.decay == "step" and not self.zones:
            third = self.max_minutes / 3
            object.__setattr__(
                self, "zones", tuple(zip((third, 2 * third, self.max_minutes), LUO_QI_WEIGHTS, strict=True))
            )
        bounds = [b for b, _ in self.zones]
        if self.decay == "step" and (bounds != sorted(bounds) or any(w < 0 for _, w in self.zones)):
            raise InputError("step zones must rise in minutes and have weights of 0 or more")

    def weight(self, minutes: np.ndarray) -> np.ndarray:
        minutes = np.asarray(minutes, float)
        inside = minutes <= self.max_minutes
        if self.decay == "step":
            bounds = np.array([b for b, _ in self.zones])
            weights = np.append([w for _, w in self.zones], 0.0)
            w = weights[np.searchsorted(bounds, minutes, side="left")]
        elif self.decay == "gaussian":
            edge = np.exp(-0.5)
            w = (np.exp(-0.5 * (minutes / self.max_minutes) ** 2) - edge) / (1 - edge)
        else:
            w = np.maximum(minutes, 1.0) ** -self.beta
        return np.where(inside, w, 0.0)

    def describe(self) -> str:
        if self.decay == "step":
            zones = ", ".join(f"up to {b:.3g} min x {w:g}" for b, w in self.zones)
            return f"step weights: {zones}"
        if self.decay == "gaussian":
            return f"Gaussian decay to {self.max_minutes:g} minutes"
        return f"gravity decay t^-{self.beta:g} up to {self.max_minutes:g} minutes"


def e2sfca(
    pairs: pd.DataFrame,
    demand: pd.Series,
    supply: pd.Series,
    catchment: Catchment,
    *,
    origin: str = "origin_id",
    destination: str = "destination_id",
    cost: str = "minutes",
) -> pd.Series:
    """E2SFCA per origin: weighted supply per head (not scaled); origins with no site inside get 0.

    ``pairs`` is a long table of (origin, destination, cost); ``demand`` is indexed by origin and
    ``supply`` by destination. A site with no demand in its catchment serves nobody (R_j = 0).
    """
    costs = pairs[cost].to_numpy(float)
    w = catchment.weight(costs)
    keep = w > 0
    o_index, o_codes = pd.factorize(pairs[origin].to_numpy()[keep])
    d_index, d_codes = pd.factorize(pairs[destination].to_numpy()[keep])
    w = w[keep]
    p = demand.reindex(o_codes).fillna(0).to_numpy(float)
    s = supply.reindex(d_codes).fillna(0).to_numpy(float)
    weighted_demand = np.bincount(d_index, weights=w * p[o_index], minlength=len(d_codes))
    ratio = np.divide(s, weighted_demand, out=np.zeros_like(s), where=weighted_demand > 0)
    access = np.bincount(o_index, weights=w * ratio[d_index], minlength=len(o_codes))
    return pd.Series(access, index=o_codes).reindex(demand.index, fill_value=0.0)


# GP FTE (GPs excluding locums and trainees) is implausible where the patients per FTE fall outside
# this range: the 0.5th and 99.5th percentiles (numpy's linear interpolation, rounded to whole
# patients) of TOTAL_PATIENTS / TOTAL_GP_EXTGL_FTE over the 6,278 English practices with both above 0
# in 2024, the latest year of the national workforce file (HEEC's workforce_year.csv, from NHS
# Digital's General Practice Workforce statistics). tests/test_supply.py re-derives them from the file.
PLAUSIBLE_PATIENTS_PER_GP_FTE = (726.0, 16_077.0)


def practice_gp_fte(store: Store) -> pd.DataFrame:
    """GP FTE per practice as nearcare uses it (``check_gp_fte`` over the store's practices)."""
    return check_gp_fte(
        store.df(
            "SELECT practice_code, name, patients, gp_fte AS reported_gp_fte FROM practices "
            "ORDER BY practice_code"
        )
    )


def check_gp_fte(practices: pd.DataFrame) -> pd.DataFrame:
    """GP FTE per practice as nearcare uses it: the reported figure where plausible, else an estimate.

    ``practices`` has practice_code, name, patients and reported_gp_fte. The one plausibility rule,
    used by access, equity and allocation: a reported FTE of 0, or one whose patients per FTE fall
    outside ``PLAUSIBLE_PATIENTS_PER_GP_FTE``, is treated as missing. Missing FTE is estimated from
    the list size at the patients per FTE of the area's practices with plausible figures. A practice
    with no list size keeps its reported FTE (nothing to check it against) or, with none, has no FTE. Columns: practice_code, name, patients, reported_gp_fte,
    gp_fte (what is used), estimated_gp_fte, gp_fte_status (reported | estimated | unknown) and
    reason (why a figure was not used; empty for reported ones).
    """
    practices = practices.copy()
    patients, fte = practices["patients"].astype(float), practices["reported_gp_fte"].astype(float)
    low, high = PLAUSIBLE_PATIENTS_PER_GP_FTE
    per_fte = patients / fte.where(fte > 0)
    has_patients = patients.notna()
    reason = pd.Series("", index=practices.index, dtype=object)
    reason[has_patients & fte.isna()] = "no GP FTE reported"
    reason[has_patients & (fte == 0)] = "0 GP FTE reported"
    reason[has_patients & (fte < 0)] = "negative GP FTE reported"
    above, below = has_patients & (per_fte > high), has_patients & (per_fte < low)
    reason[above] = [
        f"{r:,.0f} patients per GP FTE, above the national 99.5th percentile ({high:,.0f})"
        for r in per_fte[above]
    ]
    reason[below] = [
        f"{r:,.0f} patients per GP FTE, below the national 0.5th percentile ({low:,.0f})"
        for r in per_fte[below]
    ]
    plausible = (reason == "") & fte.notna()
    trusted = plausible & has_patients
    area_per_fte = patients[trusted].sum() / fte[trusted].sum() if trusted.any() else np.nan
    estimate = (patients / area_per_fte).where(reason != "")
    practices["estimated_gp_fte"] = estimate
    practices["gp_fte"] = fte.where(plausible, estimate)
    practices["gp_fte_status"] = np.where(
        plausible, "reported", np.where(practices["gp_fte"].notna(), "estimated", "unknown")
    )
    reason[~has_patients & fte.isna()] = "no GP FTE or list size"
    practices["reason"] = reason
    return practices


def gp_fte_note(checked: pd.DataFrame) -> str:
    """One line on how many practices' GP FTE was estimated, and why."""
    estimated = checked[checked["gp_fte_status"] == "estimated"]
    missing = int(estimated["reported_gp_fte"].isna().sum())
    implausible = len(estimated) - missing
    low, high = PLAUSIBLE_PATIENTS_PER_GP_FTE
    parts = [f"{missing} not reported"] if missing else []
    if implausible:
        parts.append(
            f"{implausible} implausible (0, or outside {low:,.0f}-{high:,.0f} patients per GP FTE, "
            "the national 0.5th-99.5th percentiles)"
        )
    unknown = int((checked["gp_fte_status"] == "unknown").sum())
    note = f" ({len(estimated)} practices' FTE estimated from list size: {'; '.join(parts)})" if parts else ""
    return note + (f" ({unknown} practices with no FTE or list size count as no supply)" if unknown else "")


def gp_supply(store: Store) -> tuple[pd.Series, str]:
    """GP supply per practice: GP FTE from ``practice_gp_fte`` (implausible or missing figures
    estimated from list size); registered patients if no practice has a plausible FTE figure."""
    checked = practice_gp_fte(store)
    if (checked["gp_fte_status"] == "reported").any():
        return pd.Series(
            checked["gp_fte"].fillna(0).to_numpy(), index=checked["practice_code"]
        ), "GP FTE" + gp_fte_note(checked)
    return pd.Series(
        checked["patients"].fillna(0).to_numpy(float), index=checked["practice_code"]
    ), "registered patients (no plausible GP FTE imported)"


def estimated_gp_fte(store: Store) -> pd.DataFrame:
    """The practices whose GP FTE was not used as reported (estimated or unknown), for listing."""
    checked = practice_gp_fte(store)
    return checked[checked["gp_fte_status"] != "reported"].reset_index(drop=True)


def _supply(store: Store, kind: str) -> tuple[pd.Series, str]:
    if kind == "gp":
        return gp_supply(store)
    codes = store.df("SELECT code FROM sites WHERE kind = ?", [kind])["code"]
    return pd.Series(1.0, index=codes.to_numpy()), "one per site"


@dataclass
class AccessResult:
    profile: str
    mode: str
    kind: str
    lsoas: int
    threshold_minutes: float
    catchment: Catchment
    supply_measure: str
    # GP practices whose FTE was not used as reported (see practice_gp_fte); None for other kinds.
    estimated_fte: pd.DataFrame | None = None


def compute_access(
    store: Store,
    profile: str,
    *,
    mode: str | None = None,
    kinds: tuple[str, ...] = SERVICE_KINDS,
    threshold_minutes: float | None = None,
    catchment: Catchment | None = None,
) -> list[AccessResult]:
    """Access measures per LSOA for each kind of service, from stored travel times; stored in ``access``.

    ``mode`` chooses between a network run and a crow-fly run of the same ``profile`` (default: the
    network run if there is one). Demand is population; ``e2sfca_need`` uses need-weighted population.
    """

    runs = store.df("SELECT * FROM travel_runs WHERE profile = ?", [profile])
    if runs.empty:
        raise StoreError(
            f"no {profile} travel times in {store.path}; run `nearcare travel-times --mode {profile}` first"
        )
    if mode is None:
        mode = profile if (runs["mode"] == profile).any() else "crowfly"
    threshold = threshold_minutes or DEFAULT_THRESHOLD_MINUTES[profile]
    catchment = catchment or Catchment(threshold)
    population = store.df("SELECT lsoa21_code, population FROM small_areas").set_index("lsoa21_code")[
        "population"
    ]
    need = need_weighted_population(store)["need_weighted_population"]
    results, frames = [], []
    for kind in kinds:
        run = runs[(runs["destination_kind"] == kind) & (runs["mode"] == mode)]
        if run.empty:
            continue
        reach = float(run["max_minutes"].iloc[0])
        if reach < max(threshold, catchment.max_minutes):
            raise InputError(
                f"{profile} travel times to {kind} stop at {reach:g} minutes, shorter than the "
                f"{max(threshold, catchment.max_minutes):g}-minute catchment; rerun travel-times with a "
                "larger --max-minutes"
            )
        pairs = store.df(
            "SELECT origin_id, destination_id, minutes, distance_m FROM travel_times "
            "WHERE profile = ? AND destination_kind = ? AND mode = ?",
            [profile, kind, mode],
        )
        nearest = store.df(
            "SELECT origin_id, minutes FROM nearest_services WHERE profile = ? AND destination_kind = ? "
            "AND mode = ?",
            [profile, kind, mode],
        ).set_index("origin_id")["minutes"]
        origins = nearest.index
        supply, supply_note = _supply(store, kind)
        within = pairs[pairs["minutes"] <= threshold].groupby("origin_id").size()
        frame = pd.DataFrame({"lsoa21_code": origins})
        frame["kind"], frame["profile"], frame["mode"] = kind, profile, mode
        frame["threshold_minutes"] = threshold
        frame["nearest_minutes"] = nearest.to_numpy()
        frame["services_within"] = within.reindex(origins, fill_value=0).to_numpy()
        frame["e2sfca"] = (
            PER_PEOPLE * e2sfca(pairs, population.reindex(origins), supply, catchment).to_numpy()
        )
        frame["e2sfca_need"] = PER_PEOPLE * e2sfca(pairs, need.reindex(origins), supply, catchment).to_numpy()
        frame["supply_measure"] = supply_note
        frame["catchment"] = catchment.describe()
        frames.append(frame)
        results.append(
            AccessResult(
                profile,
                mode,
                kind,
                len(frame),
                threshold,
                catchment,
                supply_note,
                estimated_gp_fte(store) if kind == "gp" else None,
            )
        )
    if not frames:
        raise StoreError(f"no {profile} ({mode}) travel times to {', '.join(kinds)}")
    table = pd.concat(frames, ignore_index=True)
    with store.transaction() as con:
        con.execute(
            f"DELETE FROM access WHERE profile = ? AND mode = ? AND kind IN ({', '.join('?' * len(kinds))})",
            [profile, mode, *kinds],
        )
        store.insert("access", table)
    return results


def pharmacies_within_distance(store: Store, distance_m: float = PHARMACY_DISTANCE_M) -> pd.Series:
    """Pharmacies within ``distance_m`` of each LSOA's population-weighted centroid, in a straight line."""
    from scipy.spatial import cKDTree

    areas = store.df(
        "SELECT lsoa21_code, centroid_easting AS x, centroid_northing AS y FROM small_areas "
        "WHERE centroid_easting IS NOT NULL"
    )
    sites = store.df(
        "SELECT easting AS x, northing AS y FROM sites WHERE kind = 'pharmacy' AND easting IS NOT NULL"
    )
    if sites.empty:
        return pd.Series(0, index=areas["lsoa21_code"])
    counts = cKDTree(sites[["x", "y"]].to_numpy()).query_ball_point(
        areas[["x", "y"]].to_numpy(), distance_m, return_length=True
    )
    return pd.Series(counts, index=areas["lsoa21_code"].to_numpy())
