"""Scenarios: close practices or other sites, merge practices, open new sites; compare before and after.

A scenario file (TOML)::

    name = "Close Empingham Medical Centre"
    close = ["C82044"]                  # any site codes: practices, pharmacies, dentists, opticians
    [[merge]]                           # practice A joins practice B
    from = "C82649"
    into = "C82010"
    keep_site = true                    # A's site stays as a branch of B (false: it closes)
    [[open]]                            # a new site
    code = "NEW01"
    name = "Oakham hub"
    kind = "gp"
    postcode = "LE15 6NT"               # or lat = ..., lon = ...
    gp_fte = 6.0                        # capacity: gp_fte and/or list_size

Where patients go. With the LSOA-level registration file imported, the real counts of patients
per LSOA per practice are used. Otherwise they are *modelled* with a Huff choice model: an LSOA's
registered people choose among the practices within reach with probability proportional to
size^alpha x exp(-beta x minutes) (size = list size), calibrated by grid search to reproduce the
practices' real list sizes; its fit is reported, and every figure resting on it is labelled
modelled. Because list sizes alone cannot identify the distance decay (a flat decay reproduces
them trivially), beta is searched only among plausible values (attraction halving within 0.7 to
3.5 minutes' drive). Patients of a closed practice move, LSOA by LSOA, to the remaining practices by the
same model; those with no practice in reach are counted as unplaced, never lost.

Access change. Minutes to the nearest site before come from the stored nearest-service search;
after, from the stored pairs within the run's cutoff (so a closure is re-evaluated in well under a
second); an LSOA whose remaining sites are all beyond the cutoff is reported as beyond it.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from nearcare._errors import InputError, StoreError
from nearcare.access import DEFAULT_THRESHOLD_MINUTES
from nearcare.geo import in_england_box, normalise_postcode, to_bng
from nearcare.store import ORGANISATION_KINDS, Store

ALPHAS = (0.5, 1.0)
# List sizes alone cannot pin the distance decay down: with attraction following size, a flat decay
# reproduces them trivially while sending people implausibly far. So beta (per minute) is searched
# only where attraction halves within 0.7 to 3.5 minutes' drive.
BETAS = (0.2, 0.3, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class Merge:
    from_code: str
    into_code: str
    keep_site: bool = True


@dataclass(frozen=True)
class NewSite:
    code: str
    name: str
    kind: str
    easting: float
    northing: float
    gp_fte: float | None = None
    list_size: float | None = None


@dataclass
class Scenario:
    name: str
    close: list[str] = field(default_factory=list)
    merges: list[Merge] = field(default_factory=list)
    open: list[NewSite] = field(default_factory=list)

    @property
    def closed_sites(self) -> set[str]:
        return set(self.close) | {m.from_code for m in self.merges if not m.keep_site}


def _need(table: dict, key: str, where: str, kind: type):
    if key not in table:
        raise InputError(f"missing {key!r}", path=where)
    value = table[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind):
        raise InputError(f"{key!r} must be {kind.__name__}", path=where, value=value)
    return value


def load_scenario(path: str | Path, store: Store) -> Scenario:
    """Read and validate a scenario file against the store (see the module notes for the format)."""
    path = Path(path)
    if not path.exists():
        raise InputError("no such file", path=path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"not a valid TOML file ({exc})", path=path) from None
    known = {"name", "close", "merge", "open"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise InputError(f"unknown key {unknown[0]!r}; a scenario has {', '.join(sorted(known))}", path=path)
    close = data.get("close", [])
    if not isinstance(close, list) or not all(isinstance(c, str) for c in close):
        raise InputError("'close' must be a list of site codes", path=path)
    merges = [Merge(_need(m, "from", f"{path} [[merge]] {i + 1}", str), _need(m, "into", f"{path} [[merge]] {i + 1}", str),
                    bool(m.get("keep_site", True))) for i, m in enumerate(data.get("merge", []))]
    opened = []
    for i, o in enumerate(data.get("open", [])):
        where = f"{path} [[open]] {i + 1}"
        easting, northing = _locate(store, o, where)
        opened.append(NewSite(_need(o, "code", where, str), str(o.get("name", o["code"])), _need(o, "kind", where, str),
                              easting, northing, _optional_number(o, "gp_fte", where), _optional_number(o, "list_size", where)))
    scenario = Scenario(str(data.get("name", path.stem)), list(close), merges, opened)
    check_scenario(store, scenario, where=str(path))
    return scenario


def _optional_number(table: dict, key: str, where: str) -> float | None:
    if key not in table:
        return None
    value = _need(table, key, where, float)
    if value < 0:
        raise InputError(f"{key!r} cannot be negative", path=where, value=value)
    return value


def _locate(store: Store, table: dict, where: str) -> tuple[float, float]:
    if "postcode" in table:
        postcode = normalise_postcode(str(table["postcode"]))
        row = store.df("SELECT easting, northing FROM postcodes WHERE postcode = ?", [postcode])
        if row.empty:
            raise InputError("postcode not in the imported postcode file", path=where, value=postcode)
        return float(row["easting"].iloc[0]), float(row["northing"].iloc[0])
    if "lat" in table and "lon" in table:
        lat, lon = _need(table, "lat", where, float), _need(table, "lon", where, float)
        if not in_england_box(lon, lat):
            raise InputError("coordinates are not in England", path=where, value=f"{lat}, {lon}")
        e, n = to_bng(np.array([lon]), np.array([lat]))
        return float(e[0]), float(n[0])
    raise InputError("a new site needs a postcode, or lat and lon", path=where)


def check_scenario(store: Store, scenario: Scenario, *, where: str = "scenario") -> None:
    """Refuse codes that are not sites of the area, impossible merges and closing every practice."""
    sites = store.df("SELECT code, kind FROM sites").set_index("code")["kind"]
    for code in scenario.close:
        if code not in sites.index:
            raise InputError("unknown site code (not an active site of the built area)", path=where, value=code)
    for merge in scenario.merges:
        for code in (merge.from_code, merge.into_code):
            if sites.get(code) != "gp":
                raise InputError("a merge joins two GP practices of the area", path=where, value=code)
        if merge.from_code == merge.into_code:
            raise InputError("a practice cannot merge into itself", path=where, value=merge.from_code)
    for site in scenario.open:
        if site.kind not in ORGANISATION_KINDS:
            raise InputError(f"kind must be one of {', '.join(ORGANISATION_KINDS)}", path=where, value=site.kind)
        if site.code in sites.index:
            raise InputError("a new site needs a code of its own", path=where, value=site.code)
    practices = set(sites[sites == "gp"].index)
    if practices and practices <= scenario.closed_sites and not any(s.kind == "gp" for s in scenario.open):
        raise InputError("the scenario closes every GP practice in the area", path=where)


# --- the choice model ----------------------------------------------------------------------------

@dataclass
class ChoiceModel:
    alpha: float
    beta: float
    r_squared: float
    mean_abs_pct_error: float
    modelled: bool

    def describe(self) -> str:
        if not self.modelled:
            return "real registrations by LSOA (NHS file)"
        return (f"modelled (Huff model, size^{self.alpha:g} x exp(-{self.beta:g} x minutes), calibrated to list sizes "
                f"with the decay held to plausible values: R^2 {self.r_squared:.2f}, mean absolute error "
                f"{self.mean_abs_pct_error:.0f}% per practice)")


def _choice(pairs: pd.DataFrame, size: pd.Series, alpha: float, beta: float) -> pd.Series:
    """P(LSOA i registers with practice j) over the pairs given."""
    utility = size.reindex(pairs["destination_id"]).to_numpy() ** alpha * np.exp(-beta * pairs["minutes"].to_numpy())
    utility = np.where(np.isfinite(utility), utility, 0.0)
    totals = pd.Series(utility).groupby(pairs["origin_id"].to_numpy()).transform("sum").to_numpy()
    return pd.Series(np.divide(utility, totals, out=np.zeros_like(utility), where=totals > 0), index=pairs.index)


def calibrate(pairs: pd.DataFrame, registered: pd.Series, lists: pd.Series) -> tuple[ChoiceModel, pd.Series]:
    """Grid-search alpha and beta so that modelled list sizes match the real ones; return flows."""
    best = None
    for alpha in ALPHAS:
        for beta in BETAS:
            p = _choice(pairs, lists, alpha, beta)
            flows = registered.reindex(pairs["origin_id"]).to_numpy() * p.to_numpy()
            modelled = pd.Series(flows).groupby(pairs["destination_id"].to_numpy()).sum().reindex(lists.index, fill_value=0)
            error = float(((modelled - lists) ** 2).sum())
            if best is None or error < best[0]:
                best = (error, alpha, beta, modelled, flows)
    error, alpha, beta, modelled, flows = best
    r2 = 1 - error / float(((lists - lists.mean()) ** 2).sum()) if len(lists) > 1 else np.nan
    mape = float((np.abs(modelled - lists) / lists.where(lists > 0)).mean() * 100)
    return ChoiceModel(alpha, beta, r2, mape, True), pd.Series(flows, index=pairs.index)


# --- evaluation -------------------------------------------------------------------------------------

@dataclass
class Context:
    """Everything a scenario needs, read once from the store (so many scenarios can be tried quickly)."""

    mode: str
    areas: pd.DataFrame  # lsoa21_code -> population, imd_decile
    pairs: dict[tuple[str, str], pd.DataFrame]  # (profile, kind) -> pairs within the cutoff
    nearest: dict[tuple[str, str], pd.Series]  # (profile, kind) -> minutes to the nearest, by LSOA
    nearest_site: dict[tuple[str, str], pd.Series]  # (profile, kind) -> code of the nearest site, by LSOA
    cutoff: dict[tuple[str, str], float]
    practices: pd.DataFrame  # practice_code -> patients, gp_fte
    flows: pd.DataFrame  # origin_id, destination_id, minutes, patients (drive pairs)
    model: ChoiceModel


def load_context(store: Store, *, mode: str | None = None) -> Context:
    runs = store.df("SELECT * FROM travel_runs")
    if runs.empty:
        raise StoreError("no travel times: run `nearcare travel-times` for drive (and walk) first")
    if mode is None:
        mode = "crowfly" if (runs["mode"] == "crowfly").any() else "drive"
    chosen = runs[(runs["mode"] == mode) | ((mode != "crowfly") & (runs["mode"] != "crowfly"))]
    if chosen[(chosen["profile"] == "drive") & (chosen["destination_kind"] == "gp")].empty:
        raise StoreError(f"no drive travel times to GP practices ({mode}); run `nearcare travel-times --mode drive`")
    pairs, nearest, nearest_site, cutoff = {}, {}, {}, {}
    for _, run in chosen.iterrows():
        key = (run["profile"], run["destination_kind"])
        pairs[key] = store.df("SELECT origin_id, destination_id, minutes, distance_m FROM travel_times WHERE profile = ? "
                              "AND destination_kind = ? AND mode = ?", [*key, run["mode"]])
        near = store.df("SELECT origin_id, destination_id, minutes FROM nearest_services WHERE profile = ? AND "
                        "destination_kind = ? AND mode = ?", [*key, run["mode"]]).set_index("origin_id")
        nearest[key], nearest_site[key] = near["minutes"], near["destination_id"]
        cutoff[key] = float(run["max_minutes"])
    origins = nearest[("drive", "gp")].index
    areas = store.df("SELECT lsoa21_code, population, imd_decile, imd_rank FROM small_areas").set_index("lsoa21_code")
    areas = areas.loc[areas.index.intersection(origins)]
    practices = store.df("SELECT practice_code, patients, gp_fte FROM practices").set_index("practice_code")
    drive = pairs[("drive", "gp")]
    registrations = store.df("SELECT practice_code AS destination_id, lsoa_code AS origin_id, sum(patients) AS patients "
                             "FROM gp_registrations_lsoa WHERE extract_date = (SELECT max(extract_date) FROM "
                             "gp_registrations_lsoa) GROUP BY ALL")
    if len(registrations):
        flows = drive.merge(registrations, on=["origin_id", "destination_id"], how="left").fillna({"patients": 0.0})
        model = ChoiceModel(np.nan, np.nan, np.nan, np.nan, modelled=False)
    else:
        lists = practices["patients"].dropna().astype(float)
        lists = lists[lists.index.isin(drive["destination_id"])]
        population = areas["population"]
        # Registered people per LSOA: population scaled so the totals match the practices' lists.
        registered = population * (lists.sum() / population.sum())
        model, flow = calibrate(drive, registered, lists)
        flows = drive.assign(patients=flow.to_numpy())
    return Context(mode, areas, pairs, nearest, nearest_site, cutoff, practices, flows, model)


@dataclass
class ScenarioResult:
    scenario: Scenario
    lsoas: pd.DataFrame  # per LSOA and profile: before/after minutes to the nearest GP practice
    practices: pd.DataFrame  # per practice: list before/after, patients per GP FTE before/after
    pharmacy: pd.DataFrame  # per LSOA: pharmacies within the walk threshold and 1.6 km before/after
    newly_beyond: pd.DataFrame  # people newly beyond each threshold, by IMD decile
    unplaced_patients: float
    moved_patients: float
    model: ChoiceModel
    mode: str


def _nearest_after(ctx: Context, key: tuple[str, str], closed: set[str], extra: pd.DataFrame | None) -> pd.Series:
    """Minutes to the nearest site of ``key`` once ``closed`` have closed and ``extra`` sites opened.

    Infinity stands for "beyond the stored cutoff"; a closure never brings anyone nearer.
    """
    before = ctx.nearest[key]
    after = before.copy()
    pairs = ctx.pairs[key]
    hit = pairs["destination_id"].isin(closed)
    # Affected: a closed site within the cutoff, or a closed nearest site beyond it.
    affected = pd.Index(pairs.loc[hit, "origin_id"].unique()).union(
        ctx.nearest_site[key].index[ctx.nearest_site[key].isin(closed).to_numpy()])
    if len(affected):
        remaining = pairs[~hit & pairs["origin_id"].isin(affected)].groupby("origin_id")["minutes"].min()
        after.loc[affected] = np.maximum(before.loc[affected].to_numpy(),
                                         remaining.reindex(affected).fillna(np.inf).to_numpy())
    if extra is not None and len(extra):
        added = extra[(extra["profile"] == key[0]) & (extra["kind"] == key[1])]
        if len(added):
            better = added.groupby("origin_id")["minutes"].min().reindex(after.index).fillna(np.inf)
            after = pd.Series(np.fmin(after.to_numpy(), better.to_numpy()), index=after.index)
    return after


def _attract_to_new_practices(ctx: Context, scenario: Scenario, extra: pd.DataFrame | None,
                              lists_after: pd.Series, closed: set[str]) -> pd.Series:
    """Move patients to new practices by the choice model, from the practices each LSOA now uses."""
    new = [s for s in scenario.open if s.kind == "gp"]
    if not new or extra is None or not ctx.model.modelled:
        return lists_after
    per_fte = ctx.practices["patients"].sum() / ctx.practices["gp_fte"].sum()
    size = lists_after.where(lists_after > 0).copy()
    for site in new:
        size[site.code] = site.list_size if site.list_size is not None else (site.gp_fte or 0) * per_fte
    drive_new = extra[(extra["profile"] == "drive") & (extra["kind"] == "gp")][["origin_id", "destination_id", "minutes"]]
    existing = ctx.flows[~ctx.flows["destination_id"].isin(closed)][["origin_id", "destination_id", "minutes"]]
    choice = pd.concat([existing, drive_new], ignore_index=True)
    choice = choice[choice["origin_id"].isin(drive_new["origin_id"])]
    p = _choice(choice, size, ctx.model.alpha, ctx.model.beta)
    registered = ctx.flows.groupby("origin_id")["patients"].sum()
    to_new = choice["destination_id"].isin([s.code for s in new])
    # People keep their current practice in proportion; the new sites take their modelled share.
    share_new = p[to_new].groupby(choice.loc[to_new, "origin_id"]).sum()
    gained = (registered.reindex(choice.loc[to_new, "origin_id"]).to_numpy() * p[to_new].to_numpy())
    lists_after = lists_after.add(pd.Series(gained).groupby(choice.loc[to_new, "destination_id"].to_numpy()).sum(),
                                  fill_value=0)
    old = choice[~to_new]
    p_old = p[~to_new] / (1 - share_new.reindex(old["origin_id"]).fillna(0).to_numpy()).clip(min=1e-12)
    lost = registered.reindex(old["origin_id"]).to_numpy() * p_old.to_numpy() * \
        share_new.reindex(old["origin_id"]).fillna(0).to_numpy()
    return lists_after.sub(pd.Series(lost).groupby(old["destination_id"].to_numpy()).sum(), fill_value=0)


def evaluate(ctx: Context, scenario: Scenario, *, new_site_pairs: pd.DataFrame | None = None) -> ScenarioResult:
    """Before and after for one scenario, from the context (no store access)."""
    closed = scenario.closed_sites
    profiles = sorted({p for p, k in ctx.nearest if k == "gp"})
    rows = []
    for profile in profiles:
        before = ctx.nearest[(profile, "gp")]
        after = _nearest_after(ctx, (profile, "gp"), closed, new_site_pairs)
        rows.append(pd.DataFrame({"lsoa21_code": before.index, "profile": profile, "before_minutes": before.to_numpy(),
                                  "after_minutes": after.reindex(before.index).to_numpy()}))
    lsoas = pd.concat(rows, ignore_index=True).merge(ctx.areas[["population", "imd_decile"]], left_on="lsoa21_code",
                                                    right_index=True)
    lsoas["change_minutes"] = lsoas["after_minutes"] - lsoas["before_minutes"]
    lsoas.loc[lsoas["change_minutes"].abs() < 1e-9, "change_minutes"] = 0.0  # rounding, not a change

    # Where patients go.
    flows = ctx.flows
    lists_before = ctx.practices["patients"].astype(float)
    moved = flows[flows["destination_id"].isin(closed - {m.from_code for m in scenario.merges})]
    lists_after = lists_before.copy()
    unplaced = 0.0
    for merge in scenario.merges:  # a merged practice's list joins the practice it merges into
        lists_after[merge.into_code] = lists_after.get(merge.into_code, 0) + lists_after.get(merge.from_code, 0)
        lists_after[merge.from_code] = 0.0
    if len(moved):
        # Scale the modelled flows so that each closed practice's real list moves, LSOA by LSOA.
        moved = moved.assign(patients=moved["patients"] * (
            lists_before.reindex(moved["destination_id"]).to_numpy()
            / moved.groupby("destination_id")["patients"].transform("sum").to_numpy()))
        remaining = flows[~flows["destination_id"].isin(closed) & flows["origin_id"].isin(moved["origin_id"])]
        size = lists_after.where(lists_after > 0)
        if ctx.model.modelled:
            p = _choice(remaining, size, ctx.model.alpha, ctx.model.beta)
        else:  # real registrations: people follow the LSOA's existing pattern among the remaining practices
            weights = remaining["patients"].to_numpy()
            totals = pd.Series(weights).groupby(remaining["origin_id"].to_numpy()).transform("sum").to_numpy()
            p = pd.Series(np.divide(weights, totals, out=np.zeros_like(weights), where=totals > 0), index=remaining.index)
        displaced = moved.groupby("origin_id")["patients"].sum()
        gained = displaced.reindex(remaining["origin_id"]).to_numpy() * p.to_numpy()
        received = pd.Series(gained).groupby(remaining["destination_id"].to_numpy()).sum()
        lists_after = lists_after.add(received, fill_value=0)
        unplaced = float(displaced.sum() - received.sum())
        for code in closed:
            if code in lists_after.index:
                lists_after[code] = 0.0
    lists_after = _attract_to_new_practices(ctx, scenario, new_site_pairs, lists_after, closed)
    moved_total = float(lists_before.reindex(list(closed)).fillna(0).sum())
    everyone = lists_before.index.union(lists_after.index)
    practices = pd.DataFrame({"patients_before": lists_before.reindex(everyone).fillna(0),
                              "patients_after": lists_after.reindex(everyone)})
    fte = ctx.practices["gp_fte"].reindex(everyone)
    for site in scenario.open:
        if site.kind == "gp" and site.gp_fte is not None:
            fte[site.code] = site.gp_fte
    for merge in scenario.merges:
        fte[merge.into_code] = fte.get(merge.into_code, 0) + (fte.get(merge.from_code, 0) if pd.notna(fte.get(merge.from_code)) else 0)
        fte[merge.from_code] = np.nan
    practices["added_patients"] = practices["patients_after"] - practices["patients_before"]
    practices["per_gp_fte_before"] = practices["patients_before"] / ctx.practices["gp_fte"].reindex(everyone)
    practices["per_gp_fte_after"] = practices["patients_after"] / fte
    practices.loc[practices.index.isin(closed), ["per_gp_fte_after"]] = np.nan

    # Pharmacies (and any other kind closed): people newly without one within the threshold.
    pharmacy_rows = []
    for key in [k for k in ctx.nearest if k[1] == "pharmacy"]:
        before = ctx.nearest[key]
        after = _nearest_after(ctx, key, closed, new_site_pairs)
        pharmacy_rows.append(pd.DataFrame({"lsoa21_code": before.index, "profile": key[0],
                                           "before_minutes": before.to_numpy(), "after_minutes": after.to_numpy()}))
    pharmacy = pd.concat(pharmacy_rows, ignore_index=True) if pharmacy_rows else pd.DataFrame(
        columns=["lsoa21_code", "profile", "before_minutes", "after_minutes"])
    pharmacy = pharmacy.merge(ctx.areas[["population", "imd_decile"]], left_on="lsoa21_code", right_index=True)

    beyond = []
    for what, frame in (("GP practice", lsoas), ("pharmacy", pharmacy)):
        for profile, threshold in DEFAULT_THRESHOLD_MINUTES.items():
            part = frame[frame["profile"] == profile]
            newly = part[(part["before_minutes"] <= threshold) & (part["after_minutes"] > threshold)]
            regained = part[(part["before_minutes"] > threshold) & (part["after_minutes"] <= threshold)]
            for decile in range(1, 11):
                beyond.append({"service": what, "profile": profile, "threshold_minutes": threshold, "imd_decile": decile,
                               "people_newly_beyond": float(newly.loc[newly["imd_decile"] == decile, "population"].sum()),
                               "people_newly_within": float(regained.loc[regained["imd_decile"] == decile, "population"].sum())})
    return ScenarioResult(scenario, lsoas, practices.reset_index(names="practice_code"), pharmacy, pd.DataFrame(beyond),
                          unplaced, moved_total, ctx.model, ctx.mode)


def new_site_pairs(store: Store, ctx: Context, scenario: Scenario) -> pd.DataFrame | None:
    """Travel times from the context's LSOAs to each new site, for every profile in the context."""
    from nearcare.network import load_network
    from nearcare.travel import Points, crowfly_pairs, pairs_within, snap

    if not scenario.open:
        return None
    origins = store.df("SELECT lsoa21_code, centroid_easting AS easting, centroid_northing AS northing FROM small_areas")
    origins = Points.from_frame(origins[origins["lsoa21_code"].isin(ctx.areas.index)], "lsoa21_code")
    frames = []
    for profile in sorted({p for p, _ in ctx.nearest}):
        for site in scenario.open:
            point = Points(np.array([site.code]), np.array([site.easting]), np.array([site.northing]))
            cutoff = max(ctx.cutoff.get((profile, site.kind), 30.0), 1.0)
            if ctx.mode == "crowfly":
                pairs = crowfly_pairs(origins, point, profile, cutoff)
            else:
                network = load_network(store, profile)
                snapped = snap(network, point, side="destination")
                if len(snapped.ids) == 0:
                    raise InputError("the new site is too far from the road network to reach", value=site.code)
                pairs = pairs_within(network, snap(network, origins, side="origin"), snapped, cutoff)
            frames.append(pairs.assign(profile=profile, kind=site.kind))
    return pd.concat(frames, ignore_index=True)


def run_scenario(store: Store, scenario: Scenario, *, mode: str | None = None) -> ScenarioResult:
    ctx = load_context(store, mode=mode)
    return evaluate(ctx, scenario, new_site_pairs=new_site_pairs(store, ctx, scenario))


# --- ranking every single closure -------------------------------------------------------------------

_RANK_CONTEXT: dict = {}


def _score(code: str) -> dict:
    ctx = _RANK_CONTEXT["ctx"]
    result = evaluate(ctx, Scenario(f"close {code}", close=[code]))
    lsoas = result.lsoas
    drive = lsoas[lsoas["profile"] == "drive"]
    worse = drive[drive["change_minutes"] > 1e-9]
    extra = np.minimum(worse["change_minutes"], 60)  # cap "beyond the cutoff" for the weighting
    deprivation = 1 + 0.1 * (10 - worse["imd_decile"].fillna(5.5))  # decile 1 counts 1.9, decile 10 counts 1
    newly = result.newly_beyond[result.newly_beyond["service"] == "GP practice"]
    receivers = result.practices[result.practices["added_patients"] > 0]
    strain = (receivers["per_gp_fte_after"] - receivers["per_gp_fte_before"]).max() if len(receivers) else 0.0
    return {"code": code, "people_further": float(worse["population"].sum()),
            "deprivation_weighted_person_minutes": float((worse["population"] * extra * deprivation).sum()),
            "people_newly_beyond_threshold": float(newly["people_newly_beyond"].sum()),
            "most_deprived_fifth_newly_beyond": float(newly.loc[newly["imd_decile"] <= 2, "people_newly_beyond"].sum()),
            "largest_rise_in_patients_per_gp_fte": float(strain) if np.isfinite(strain) else np.nan,
            "unplaced_patients": result.unplaced_patients}


def rank_closures(store: Store, kind: str = "gp", *, mode: str | None = None, workers: int | None = None) -> pd.DataFrame:
    """Score closing each site of ``kind`` alone, on all cores; worst first.

    Scores: people whose drive to the nearest practice gets longer; deprivation-weighted person-
    minutes (extra minutes, capped at 60, times people, times 1 + 0.1 x (10 - IMD decile): 1.9 in
    the most deprived decile, 1 in the least); people newly beyond the walk and drive thresholds
    (and those in the most deprived fifth); the largest rise in patients per GP FTE at a practice
    that takes patients; patients with no practice left in reach.
    """
    import multiprocessing as mp

    from nearcare._progress import steps

    ctx = load_context(store, mode=mode)
    codes = store.df("SELECT code FROM sites WHERE kind = ? ORDER BY code", [kind])["code"].tolist()
    if kind == "gp":
        codes = [c for c in codes if c in set(ctx.flows["destination_id"])]
    if not codes:
        raise StoreError(f"no {kind} sites with travel times to rank")
    _RANK_CONTEXT["ctx"] = ctx
    workers = workers or os.cpu_count() or 1
    try:
        if workers > 1 and len(codes) > 8:
            with mp.get_context("fork").Pool(workers) as pool:
                scores = list(steps(pool.imap(_score, codes, chunksize=4), f"closing each {kind}", total=len(codes)))
        else:
            scores = [_score(c) for c in steps(codes, f"closing each {kind}", total=len(codes))]
    finally:
        _RANK_CONTEXT.clear()
    names = store.df("SELECT code, name FROM sites").set_index("code")["name"]
    table = pd.DataFrame(scores)
    table.insert(1, "name", table["code"].map(names))
    return table.sort_values(["deprivation_weighted_person_minutes", "people_further"], ascending=False).reset_index(drop=True)


def write_outputs(result: ScenarioResult, out: Path) -> list[Path]:
    """Write the scenario's tables as CSV into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in (("lsoa_minutes_to_gp", result.lsoas), ("practices", result.practices),
                        ("lsoa_minutes_to_pharmacy", result.pharmacy), ("people_newly_beyond_thresholds", result.newly_beyond)):
        path = out / f"{name}.csv"
        frame.to_csv(path, index=False)
        written.append(path)
    return written


def scenario_section(store: Store, result: ScenarioResult, ranked: pd.DataFrame | None = None):
    """A report section: the change in minutes on a map, people newly beyond thresholds by decile,
    the practices that take the patients, and (optionally) the ranked closures."""
    from nearcare import maps
    from nearcare.report import Figure, Section, table_from_frame

    drive = result.lsoas[result.lsoas["profile"] == "drive"]
    areas = maps.small_areas_frame(store, "lsoa21_code").merge(drive, on="lsoa21_code")
    areas["shown"] = areas["change_minutes"].clip(upper=30)
    closed = store.df("SELECT * FROM sites WHERE kind = 'gp'")
    figure = maps.choropleth(areas, "shown", title=f"{result.scenario.name}: change in minutes' drive to the nearest GP",
                             legend_label="extra minutes (30 = 30 or more, or beyond the stored cutoff)", cmap="Reds",
                             sites=closed[~closed["code"].isin(result.scenario.closed_sites)])
    bounds = areas.total_bounds
    figure.axes[0].set_xlim(bounds[0] - 2000, bounds[2] + 2000)
    figure.axes[0].set_ylim(bounds[1] - 2000, bounds[3] + 2000)
    gp = result.newly_beyond[result.newly_beyond["service"] == "GP practice"]
    by_decile = gp.groupby("imd_decile")["people_newly_beyond"].sum()
    chart = maps.bar_chart(by_decile.index.tolist(), by_decile.tolist(),
                           title="People newly beyond 20 minutes' walk or 15 minutes' drive of a GP practice",
                           xlabel="IMD 2025 decile (1 = most deprived)", ylabel="People")
    receivers = result.practices[result.practices["added_patients"].abs() > 0.5].sort_values("added_patients", ascending=False)
    names = store.df("SELECT code AS practice_code, name FROM sites").set_index("practice_code")["name"]
    receivers = receivers.assign(name=receivers["practice_code"].map(names).fillna("(new site)"))
    label = "crow-fly estimates" if result.mode == "crowfly" else "the road network"
    further = drive[drive["change_minutes"] > 0]
    tables = [table_from_frame(receivers.head(15), "Where the patients go (modelled)" if result.model.modelled else
                               "Where the patients go", labels={
        "practice_code": "Practice", "name": "Name", "patients_before": "Patients before", "added_patients": "Change",
        "per_gp_fte_before": "Patients per GP FTE before", "per_gp_fte_after": "after"})]
    if ranked is not None:
        tables.append(table_from_frame(ranked.head(15), "Every single practice closure, ranked (worst first)", labels={
            "code": "Practice", "name": "Name", "people_further": "People further",
            "deprivation_weighted_person_minutes": "Deprivation-weighted person-minutes",
            "people_newly_beyond_threshold": "Newly beyond thresholds",
            "largest_rise_in_patients_per_gp_fte": "Largest rise in patients per GP FTE",
            "unplaced_patients": "Patients with no practice in reach"},
            note="Crow-fly estimates over the whole area; patient flows modelled. Deprivation weight: 1.9 in the most "
                 "deprived decile to 1 in the least."))
    return Section(
        f"Scenario: {result.scenario.name}",
        paragraphs=[
            f"Travel times from {label}. {len(further)} LSOAs ({further['population'].sum():,.0f} people) have a longer "
            f"drive to their nearest GP practice. {result.moved_patients:,.0f} registered patients move; "
            f"{result.unplaced_patients:,.0f} have no other practice within the stored reach "
            "(often because practices just outside the area are not in the data).",
            f"Where patients go: {result.model.describe()}.",
        ],
        figures=[Figure(maps.png_data_uri(figure), "Map of the change in minutes' drive to the nearest GP practice"),
                 Figure(maps.png_data_uri(chart), "Bar chart of people newly beyond the thresholds by IMD decile")],
        tables=tables,
    )
