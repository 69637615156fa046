"""Patient flows: how many of each LSOA's registered patients are registered with each GP practice.

With the LSOA-level registration file imported, the flows are the real counts (its latest
extract). Otherwise they are *modelled* with a Huff choice model: an LSOA's registered people
choose among the practices within reach (the stored drive pairs) with probability proportional to
size^alpha x exp(-beta x minutes) (size = list size), calibrated by grid search to reproduce the
practices' real list sizes; its fit is reported (``ChoiceModel.describe``). Because list sizes
alone cannot identify the distance decay (a flat decay reproduces them trivially), beta is
searched only among plausible values (attraction halving within 0.7 to 3.5 minutes' drive). The
model is calibrated either way: with real registrations, it places the patients of an LSOA that
has none at the practices left in its reach when a practice closes (``where_patients_go``).

``patient_flows(store)`` reads what it needs from the store; ``flows_from`` is the store-free
kernel. Scenarios, neighbourhoods and the web app all take their flows from here.

Where patients go when practices close or merge (``where_patients_go``): a closed practice's
patients move, LSOA by LSOA, to the practices left in reach, in proportion to the LSOA's existing
registrations there (real flows) or by the choice model; those who cannot be placed are unplaced,
with the reason, never lost and never kept at a closed site: patients before = patients after +
unplaced. Patients of a merging practice follow it to the practice it finally joins.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from nearcare._errors import StoreError
from nearcare.store import Store

ALPHAS = (0.5, 1.0)
# List sizes alone cannot pin the distance decay down: with attraction following size, a flat decay
# reproduces them trivially while sending people implausibly far. So beta (per minute) is searched
# only where attraction halves within 0.7 to 3.5 minutes' drive.
BETAS = (0.2, 0.3, 0.5, 0.75, 1.0)


@dataclass
class ChoiceModel:
    alpha: float
    beta: float
    r_squared: float
    mean_abs_pct_error: float
    modelled: bool

    def describe(self) -> str:
        huff = (
            f"Huff model, size^{self.alpha:g} x exp(-{self.beta:g} x minutes), calibrated to list sizes "
            f"with the decay held to plausible values: R^2 {self.r_squared:.2f}, mean absolute error "
            f"{self.mean_abs_pct_error:.0f}% per practice"
        )
        if not self.modelled:
            return (
                "real registrations by LSOA (NHS file); where an LSOA has none at the practices left in its reach, "
                f"modelled ({huff})"
            )
        return f"modelled ({huff})"


def choice_probabilities(pairs: pd.DataFrame, size: pd.Series, alpha: float, beta: float) -> pd.Series:
    """P(LSOA i registers with practice j) over the pairs given (origin_id, destination_id, minutes)."""
    return pd.Series(_ChoiceSet(pairs).probabilities(size, alpha, beta), index=pairs.index)


class _ChoiceSet:
    """Pairs with their LSOAs and practices as integer codes, factorised once.

    Grouping by string codes costs a hash of every row per call; calibration tries every (alpha,
    beta) on the same pairs and a closure's choice set is grouped several times, so the codes are
    computed once and each sum is a ``bincount``.
    """

    def __init__(self, pairs: pd.DataFrame):
        self.origin, self.origins = pd.factorize(pairs["origin_id"].to_numpy())
        self.destination, self.destinations = pd.factorize(pairs["destination_id"].to_numpy())
        self.minutes = pairs["minutes"].to_numpy(float)

    def by_origin(self, values: np.ndarray) -> np.ndarray:
        """Sum of ``values`` per origin, in ``self.origins`` order."""
        return np.bincount(self.origin, weights=values, minlength=len(self.origins))

    def by_destination(self, values: np.ndarray) -> np.ndarray:
        """Sum of ``values`` per destination, in ``self.destinations`` order."""
        return np.bincount(self.destination, weights=values, minlength=len(self.destinations))

    def probabilities(self, size: pd.Series, alpha: float, beta: float) -> np.ndarray:
        attraction = size.reindex(self.destinations).to_numpy(float) ** alpha
        utility = attraction[self.destination] * np.exp(-beta * self.minutes)
        utility = np.where(np.isfinite(utility), utility, 0.0)
        totals = self.by_origin(utility)[self.origin]
        return np.divide(utility, totals, out=np.zeros_like(utility), where=totals > 0)


def calibrate(pairs: pd.DataFrame, registered: pd.Series, lists: pd.Series) -> tuple[ChoiceModel, pd.Series]:
    """Grid-search alpha and beta so that modelled list sizes match the real ones; return flows."""
    choice = _ChoiceSet(pairs)
    people = registered.reindex(choice.origins).to_numpy(float)[choice.origin]
    best = None
    for alpha in ALPHAS:
        for beta in BETAS:
            flows = people * choice.probabilities(lists, alpha, beta)
            modelled = (
                pd.Series(choice.by_destination(np.nan_to_num(flows)), index=choice.destinations)
                .reindex(lists.index, fill_value=0)
                .astype(float)
            )
            error = float(((modelled - lists) ** 2).sum())
            if best is None or error < best[0]:
                best = (error, alpha, beta, modelled, flows)
    assert best is not None  # ALPHAS and BETAS are not empty
    error, alpha, beta, modelled, flows = best
    spread = float(((lists - lists.mean()) ** 2).sum())
    r2 = 1 - error / spread if len(lists) > 1 and spread > 0 else np.nan  # lists all alike: no R2
    mape = float((np.abs(modelled - lists) / lists.where(lists > 0)).mean() * 100)
    return ChoiceModel(alpha, beta, r2, mape, True), pd.Series(flows, index=pairs.index)


def flows_from(
    drive_pairs: pd.DataFrame,
    population: pd.Series,
    list_sizes: pd.Series,
    registrations: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, ChoiceModel]:
    """Patients per (LSOA, practice) pair within reach, real where registrations are given, else modelled.

    ``drive_pairs``: origin_id (LSOA), destination_id (practice), minutes; ``population`` by LSOA;
    ``list_sizes`` (registered patients) by practice; ``registrations``: origin_id, destination_id,
    patients. Returns the pairs with ``patients`` (real or modelled) and ``listed`` (patients scaled
    so that each practice's flows add up to its real list), and the calibrated choice model.
    """
    lists = list_sizes.dropna().astype(float)
    # The distinct codes first: Index.isin against every pair hashes millions of strings (England).
    lists = lists[lists.index.isin(drive_pairs["destination_id"].unique())]
    # Registered people per LSOA: population scaled so the totals match the practices' lists.
    registered = population * (lists.sum() / population.sum())
    model, flow = calibrate(drive_pairs, registered, lists)
    if registrations is not None and len(registrations):
        flows = drive_pairs.merge(registrations, on=["origin_id", "destination_id"], how="left").fillna(
            {"patients": 0.0}
        )
        model = ChoiceModel(
            model.alpha, model.beta, model.r_squared, model.mean_abs_pct_error, modelled=False
        )
    else:
        flows = drive_pairs.assign(patients=flow.to_numpy())
    # Each practice's real list, spread over its LSOAs as the flows spread it.
    totals = flows.groupby("destination_id")["patients"].transform("sum").to_numpy()
    whole_lists = list_sizes.reindex(flows["destination_id"]).fillna(0).to_numpy(float)
    flows["listed"] = np.divide(
        flows["patients"].to_numpy() * whole_lists, totals, out=np.zeros(len(flows)), where=totals > 0
    )
    return flows, model


def latest_registrations(store: Store) -> pd.DataFrame:
    """Patients per (LSOA, practice) in the latest imported LSOA-level registration extract."""
    return store.df(
        "SELECT practice_code AS destination_id, lsoa_code AS origin_id, sum(patients) AS patients "
        "FROM gp_registrations_lsoa WHERE extract_date = (SELECT max(extract_date) FROM "
        "gp_registrations_lsoa) GROUP BY ALL"
    )


def default_mode(runs: pd.DataFrame) -> str:
    """Crow-fly where a crow-fly run exists (the whole area), else the network runs."""
    return "crowfly" if (runs["mode"] == "crowfly").any() else "drive"


def patient_flows(store: Store, *, mode: str | None = None) -> tuple[pd.DataFrame, ChoiceModel]:
    """Patients per (LSOA, practice) over the stored drive times to GP practices (``flows_from``).

    ``mode``: crowfly or the network run (default: crowfly where there is a crow-fly run).
    """
    runs = store.df("SELECT * FROM travel_runs")
    if runs.empty:
        raise StoreError("no travel times: run `nearcare travel-times` for drive (and walk) first")
    mode = mode or default_mode(runs)
    run_mode = "crowfly" if mode == "crowfly" else "drive"
    run = runs[(runs["profile"] == "drive") & (runs["destination_kind"] == "gp") & (runs["mode"] == run_mode)]
    if run.empty:
        raise StoreError(
            f"no drive travel times to GP practices ({mode}); run `nearcare travel-times --mode drive`"
        )
    drive = store.df(
        "SELECT origin_id, destination_id, minutes, distance_m FROM travel_times WHERE profile = 'drive' "
        "AND destination_kind = 'gp' AND mode = ?",
        [run_mode],
    )
    origins = store.df(
        "SELECT origin_id FROM nearest_services WHERE profile = 'drive' AND destination_kind = 'gp' AND mode = ?",
        [run_mode],
    )["origin_id"]
    population = store.df("SELECT lsoa21_code, population FROM small_areas").set_index("lsoa21_code")[
        "population"
    ]
    population = population.loc[population.index.intersection(pd.Index(origins))]
    lists = store.df("SELECT practice_code, patients FROM practices").set_index("practice_code")["patients"]
    return flows_from(drive, population, lists, latest_registrations(store))


def _practice_of(sites: pd.Series, targets: dict[str, str]) -> np.ndarray:
    """The practice each site's patients belong to once mergers are done."""
    return (sites.replace(targets) if targets else sites).to_numpy()


class NewPractice(Protocol):
    """A new GP site: its code and capacity (``list_size`` and/or ``gp_fte``)."""

    @property
    def code(self) -> str: ...
    @property
    def list_size(self) -> float | None: ...
    @property
    def gp_fte(self) -> float | None: ...


def where_patients_go(
    flows: pd.DataFrame,
    model: ChoiceModel,
    practices: pd.DataFrame,
    *,
    closed: Iterable[str],
    merge_targets: dict[str, str],
    new_practices: Sequence[NewPractice] = (),
    new_site_pairs: pd.DataFrame | None = None,
    closed_sites: set[str],
    mode: str,
    reach_minutes: float,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per practice: patients before, merged in (+) or out (-), lost, gained, after; and the unplaced, by reason.

    A merging practice's patients stay with the practice it finally merges into (chains followed).
    A closed practice's patients choose, LSOA by LSOA, among the sites left within reach and any new
    GP site (by the choice model; with real registrations, in proportion to the LSOA's existing
    registrations there, or by the calibrated choice model where it has none there); a new GP site
    also draws its modelled share of everyone else in the LSOAs it reaches. Whoever goes to a site joins the practice that site belongs to. Patients of a closed
    practice with no flows (not geocoded, or no travel times in this mode), or with no site left in
    reach, are unplaced, with the reason. Each practice: after = before + merged - lost + gained.

    ``flows`` and ``model`` come from ``flows_from``; ``practices`` (by practice code) has patients,
    gp_fte, gp_fte_status and located; ``closed`` lists the closing site codes, ``closed_sites`` every
    site that closes (merged practices' sites included); ``merge_targets`` maps a merging practice to
    the one it finally joins; ``new_site_pairs`` (profile, kind, origin_id, destination_id, minutes)
    holds the new sites' travel times; ``reach_minutes`` is the stored drive cutoff, named in reasons.
    """
    targets = merge_targets
    before = practices["patients"].fillna(0.0).astype(float)
    new_gp = list(new_practices)
    codes = before.index.append(pd.Index([s.code for s in new_gp])).unique()
    merged = pd.Series(0.0, index=codes)
    for source, target in targets.items():
        merged[source] -= before.get(source, 0.0)
        merged[target] += before.get(source, 0.0)
    closing = [c for c in dict.fromkeys(closed) if c in before.index]
    lost, gained = pd.Series(0.0, index=codes), pd.Series(0.0, index=codes)
    lost[closing] = before[closing]
    unplaced = []
    displaced = flows[flows["destination_id"].isin(closing) & (flows["listed"] > 0)]
    for code in sorted(set(closing) - set(displaced["destination_id"])):
        if before[code] > 0:
            reason = (
                "not geocoded, so where its patients live is unknown"
                if not practices.at[code, "located"]
                else f"no {mode} travel times from any LSOA to it (off the network, or beyond reach)"
            )
            unplaced.append((code, reason, float(before[code])))
    new_pairs = pd.DataFrame(columns=["origin_id", "destination_id", "minutes"])
    if (
        new_gp and new_site_pairs is not None and model.modelled
    ):  # real registrations say nothing of a new site's draw
        new_pairs = new_site_pairs.loc[
            (new_site_pairs["profile"] == "drive") & (new_site_pairs["kind"] == "gp"),
            ["origin_id", "destination_id", "minutes"],
        ]
    origins = pd.Index(displaced["origin_id"].unique())
    if len(new_pairs):  # (an empty union would turn integer codes into objects)
        origins = origins.union(pd.Index(new_pairs["origin_id"].unique()))
    if len(origins):
        choice = flows.loc[
            flows["origin_id"].isin(origins) & ~flows["destination_id"].isin(closed_sites),
            ["origin_id", "destination_id", "minutes", "patients"],
        ]
        if len(new_pairs):
            choice = pd.concat([choice, new_pairs.assign(patients=0.0)], ignore_index=True)
        origin_of = choice["origin_id"].to_numpy()
        choices = _ChoiceSet(choice)
        if model.modelled:
            size = before.where(before > 0)  # a site draws by its current list, a new one by its capacity
            fte = practices["gp_fte"]
            per_fte = before[fte.notna()].sum() / fte.sum()
            for site in new_gp:
                size[site.code] = (
                    site.list_size if site.list_size is not None else (site.gp_fte or 0) * per_fte
                )
            p = choices.probabilities(size, model.alpha, model.beta)
        else:
            weights = choice["patients"].to_numpy(float)
            totals = choices.by_origin(weights)[choices.origin]
            p = np.divide(weights, totals, out=np.zeros_like(weights), where=totals > 0)
            # An LSOA with no registrations at the practices left in its reach: the calibrated model.
            unregistered = totals <= 0
            if unregistered.any():
                p[unregistered] = choice_probabilities(
                    choice[unregistered], before.where(before > 0), model.alpha, model.beta
                ).to_numpy()
        leaving = displaced.groupby("origin_id")["listed"].sum()
        moving = leaving.reindex(choices.origins).fillna(0).to_numpy()[choices.origin] * p
        # Whoever goes to a site joins its practice: the sites' practices, then the sums by practice.
        site_practice, practices_taking = pd.factorize(_practice_of(pd.Series(choices.destinations), targets))
        gained = gained.add(
            pd.Series(
                np.bincount(site_practice[choices.destination], moving, len(practices_taking)),
                index=practices_taking,
            ),
            fill_value=0,
        )
        # 1, or 0 where no site is left in reach
        placed_share = pd.Series(choices.by_origin(p), index=choices.origins)
        stranded = displaced["listed"].to_numpy() * (
            1 - placed_share.reindex(displaced["origin_id"]).fillna(0).to_numpy()
        )
        # Nowhere left in reach, or sites left that draw nobody (no list size and no capacity given).
        in_reach = displaced["origin_id"].isin(choices.origins).to_numpy()
        reasons = np.where(
            in_reach,
            "the practices left within reach have no list size or capacity to draw patients",
            f"no practice left within {reach_minutes:g} minutes' drive of where they live (the stored reach)",
        )
        stranded_by = pd.Series(stranded).groupby([displaced["destination_id"].to_numpy(), reasons]).sum()
        for (code, reason), patients in stranded_by.items():
            if patients > 1e-9:
                unplaced.append((code, reason, float(patients)))
        if len(new_pairs):
            to_new = choice["destination_id"].isin([s.code for s in new_gp]).to_numpy()
            share_new = pd.Series(p[to_new]).groupby(origin_of[to_new]).sum()
            stay = flows[
                flows["origin_id"].isin(share_new.index)
                & ~flows["destination_id"].isin(closing)
                & (flows["listed"] > 0)
            ]
            drawn = stay["listed"].to_numpy() * share_new.reindex(stay["origin_id"]).to_numpy()
            stay_practice = _practice_of(stay["destination_id"], targets)
            lost = lost.add(pd.Series(drawn).groupby(stay_practice).sum(), fill_value=0)
            staying = stay.groupby("origin_id")["listed"].sum()
            gained = gained.add(
                pd.Series(staying.reindex(origin_of[to_new]).fillna(0).to_numpy() * p[to_new])
                .groupby(choice["destination_id"].to_numpy()[to_new])
                .sum(),
                fill_value=0,
            )
    unplaced = pd.DataFrame(unplaced, columns=["practice_code", "reason", "patients"])
    codes = codes.union(gained.index).union(lost.index)
    table = pd.DataFrame(
        {
            "patients_before": before.reindex(codes).fillna(0),
            "merged_patients": merged.reindex(codes).fillna(0),
            "patients_lost": lost.reindex(codes).fillna(0),
            "patients_gained": gained.reindex(codes).fillna(0),
        }
    )
    table["patients_unplaced"] = unplaced.groupby("practice_code")["patients"].sum().reindex(codes).fillna(0)
    table["patients_after"] = (
        table["patients_before"]
        + table["merged_patients"]
        - table["patients_lost"]
        + table["patients_gained"]
    )
    table["added_patients"] = table["patients_after"] - table["patients_before"]
    fte_before = practices["gp_fte"].reindex(codes)
    estimated = (practices["gp_fte_status"] == "estimated").reindex(codes, fill_value=False)
    fte = fte_before.copy()
    for site in new_gp:
        fte[site.code] = site.gp_fte if site.gp_fte is not None else np.nan
    for source, target in targets.items():
        if pd.notna(fte.get(source)):
            fte[target] = fte[target] + fte[source]
            estimated[target] = estimated[target] or estimated[source]
        fte[source] = np.nan
    table["gp_fte_before"], table["gp_fte_after"] = fte_before, fte
    # The FTE behind the per-FTE figures was estimated from list size (reported 0, missing or implausible).
    table["gp_fte_estimated"] = estimated
    table["per_gp_fte_before"] = table["patients_before"] / fte_before
    table["per_gp_fte_after"] = table["patients_after"] / fte
    table.loc[table.index.isin(closed_sites | set(targets)), "per_gp_fte_after"] = np.nan
    return table.rename_axis("practice_code").reset_index(), unplaced
