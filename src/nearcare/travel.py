"""Travel times for a built area: LSOA centroids to the services in ``sites``, stored.

The searches themselves (snapping, pairs within a cutoff, nearest service, crow-fly estimates) are
store-free and live in ``nearcare.network.search``; this module picks the origins and sites of the
built area, runs them and writes ``travel_times``, ``nearest_services``, ``unsnapped`` and
``travel_runs``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd

from nearcare import distributed
from nearcare._errors import InputError, StoreError

# CROWFLY_SPEED_KPH and DETOUR_FACTOR re-exported: tests/test_scenarios.py reads them here
from nearcare.network import DETOUR_FACTOR as DETOUR_FACTOR
from nearcare.network import MODES, load_network
from nearcare.network import partition as partitions
from nearcare.network.search import CROWFLY_SPEED_KPH as CROWFLY_SPEED_KPH
from nearcare.network.search import (
    MAX_SNAP_M,
    Points,
    crowfly_nearest,
    crowfly_pairs,
    nearest,
    pairs_within,
    snap,
)
from nearcare.store import ORGANISATION_KINDS, Store


def _partitioned(store: Store, network, origins, sites, max_minutes: float, scheduler) -> pd.DataFrame:
    """``pairs_within`` run per local authority of the origins, as tasks on the Dask ``scheduler``."""
    lad = store.df("SELECT lsoa21_code, lad_code FROM small_areas").set_index("lsoa21_code")["lad_code"]
    labels = lad.reindex(origins.ids).fillna("unknown").astype(str).to_numpy(object)
    jobs = partitions.tasks(network, origins, sites, labels, max_minutes)
    return partitions.merge(distributed.run(partitions.run_task, jobs, scheduler=scheduler))


@dataclass
class TravelResult:
    profile: str
    mode: str
    kinds: list[str]
    pairs: int
    origins: int
    unsnapped_origins: int
    unsnapped_destinations: int


def origins_from_store(store: Store, lsoas: list[str] | None = None) -> Points:
    """LSOA population-weighted centroids of the built area (optionally only ``lsoas``)."""
    store.require("small_areas", "run `nearcare build --area CODE` first")
    frame = store.df(
        "SELECT lsoa21_code, centroid_easting AS easting, centroid_northing AS northing FROM small_areas"
    )
    if lsoas is not None:
        unknown = sorted(set(lsoas) - set(frame["lsoa21_code"]))
        if unknown:
            raise InputError(f"{len(unknown)} LSOAs are not in the built area", value=unknown[0])
        frame = frame[frame["lsoa21_code"].isin(lsoas)]
    return Points.from_frame(frame, "lsoa21_code")


def compute_travel_times(
    store: Store,
    profile: str,
    kinds: list[str],
    *,
    max_minutes: float,
    lsoas: list[str] | None = None,
    max_snap_m: float = MAX_SNAP_M,
    crowfly: bool | None = None,
    workers: int | None = None,
    scheduler: object | None = None,
) -> list[TravelResult]:
    """Compute and store travel times from the area's LSOAs to each kind of site (``workers``: processes
    for the network search; None, every core). With ``scheduler`` (a dask.distributed address or
    client) the network search runs per local authority as Dask tasks (nearcare.network.partition:
    the same pairs).

    Uses the stored ``profile`` network when there is one; otherwise (or with ``crowfly=True``)
    straight-line estimates labelled ``crowfly``. Replaces earlier results for the same profile
    kind and mode (network or crowfly) in one transaction, so a crow-fly run over a whole area and a
    network run over part of it can stand side by side.
    """
    if profile not in MODES:
        raise InputError(f"mode must be one of {', '.join(MODES)}, not {profile!r}")
    bad = [k for k in kinds if k not in ORGANISATION_KINDS]
    if bad:
        raise InputError(f"unknown service kind {bad[0]!r}; use {', '.join(ORGANISATION_KINDS)} or all")
    if not max_minutes or max_minutes <= 0:
        raise InputError("--max-minutes must be positive", value=max_minutes)
    origins = origins_from_store(store, lsoas)
    has_network = bool(store.scalar("SELECT count(*) FROM networks WHERE mode = ?", [profile]))
    use_crowfly = (not has_network) if crowfly is None else crowfly
    network = None if use_crowfly else load_network(store, profile)
    mode = "crowfly" if use_crowfly else profile
    snapped_origins = (
        None if network is None else snap(network, origins, side="origin", max_snap_m=max_snap_m)
    )
    results, pair_frames, nearest_frames, runs, unsnapped = [], [], [], [], []
    for kind in kinds:
        sites = Points.from_frame(
            store.df("SELECT code, easting, northing FROM sites WHERE kind = ?", [kind]), "code"
        )
        if len(sites) == 0:
            continue
        if network is None:
            pairs = crowfly_pairs(origins, sites, profile, max_minutes)
            near = crowfly_nearest(origins, sites, profile)
            lost_o, lost_d = (
                pd.DataFrame(columns=["point_id", "snap_m"]),
                pd.DataFrame(columns=["point_id", "snap_m"]),
            )
        else:
            assert snapped_origins is not None  # snapped above whenever there is a network
            snapped_sites = snap(network, sites, side="destination", max_snap_m=max_snap_m)
            lost_o, lost_d = snapped_origins.unsnapped, snapped_sites.unsnapped
            if scheduler is None:
                pairs = pairs_within(network, snapped_origins, snapped_sites, max_minutes, workers=workers)
            else:
                pairs = _partitioned(store, network, snapped_origins, snapped_sites, max_minutes, scheduler)
            near = nearest(network, snapped_origins, snapped_sites, workers=workers)
        pair_frames.append(pairs.assign(destination_kind=kind, profile=profile, mode=mode))
        nearest_frames.append(near.assign(destination_kind=kind, profile=profile, mode=mode))
        unsnapped += [lost_o.assign(point_kind="lsoa"), lost_d.assign(point_kind=kind)]
        runs.append(
            {
                "profile": profile,
                "destination_kind": kind,
                "mode": mode,
                "max_minutes": max_minutes,
                "origins": len(origins),
                "destinations": len(sites),
                "unsnapped_origins": len(lost_o),
                "unsnapped_destinations": len(lost_d),
                "max_snap_m": None if network is None else max_snap_m,
                "run_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
            }
        )
        results.append(
            TravelResult(profile, mode, [kind], len(pairs), len(origins), len(lost_o), len(lost_d))
        )
    if not runs:
        raise StoreError(f"no located sites of kind {', '.join(kinds)} in the built area")
    with store.transaction() as con:
        for run in runs:
            for table in ("travel_times", "nearest_services", "travel_runs"):
                con.execute(
                    f"DELETE FROM {table} WHERE profile = ? AND destination_kind = ? AND mode = ?",
                    [run["profile"], run["destination_kind"], mode],
                )
            con.execute(
                "DELETE FROM unsnapped WHERE profile = ? AND mode = ? AND point_kind IN ('lsoa', ?)",
                [run["profile"], mode, run["destination_kind"]],
            )
        store.insert("travel_runs", pd.DataFrame(runs))
        store.insert("travel_times", pd.concat(pair_frames, ignore_index=True))
        store.insert("nearest_services", pd.concat(nearest_frames, ignore_index=True))
        lost = pd.concat(unsnapped, ignore_index=True).drop_duplicates(["point_kind", "point_id"])
        if len(lost):
            store.insert("unsnapped", lost.assign(profile=profile, mode=mode))
    return results
