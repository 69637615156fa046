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

A scenario run from a file records the file in the store's provenance (kind ``scenario``, rows =
its changes; the same file run again keeps its one row) and its outputs name it (path, SHA-256,
source_id).

Where patients go. With the LSOA-level registration file imported, the real counts of patients
per LSOA per practice are used: a closed practice's patients join the practices left in their
LSOA's reach in proportion to the LSOA's registrations there, and where the LSOA has none there (its
only registrations in reach were at the closed practice), by the choice model below. Otherwise they are *modelled* with a Huff choice model: an LSOA's
registered people choose among the practices within reach with probability proportional to
size^alpha x exp(-beta x minutes) (size = list size), calibrated by grid search to reproduce the
practices' real list sizes; its fit is reported, and every figure resting on it is labelled
modelled. Because list sizes alone cannot identify the distance decay (a flat decay reproduces
them trivially), beta is searched only among plausible values (attraction halving within 0.7 to
3.5 minutes' drive). Patients of a closed practice move, LSOA by LSOA, to the remaining practices by the
same model; those who cannot be placed (no practice left in reach, or a closed practice with no flows
because it is not geocoded or has no travel times in the mode) are unplaced, with the reason, never
lost and never kept at a closed site: patients before = patients after + unplaced. Mergers follow
chains; cycles, double mergers and mergers into a closing practice are refused (``merge_targets``).
"Move" means registering with another practice (displaced patients placed, and those drawn to a
new site); patients who follow their practice into a merger are counted apart.

Patients per GP FTE use ``nearcare.access.practice_gp_fte``: a reported FTE of 0, a missing or an
implausible one is estimated from the list size, and the outputs mark those (``gp_fte_estimated``).

Access change. Minutes to the nearest site before come from the stored nearest-service search;
after, from the stored pairs within the run's cutoff (so a closure is re-evaluated in well under a
second); on a network, an LSOA whose remaining sites are all beyond the cutoff is reported as beyond
it (infinity); crow-fly, the nearest site left is found however far.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nearcare import distributed
from nearcare._errors import InputError, StoreError
from nearcare._format import whole
from nearcare._progress import steps
from nearcare.access import DEFAULT_THRESHOLD_MINUTES, PHARMACY_DISTANCE_M, practice_gp_fte
from nearcare.flows import ChoiceModel, flows_from, latest_registrations, where_patients_go
from nearcare.geo import hilbert_order, in_england_box, normalise_postcode, to_bng
from nearcare.need import deprivation_priority_weight
from nearcare.network import load_network
from nearcare.network.search import Points, crowfly_nearest, crowfly_pairs, pairs_within, snap
from nearcare.sources import record_user_file
from nearcare.store import ORGANISATION_KINDS, Store, file_sha256

SCENARIO_KIND = "scenario"  # provenance kind of a scenario file


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
    # The file that defined it (``load_scenario``), its SHA-256 and, once recorded in the store's
    # provenance (kind ``scenario``; ``Project.scenario`` does so), its source_id.
    source_path: Path | None = None
    source_sha256: str | None = None
    source_id: int | None = None

    @property
    def changes(self) -> int:
        """Sites closed, mergers and new sites: the rows its file is recorded with in provenance."""
        return len(self.close) + len(self.merges) + len(self.open)

    def source_note(self) -> str | None:
        """One sentence naming the file that defined the scenario, or None if it came from no file."""
        if self.source_path is None:
            return None
        recorded = f", provenance source {self.source_id}" if self.source_id is not None else ""
        return f"Defined by {self.source_path} (SHA-256 {self.source_sha256}{recorded})."

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
    merges = []
    for i, m in enumerate(data.get("merge", [])):
        where = f"{path} [[merge]] {i + 1}"
        keep_site = (
            _need(m, "keep_site", where, bool) if "keep_site" in m else True
        )  # a TOML true/false, not a string
        merges.append(Merge(_need(m, "from", where, str), _need(m, "into", where, str), keep_site))
    opened = []
    for i, o in enumerate(data.get("open", [])):
        where = f"{path} [[open]] {i + 1}"
        code = _need(o, "code", where, str)
        easting, northing = _locate(store, o, where)
        opened.append(
            NewSite(
                code,
                str(o.get("name", code)),
                _need(o, "kind", where, str),
                easting,
                northing,
                _optional_number(o, "gp_fte", where),
                _optional_number(o, "list_size", where),
            )
        )
    scenario = Scenario(
        str(data.get("name", path.stem)),
        list(close),
        merges,
        opened,
        source_path=path.resolve(),
        source_sha256=file_sha256(path),
    )
    check_scenario(store, scenario, where=str(path))
    return scenario


def record_source(store: Store, scenario: Scenario) -> None:
    """Record the file that defined ``scenario`` in provenance (kind ``scenario``, publisher ``user``)
    and set its ``source_id``; the same file run again keeps its one provenance row."""
    if scenario.source_path is not None:
        scenario.source_id = record_user_file(
            store, SCENARIO_KIND, scenario.source_path, rows=scenario.changes
        )


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
            raise InputError(
                "unknown site code (not an active site of the built area)", path=where, value=code
            )
    for merge in scenario.merges:
        for code in (merge.from_code, merge.into_code):
            if sites.get(code) != "gp":
                raise InputError("a merge joins two GP practices of the area", path=where, value=code)
    for i, site in enumerate(scenario.open, start=1):
        entry = f"{where} [[open]] {i}"
        if site.kind not in ORGANISATION_KINDS:
            raise InputError(
                f"kind must be one of {', '.join(ORGANISATION_KINDS)}", path=entry, value=site.kind
            )
        if site.code in sites.index:
            raise InputError("a new site needs a code of its own", path=entry, value=site.code)
    check_openings(scenario, where=where)
    merge_targets(scenario, where=where)
    practices = set(sites[sites == "gp"].index)
    if practices and practices <= scenario.closed_sites and not any(s.kind == "gp" for s in scenario.open):
        raise InputError("the scenario closes every GP practice in the area", path=where)


def check_openings(scenario: Scenario, *, where: str = "scenario") -> None:
    """Refuse a new site opened twice (its draw would count twice), naming the [[open]] entry."""
    first_entry: dict[str, int] = {}
    for i, site in enumerate(scenario.open, start=1):
        if site.code in first_entry:
            raise InputError(
                f"{site.code} is already opened by [[open]] {first_entry[site.code]}; a site opens once",
                path=f"{where} [[open]] {i}",
                value=site.code,
            )
        first_entry[site.code] = i


def merge_targets(scenario: Scenario, *, where: str = "scenario") -> dict[str, str]:
    """The practice each merging practice's patients end up with, following chains (A->B->C).

    Refused, naming the [[merge]] entry: a practice merging into itself or merging twice; one that
    both closes and merges; a cycle (A->B, B->A); a merger into a practice that closes in the same
    scenario (its patients would have no practice to follow).
    """
    closing = set(scenario.close)
    into: dict[str, str] = {}
    for i, merge in enumerate(scenario.merges):
        entry = f"{where} [[merge]] {i + 1}"
        if merge.from_code == merge.into_code:
            raise InputError("a practice cannot merge into itself", path=entry, value=merge.from_code)
        if merge.from_code in into:
            raise InputError(
                f"{merge.from_code} already merges into {into[merge.from_code]}; a practice merges once",
                path=entry,
                value=merge.from_code,
            )
        if merge.from_code in closing:
            raise InputError(
                f"{merge.from_code} also closes in this scenario; a practice either closes or merges",
                path=entry,
                value=merge.from_code,
            )
        into[merge.from_code] = merge.into_code
    targets = {}
    for i, merge in enumerate(scenario.merges):
        entry = f"{where} [[merge]] {i + 1}"
        chain = [merge.from_code]
        while chain[-1] in into:
            following = into[chain[-1]]
            if following in chain:
                raise InputError(
                    f"the mergers form a cycle ({' -> '.join([*chain, following])})",
                    path=entry,
                    value=merge.from_code,
                )
            chain.append(following)
        if chain[-1] in closing:
            raise InputError(
                f"{chain[-1]} closes in this scenario, so {merge.from_code}'s patients would have no "
                f"practice to join ({' -> '.join(chain)}); merge into a practice that stays open",
                path=entry,
                value=merge.into_code,
            )
        targets[merge.from_code] = chain[-1]
    return targets


# --- evaluation -------------------------------------------------------------------------------------


@dataclass
class Context:
    """Everything a scenario needs, read once from the store (so many scenarios can be tried quickly)."""

    mode: str
    areas: pd.DataFrame  # lsoa21_code -> population, imd_decile, centroid_easting, centroid_northing
    pairs: dict[tuple[str, str], pd.DataFrame]  # (profile, kind) -> pairs within the cutoff
    nearest: dict[tuple[str, str], pd.Series]  # (profile, kind) -> minutes to the nearest, by LSOA
    nearest_site: dict[tuple[str, str], pd.Series]  # (profile, kind) -> code of the nearest site, by LSOA
    cutoff: dict[tuple[str, str], float]
    # practice_code -> patients, gp_fte (access.practice_gp_fte: reported where plausible, else estimated),
    # gp_fte_status (reported | estimated | unknown), located (has coordinates)
    practices: pd.DataFrame
    # origin_id, destination_id, minutes, patients (real or modelled, drive pairs), listed (patients
    # scaled so that each practice's flows add up to its real list)
    flows: pd.DataFrame
    model: ChoiceModel
    pharmacies_near: pd.DataFrame  # origin_id, destination_id: pharmacies within 1.6 km in a straight line
    sites: pd.DataFrame  # code, kind, easting, northing of every located site


def load_context(store: Store, *, mode: str | None = None) -> Context:
    runs = store.df("SELECT * FROM travel_runs")
    if runs.empty:
        raise StoreError("no travel times: run `nearcare travel-times` for drive (and walk) first")
    if mode is None:
        mode = "crowfly" if (runs["mode"] == "crowfly").any() else "drive"
    chosen = runs[(runs["mode"] == mode) | ((mode != "crowfly") & (runs["mode"] != "crowfly"))]
    if chosen[(chosen["profile"] == "drive") & (chosen["destination_kind"] == "gp")].empty:
        raise StoreError(
            f"no drive travel times to GP practices ({mode}); run `nearcare travel-times --mode drive`"
        )
    pairs, nearest, nearest_site, cutoff = {}, {}, {}, {}
    for _, run in chosen.iterrows():
        key = (run["profile"], run["destination_kind"])
        pairs[key] = store.df(
            "SELECT origin_id, destination_id, minutes, distance_m FROM travel_times WHERE profile = ? "
            "AND destination_kind = ? AND mode = ?",
            [*key, run["mode"]],
        )
        near = store.df(
            "SELECT origin_id, destination_id, minutes FROM nearest_services WHERE profile = ? AND "
            "destination_kind = ? AND mode = ?",
            [*key, run["mode"]],
        ).set_index("origin_id")
        nearest[key], nearest_site[key] = near["minutes"], near["destination_id"]
        cutoff[key] = float(run["max_minutes"])
    origins = nearest[("drive", "gp")].index
    areas = store.df(
        "SELECT lsoa21_code, population, imd_decile, imd_rank, centroid_easting, centroid_northing "
        "FROM small_areas"
    ).set_index("lsoa21_code")
    areas = areas.loc[areas.index.intersection(origins)]
    practices = store.df(
        "SELECT p.practice_code, p.patients, coalesce(s.easting IS NOT NULL, false) AS located "
        "FROM practices p LEFT JOIN sites s ON s.code = p.practice_code"
    ).set_index("practice_code")
    # GP FTE by the project's one plausibility rule: implausible or missing figures estimated from the list.
    practices = practices.join(practice_gp_fte(store).set_index("practice_code")[["gp_fte", "gp_fte_status"]])
    flows, model = flows_from(
        pairs[("drive", "gp")], areas["population"], practices["patients"], latest_registrations(store)
    )
    return Context(
        mode,
        areas,
        pairs,
        nearest,
        nearest_site,
        cutoff,
        practices,
        flows,
        model,
        _pharmacies_near(store, areas),
        store.df("SELECT code, kind, easting, northing FROM sites WHERE easting IS NOT NULL"),
    )


def _pharmacies_near(store: Store, areas: pd.DataFrame) -> pd.DataFrame:
    """Pairs (LSOA, pharmacy) within PHARMACY_DISTANCE_M of the LSOA's centroid, in a straight line."""
    from scipy.spatial import cKDTree

    sites = store.df(
        "SELECT code, easting, northing FROM sites WHERE kind = 'pharmacy' AND easting IS NOT NULL"
    )
    located = areas[areas["centroid_easting"].notna()]
    if sites.empty or located.empty:
        return pd.DataFrame({"origin_id": pd.Series(dtype=str), "destination_id": pd.Series(dtype=str)})
    hits = cKDTree(sites[["easting", "northing"]].to_numpy()).query_ball_point(
        located[["centroid_easting", "centroid_northing"]].to_numpy(), PHARMACY_DISTANCE_M
    )
    lengths = np.array([len(h) for h in hits], dtype=int)
    return pd.DataFrame(
        {
            "origin_id": np.repeat(located.index.to_numpy(), lengths),
            "destination_id": sites["code"].to_numpy()[np.concatenate(hits).astype(int)]
            if lengths.sum()
            else np.array([], dtype=str),
        }
    )


@dataclass
class ScenarioResult:
    """Before and after. Reconciles: practices' patients before = after + unplaced patients."""

    scenario: Scenario
    lsoas: pd.DataFrame  # per LSOA and profile: before/after minutes to the nearest GP practice
    # per practice: patients before, merged (in +, out -), lost, gained, unplaced, after; per GP FTE
    practices: pd.DataFrame
    pharmacy: pd.DataFrame  # per LSOA and profile: minutes to the nearest pharmacy before/after
    pharmacy_distance: pd.DataFrame  # per LSOA: pharmacies within 1.6 km in a straight line before/after
    newly_beyond: (
        pd.DataFrame
    )  # people newly beyond each threshold, by IMD decile ("walk or drive": each person once)
    unplaced: pd.DataFrame  # practice_code, reason, patients: patients of closed practices with nowhere to go
    model: ChoiceModel
    mode: str

    @property
    def displaced_patients(self) -> float:
        """Patients whose practice closes (not by merger)."""
        closed = self.practices["practice_code"].isin(self.scenario.close)
        return float(self.practices.loc[closed, "patients_before"].sum())

    @property
    def moved_patients(self) -> float:
        """Patients who register with another practice: displaced ones placed, and those drawn to new sites."""
        return float(self.practices["patients_gained"].sum())

    @property
    def unplaced_patients(self) -> float:
        return float(self.unplaced["patients"].sum())

    @property
    def merged_patients(self) -> float:
        """Patients who follow their practice into a merger (they do not move)."""
        return float(self.practices["merged_patients"].clip(lower=0).sum())

    def people_newly_beyond(self, service: str = "GP practice") -> dict[str, float]:
        """People newly beyond each threshold of ``service``, by profile; 'walk or drive' counts each person once."""
        rows = self.newly_beyond[self.newly_beyond["service"] == service]
        return {
            str(k): float(v)
            for k, v in rows.groupby("profile", sort=False)["people_newly_beyond"].sum().items()
        }

    def headline(self) -> str:
        gp = self.people_newly_beyond("GP practice")
        parts = [f"{whole(self.moved_patients)} patients move to another practice"]
        if self.displaced_patients:
            parts.append(
                f"{whole(self.displaced_patients)} lose their practice, of whom {whole(self.unplaced_patients)} "
                "have no practice they can move to"
            )
        if self.merged_patients:
            parts.append(f"{whole(self.merged_patients)} follow their practice into a merger")
        beyond = (
            f"{whole(gp.get('walk or drive', 0))} people newly beyond a GP threshold ("
            + ", ".join(
                f"{whole(gp[p])} by {DEFAULT_THRESHOLD_MINUTES[p]:g} minutes' {p}"
                for p in DEFAULT_THRESHOLD_MINUTES
                if p in gp
            )
            + "; each person counted once)"
        )
        return "; ".join(parts) + "; " + beyond


def _nearest_after(
    ctx: Context, key: tuple[str, str], closed: set[str], extra: pd.DataFrame | None
) -> pd.Series:
    """Minutes to the nearest site of ``key`` once ``closed`` have closed and ``extra`` sites opened.

    Infinity stands for "beyond the stored cutoff" (on a network; crow-fly, the nearest site left is
    found however far); a closure never brings anyone nearer.
    """
    before = ctx.nearest[key]
    after = before.copy()
    pairs = ctx.pairs[key]
    hit = pairs["destination_id"].isin(closed)
    # Affected: a closed site within the cutoff, or a closed nearest site beyond it.
    affected = pd.Index(pairs.loc[hit, "origin_id"].unique()).union(
        ctx.nearest_site[key].index[ctx.nearest_site[key].isin(closed).to_numpy()]
    )
    if len(affected):
        remaining = pairs[~hit & pairs["origin_id"].isin(affected)].groupby("origin_id")["minutes"].min()
        remaining = remaining.reindex(affected)
        beyond = remaining.isna().to_numpy()
        if (
            ctx.mode == "crowfly" and beyond.any()
        ):  # beyond the stored pairs the straight line still finds the nearest
            remaining[beyond] = _crowfly_nearest_left(ctx, key, affected[beyond], closed)
        after.loc[affected] = np.maximum(before.loc[affected].to_numpy(), remaining.fillna(np.inf).to_numpy())
    if extra is not None and len(extra):
        added = extra[(extra["profile"] == key[0]) & (extra["kind"] == key[1])]
        if len(added):
            better = added.groupby("origin_id")["minutes"].min().reindex(after.index).fillna(np.inf)
            after = pd.Series(np.fmin(after.to_numpy(), better.to_numpy()), index=after.index)
    return after


def _crowfly_nearest_left(
    ctx: Context, key: tuple[str, str], lsoas: pd.Index, closed: set[str]
) -> np.ndarray:
    """Crow-fly minutes from ``lsoas`` to the nearest site of ``key`` left open (infinity where none or unlocated)."""

    sites = ctx.sites[(ctx.sites["kind"] == key[1]) & ~ctx.sites["code"].isin(closed)]
    areas = ctx.areas.reindex(lsoas)
    located = areas["centroid_easting"].notna().to_numpy()
    minutes = np.full(len(lsoas), np.inf)
    if len(sites) and located.any():
        found = crowfly_nearest(
            Points(
                lsoas.to_numpy()[located],
                areas["centroid_easting"].to_numpy(float)[located],
                areas["centroid_northing"].to_numpy(float)[located],
            ),
            Points(
                sites["code"].to_numpy(), sites["easting"].to_numpy(float), sites["northing"].to_numpy(float)
            ),
            key[0],
        )
        minutes[located] = found["minutes"].to_numpy()
    return minutes


def _where_patients_go(
    ctx: Context, scenario: Scenario, extra: pd.DataFrame | None, closed_sites: set[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per practice: patients before, merged, lost, gained, after; and the unplaced (``flows.where_patients_go``)."""
    check_openings(scenario)
    return where_patients_go(
        ctx.flows,
        ctx.model,
        ctx.practices,
        closed=scenario.close,
        merge_targets=merge_targets(scenario),
        new_practices=[s for s in scenario.open if s.kind == "gp"],
        new_site_pairs=extra,
        closed_sites=closed_sites,
        mode=ctx.mode,
        reach_minutes=ctx.cutoff[("drive", "gp")],
    )


def _within(
    frame: pd.DataFrame, profile: str, threshold: float, index: pd.Index
) -> tuple[np.ndarray, np.ndarray]:
    """Whether each LSOA of ``index`` is within ``threshold`` minutes before and after (False where not listed)."""
    part = frame[frame["profile"] == profile]
    at = index.get_indexer(part["lsoa21_code"])
    listed = at >= 0
    before, after = np.zeros(len(index), bool), np.zeros(len(index), bool)
    before[at[listed]] = part["before_minutes"].to_numpy()[listed] <= threshold
    after[at[listed]] = part["after_minutes"].to_numpy()[listed] <= threshold
    return before, after


def _newly_beyond(
    ctx: Context, lsoas: pd.DataFrame, pharmacy: pd.DataFrame, distance: pd.DataFrame
) -> pd.DataFrame:
    """People newly beyond (and newly within) each threshold by IMD decile; 'walk or drive' counts each person once."""
    index = ctx.areas.index
    people = ctx.areas["population"].fillna(0).to_numpy(float)
    deciles = ctx.areas["imd_decile"].to_numpy(float)
    slot = np.where(np.isnan(deciles), 0, deciles).astype(int)  # 0 holds LSOAs without a decile
    shown = [*range(1, 11), *([0] if np.isnan(deciles).any() else [])]
    rows: list[dict] = []

    def add(service, profile, threshold_minutes, threshold, newly: np.ndarray, regained: np.ndarray):
        beyond = np.bincount(slot, weights=people * newly, minlength=11)
        within = np.bincount(slot, weights=people * regained, minlength=11)
        rows.extend(
            {
                "service": service,
                "profile": profile,
                "threshold": threshold,
                "threshold_minutes": threshold_minutes,
                "imd_decile": decile if decile else np.nan,
                "people_newly_beyond": float(beyond[decile]),
                "people_newly_within": float(within[decile]),
            }
            for decile in shown
        )

    for service, frame in (("GP practice", lsoas), ("pharmacy", pharmacy)):
        any_newly, any_regained, texts = np.zeros(len(index), bool), np.zeros(len(index), bool), []
        for profile, minutes in DEFAULT_THRESHOLD_MINUTES.items():
            if not (frame["profile"] == profile).any():
                continue
            before, after = _within(frame, profile, minutes, index)
            newly, regained = before & ~after, ~before & after
            texts.append(f"{minutes:g} minutes' {profile}")
            add(service, profile, minutes, texts[-1], newly, regained)
            any_newly, any_regained = any_newly | newly, any_regained | regained
        if texts:  # newly beyond at least one of the thresholds: each person once
            add(service, "walk or drive", np.nan, " or ".join(texts), any_newly, any_regained)
    before = (
        distance.set_index("lsoa21_code")["within_1600m_before"].reindex(index, fill_value=0).to_numpy() > 0
    )
    after = (
        distance.set_index("lsoa21_code")["within_1600m_after"].reindex(index, fill_value=0).to_numpy() > 0
    )
    add(
        "pharmacy",
        "straight line",
        np.nan,
        f"{PHARMACY_DISTANCE_M / 1000:g} km in a straight line",
        before & ~after,
        ~before & after,
    )
    return pd.DataFrame(rows)


def _pharmacy_distance(ctx: Context, closed: set[str], scenario: Scenario) -> pd.DataFrame:
    near = ctx.pharmacies_near
    before = near.groupby("origin_id").size().reindex(ctx.areas.index, fill_value=0)
    after = (
        near[~near["destination_id"].isin(closed)]
        .groupby("origin_id")
        .size()
        .reindex(ctx.areas.index, fill_value=0)
    )
    for site in scenario.open:
        if site.kind == "pharmacy":
            metres = np.hypot(
                ctx.areas["centroid_easting"] - site.easting, ctx.areas["centroid_northing"] - site.northing
            )
            after = after + (metres <= PHARMACY_DISTANCE_M).astype(int)
    return pd.DataFrame(
        {
            "lsoa21_code": ctx.areas.index,
            "within_1600m_before": before.to_numpy(),
            "within_1600m_after": after.to_numpy(),
        }
    )


def evaluate(
    ctx: Context, scenario: Scenario, *, new_site_pairs: pd.DataFrame | None = None
) -> ScenarioResult:
    """Before and after for one scenario, from the context (no store access)."""
    closed = scenario.closed_sites
    profiles = sorted({p for p, k in ctx.nearest if k == "gp"})
    rows = []
    for profile in profiles:
        before = ctx.nearest[(profile, "gp")]
        after = _nearest_after(ctx, (profile, "gp"), closed, new_site_pairs)
        rows.append(
            pd.DataFrame(
                {
                    "lsoa21_code": before.index,
                    "profile": profile,
                    "before_minutes": before.to_numpy(),
                    "after_minutes": after.reindex(before.index).to_numpy(),
                }
            )
        )
    lsoas = pd.concat(rows, ignore_index=True).merge(
        ctx.areas[["population", "imd_decile"]], left_on="lsoa21_code", right_index=True
    )
    lsoas["change_minutes"] = lsoas["after_minutes"] - lsoas["before_minutes"]
    lsoas.loc[lsoas["change_minutes"].abs() < 1e-9, "change_minutes"] = 0.0  # rounding, not a change

    practices, unplaced = _where_patients_go(ctx, scenario, new_site_pairs, closed)

    # Pharmacies (and any other kind closed): people newly without one within the threshold.
    pharmacy_rows = []
    for key in [k for k in ctx.nearest if k[1] == "pharmacy"]:
        before = ctx.nearest[key]
        after = _nearest_after(ctx, key, closed, new_site_pairs)
        pharmacy_rows.append(
            pd.DataFrame(
                {
                    "lsoa21_code": before.index,
                    "profile": key[0],
                    "before_minutes": before.to_numpy(),
                    "after_minutes": after.to_numpy(),
                }
            )
        )
    pharmacy = (
        pd.concat(pharmacy_rows, ignore_index=True)
        if pharmacy_rows
        else pd.DataFrame(columns=["lsoa21_code", "profile", "before_minutes", "after_minutes"])
    )
    pharmacy = pharmacy.merge(
        ctx.areas[["population", "imd_decile"]], left_on="lsoa21_code", right_index=True
    )
    distance = _pharmacy_distance(ctx, closed, scenario)
    return ScenarioResult(
        scenario,
        lsoas,
        practices,
        pharmacy,
        distance,
        _newly_beyond(ctx, lsoas, pharmacy, distance),
        unplaced,
        ctx.model,
        ctx.mode,
    )


def new_site_pairs(store: Store, ctx: Context, scenario: Scenario) -> pd.DataFrame | None:
    """Travel times from the context's LSOAs to each new site, for every profile in the context."""

    if not scenario.open:
        return None
    origins = store.df(
        "SELECT lsoa21_code, centroid_easting AS easting, centroid_northing AS northing FROM small_areas"
    )
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
                    raise InputError(
                        "the new site is too far from the road network to reach", value=site.code
                    )
                pairs = pairs_within(
                    network, snap(network, origins, side="origin"), snapped, cutoff, distances=False
                )
            frames.append(pairs.assign(profile=profile, kind=site.kind))
    return pd.concat(frames, ignore_index=True)


def run_scenario(store: Store, scenario: Scenario, *, mode: str | None = None) -> ScenarioResult:
    ctx = load_context(store, mode=mode)
    return evaluate(ctx, scenario, new_site_pairs=new_site_pairs(store, ctx, scenario))


# --- ranking every single closure -------------------------------------------------------------------

_RANK_CONTEXT: dict = {}


def _score(code: str) -> dict:
    return _RANK_CONTEXT["local"].closure_scores(_RANK_CONTEXT["kind"], code)


def closure_scores(ctx: Context, kind: str, code: str | int) -> dict:
    """The ranking's scores for closing ``code`` alone (a site of ``kind``), evaluated on ``ctx``
    (in a ``LocalContexts`` cut, the site's integer code)."""
    # A cut context keys sites by integer; the scenario only carries the code through to them.
    result = evaluate(ctx, Scenario(f"close {code}", close=[code]))  # type: ignore[list-item]
    newly = result.newly_beyond
    if kind == "pharmacy":  # pharmacy measures: walking minutes and the 1.6 km straight-line distance
        frame, profile = result.pharmacy, "walk"
        newly = newly[newly["service"] == "pharmacy"]
    else:
        frame, profile = result.lsoas, "drive"
        newly = newly[newly["service"] == "GP practice"]
    part = frame[frame["profile"] == profile]
    worse = part[part["after_minutes"] - part["before_minutes"] > 1e-9]
    extra = np.minimum(
        worse["after_minutes"] - worse["before_minutes"], 60
    )  # cap "beyond the cutoff" for the weighting
    scores = {
        "code": code,
        "people_further": float(worse["population"].sum()),
        "deprivation_weighted_person_minutes": float(
            (worse["population"] * extra * deprivation_priority_weight(worse["imd_decile"])).sum()
        ),
    }
    by_profile = newly.groupby("profile")["people_newly_beyond"].sum()
    if kind == "pharmacy":
        distinct = _newly_beyond_lsoas(result, ctx.areas.index)
        people = ctx.areas["population"].fillna(0)[distinct]
        deciles = ctx.areas["imd_decile"][distinct]
        scores |= {
            "people_newly_beyond_walk_threshold": float(by_profile.get("walk", 0.0)),
            "people_newly_beyond_1600m": float(by_profile.get("straight line", 0.0)),
            "people_newly_beyond_either": float(people.sum()),
            "deprivation_weighted_people_newly_beyond": float(
                (people * deprivation_priority_weight(deciles)).sum()
            ),
            "most_deprived_fifth_newly_beyond": float(people[(deciles <= 2).to_numpy()].sum()),
            # Had one within the stored walking reach (the run's cutoff), and none after.
            "lsoas_newly_with_no_pharmacy_in_walking_reach": int(
                (
                    (part["before_minutes"] <= ctx.cutoff[("walk", "pharmacy")])
                    & (part["after_minutes"] > ctx.cutoff[("walk", "pharmacy")])
                ).sum()
            ),
        }
        return scores
    receivers = result.practices[result.practices["patients_gained"] > 0]
    rise = (receivers["per_gp_fte_after"] - receivers["per_gp_fte_before"]).dropna()
    strained = receivers.loc[rise.idxmax()] if len(rise) else None
    distinct = newly[newly["profile"] == "walk or drive"]
    return scores | {
        "people_newly_beyond_threshold": float(distinct["people_newly_beyond"].sum()),
        "people_newly_beyond_walk_threshold": float(by_profile.get("walk", 0.0)),
        "people_newly_beyond_drive_threshold": float(by_profile.get("drive", 0.0)),
        "most_deprived_fifth_newly_beyond": float(
            distinct.loc[distinct["imd_decile"] <= 2, "people_newly_beyond"].sum()
        ),
        # No practice takes patients: no rise; some do but none has a GP FTE: unknown.
        "largest_rise_in_patients_per_gp_fte": float(rise.max())
        if len(rise)
        else 0.0
        if receivers.empty
        else np.nan,
        "largest_rise_at": strained["practice_code"] if strained is not None else "",
        "largest_rise_gp_fte_estimated": bool(strained["gp_fte_estimated"])
        if strained is not None
        else False,
        "unplaced_patients": result.unplaced_patients,
    }


class LocalContexts:
    """Sub-contexts for one closure at a time: only the LSOAs a closure can touch (issue #16 item 3).

    Closing a site changes nothing for an LSOA without a pair, a flow, a nearest site or a nearby
    pharmacy at that site: its minutes and its patients' practices stay as they are, and the Huff
    shares of its flows do not change. So a closure is evaluated on the rows of the LSOAs it
    touches alone, at a cost that grows with how many LSOAs reach the site, not with the area.
    Each LSOA keeps all its rows (every practice left in its reach competes for its patients), in
    their original order, so the choice model sees exactly what a whole-area evaluation sees.
    """

    def __init__(self, ctx: Context, kind: str | None = None):
        if kind is not None:
            ctx = _only_kind(ctx, kind)
        # Every LSOA and site code as an integer: a closure tests membership and groups its cut rows
        # by code several times, and over strings each pass hashes every row (England: 0.2 s a
        # closure). ``lsoa_codes[i]`` / ``site_codes[j]`` turn them back into codes.
        self.lsoa_codes = ctx.areas.index.astype(object)
        site_labels = [ctx.practices.index.to_numpy(object), ctx.sites["code"].to_numpy(object)]
        site_labels += [f["destination_id"].to_numpy(object) for f in ctx.pairs.values()]
        site_labels += [ctx.flows["destination_id"].to_numpy(object)]
        site_labels += [ctx.pharmacies_near["destination_id"].to_numpy(object)]
        site_labels += [s.to_numpy(object) for s in ctx.nearest_site.values()]
        self.site_codes = pd.Index(pd.unique(np.concatenate(site_labels)))
        areas = ctx.areas.set_axis(pd.RangeIndex(len(ctx.areas), name=ctx.areas.index.name))
        practices = pd.Index(self.site_codes.get_indexer(ctx.practices.index), name=ctx.practices.index.name)
        self.ctx = replace(
            ctx,
            areas=areas,
            practices=ctx.practices.set_axis(practices),
            sites=ctx.sites.assign(code=self.site_codes.get_indexer(ctx.sites["code"])),
        )
        self._frames: dict[tuple, pd.DataFrame] = {("pairs", *k): f for k, f in ctx.pairs.items()}
        self._frames |= {("flows",): ctx.flows, ("near",): ctx.pharmacies_near}
        self._series: dict[tuple, pd.Series] = {("nearest", *k): s for k, s in ctx.nearest.items()}
        self._series |= {("nearest_site", *k): s for k, s in ctx.nearest_site.items()}
        self._rows: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}  # rows by LSOA: order, starts
        self._at: dict[tuple, np.ndarray] = {}  # each series' LSOAs as positions in the areas
        touches: dict[int, list[np.ndarray]] = {}
        for name, frame in self._frames.items():
            at = self.lsoa_codes.get_indexer(frame["origin_id"])
            site = self.site_codes.get_indexer(frame["destination_id"])
            # Rows of LSOAs outside the areas are never cut into a context, so -1 never reaches one.
            self._frames[name] = frame = frame.assign(origin_id=at, destination_id=site)
            order = np.argsort(at, kind="stable")
            self._rows[name] = (order, np.searchsorted(at[order], np.arange(len(areas) + 1)))
            for code, rows in frame.groupby("destination_id", sort=False).indices.items():
                touches.setdefault(code, []).append(at[rows])
        for name, series in self._series.items():
            at = self.lsoa_codes.get_indexer(series.index)
            values = self.site_codes.get_indexer(series) if name[0] == "nearest_site" else series.to_numpy()
            self._series[name] = pd.Series(values, index=at)
            self._at[name] = at
            if name[0] == "nearest_site":
                for code, rows in pd.Series(values).groupby(values, sort=False).indices.items():
                    touches.setdefault(code, []).append(at[rows])
        self._touches = {code: np.unique(np.concatenate(parts)) for code, parts in touches.items()}

    def closure_scores(self, kind: str, closed: str) -> dict:
        """``closure_scores`` for closing ``closed`` alone, on its cut context, with codes as given."""
        # A site with no code here (not located, so in no travel time) touches no LSOA: -1.
        code = int(self.site_codes.get_indexer([closed])[0])
        scores = closure_scores(self.context(closed), kind, code)
        scores["code"] = closed
        if "largest_rise_at" in scores and scores["largest_rise_at"] != "":
            scores["largest_rise_at"] = self.site_codes[scores["largest_rise_at"]]
        return scores

    def context(self, *closed: str) -> Context:
        """The context cut to the LSOAs that closing any of ``closed`` touches, its codes as integers.

        Each of those LSOAs keeps all its rows, so a ``LocalContexts`` of this cut scores each of
        ``closed`` as the whole context does (a closure-ranking batch, ``rank_closures``).
        """
        codes = self.site_codes.get_indexer(list(closed))
        touched = [self._touches[c] for c in codes if c in self._touches]
        lsoas = np.unique(np.concatenate(touched)) if touched else np.array([], dtype=int)
        lsoas = lsoas[lsoas >= 0]  # LSOAs outside the context's areas are assessed in neither
        cut: dict[tuple, pd.DataFrame | pd.Series] = {}
        for name, frame in self._frames.items():
            order, starts = self._rows[name]
            rows = [order[starts[i] : starts[i + 1]] for i in lsoas]
            cut[name] = frame.iloc[np.sort(np.concatenate(rows)) if rows else order[:0]]
        chosen = np.zeros(len(self.ctx.areas), bool)
        chosen[lsoas] = True
        for name, series in self._series.items():
            at = self._at[name]
            cut[name] = series[(at >= 0) & chosen[at]]
        return replace(
            self.ctx,
            areas=self.ctx.areas.iloc[lsoas],
            pairs={k: cut[("pairs", *k)] for k in self.ctx.pairs},
            nearest={k: cut[("nearest", *k)] for k in self.ctx.nearest},
            nearest_site={k: cut[("nearest_site", *k)] for k in self.ctx.nearest_site},
            flows=cut[("flows",)],
            pharmacies_near=cut[("near",)],
        )


def _only_kind(ctx: Context, kind: str) -> Context:
    """The context with the travel times, flows and nearby pharmacies of other kinds of site emptied.

    Closing a site of ``kind`` changes nothing for another kind: its minutes stay as they are, so
    its rows can only add work, never a change. A ranking of ``kind`` keeps its scores exactly.
    """

    def mine(key: tuple[str, str]) -> bool:
        return key[1] == kind

    return replace(
        ctx,
        pairs={k: f if mine(k) else f.iloc[:0] for k, f in ctx.pairs.items()},
        nearest={k: s if mine(k) else s.iloc[:0] for k, s in ctx.nearest.items()},
        nearest_site={k: s if mine(k) else s.iloc[:0] for k, s in ctx.nearest_site.items()},
        flows=ctx.flows if kind == "gp" else ctx.flows.iloc[:0],
        pharmacies_near=ctx.pharmacies_near if kind == "pharmacy" else ctx.pharmacies_near.iloc[:0],
    )


def _newly_beyond_lsoas(result: ScenarioResult, index: pd.Index) -> np.ndarray:
    """LSOAs newly beyond 20 minutes' walk or 1.6 km in a straight line of a pharmacy (each once)."""
    before, after = _within(result.pharmacy, "walk", DEFAULT_THRESHOLD_MINUTES["walk"], index)
    distance = result.pharmacy_distance.set_index("lsoa21_code").reindex(index, fill_value=0)
    return (before & ~after) | (
        (distance["within_1600m_before"] > 0) & (distance["within_1600m_after"] == 0)
    ).to_numpy()


def rank_closures(
    store: Store, kind: str = "gp", *, mode: str | None = None, workers: int = 1, scheduler: Any = None
) -> pd.DataFrame:
    """Score closing each site of ``kind`` alone, worst first, in ``workers`` processes (default one;
    the CLI passes every core), or in batches on the dask.distributed cluster at ``scheduler``.

    GP practices: people whose drive to the nearest practice gets longer; deprivation-weighted
    person-minutes (extra minutes, capped at 60, times people, times 1 + 0.1 x (10 - IMD decile):
    1.9 in the most deprived decile, 1 in the least); people newly beyond 20 minutes' walk or 15
    minutes' drive (each person once, then walk and drive separately, and those in the most
    deprived fifth); the largest rise in patients per GP FTE at a practice that takes patients;
    patients with no practice left in reach (every practice is ranked, those whose patients cannot
    be placed included).

    Pharmacies: the same on walking minutes to the nearest pharmacy; people newly beyond 20
    minutes' walk and beyond 1.6 km in a straight line, and either (each person once), also
    deprivation-weighted and for the most deprived fifth; LSOAs that had a pharmacy within the
    stored walking reach (the run's cutoff) and have none after.
    """
    ctx = load_context(store, mode=mode)
    codes = store.df("SELECT code FROM sites WHERE kind = ? ORDER BY code", [kind])["code"].tolist()
    if not codes:
        raise StoreError(f"no {kind} sites to rank")
    if kind == "pharmacy" and ("walk", "pharmacy") not in ctx.nearest:
        raise StoreError(
            f"no walking times to pharmacies ({ctx.mode}); run `nearcare travel-times --mode walk --to pharmacy`"
        )
    local = LocalContexts(ctx, kind)
    if scheduler is not None:
        scores = _rank_on_dask(local, kind, codes, scheduler)
    else:
        scores = _rank_here(local, kind, codes, workers)
    names = store.df("SELECT code, name FROM sites").set_index("code")["name"]
    table = pd.DataFrame(scores)
    table.insert(1, "name", table["code"].map(names))
    second = "people_newly_beyond_either" if kind == "pharmacy" else "people_further"
    return table.sort_values(
        ["deprivation_weighted_person_minutes", second, "code"], ascending=[False, False, True]
    ).reset_index(drop=True)


def _rank_here(local: LocalContexts, kind: str, codes: list[str], workers: int) -> list[dict]:
    """Each closure on its cut of ``local``, in ``workers`` forked processes that share it."""
    import multiprocessing as mp

    _RANK_CONTEXT.update(local=local, kind=kind)
    try:
        if workers > 1 and len(codes) > 8:
            with mp.get_context("fork").Pool(workers) as pool:
                scores = list(
                    steps(pool.imap(_score, codes, chunksize=4), f"closing each {kind}", total=len(codes))
                )
        else:
            scores = [_score(c) for c in steps(codes, f"closing each {kind}", total=len(codes))]
    finally:
        _RANK_CONTEXT.clear()
    return scores


@dataclass(frozen=True)
class RankBatch:
    """A closure-ranking task: ``codes`` (integer site codes of the client's ``LocalContexts``) and
    the context cut to every LSOA any of them touches (so each scores as on the whole area)."""

    kind: str
    codes: list[int]
    ctx: Context


def score_batch(batch: RankBatch) -> list[dict]:
    """The closure scores of each code in ``batch``, each on its own cut (run on a Dask worker)."""
    local = LocalContexts(batch.ctx)
    return [local.closure_scores(batch.kind, code) for code in batch.codes]  # type: ignore[arg-type]


RANK_BATCH = 64  # closures per Dask task: 20-220 MB of cut context each at England's density


def _rank_on_dask(local: LocalContexts, kind: str, codes: list[str], scheduler: Any) -> list[dict]:
    """Each closure scored on the Dask cluster at ``scheduler``, in batches of neighbouring sites.

    Neighbours touch mostly the same LSOAs, so a batch's cut is little larger than one closure's,
    and each task carries only its cut (never the store). Batches are built as tasks are taken.
    """
    order = _along_a_curve(local, codes)
    groups = [order[i : i + RANK_BATCH] for i in range(0, len(order), RANK_BATCH)]
    ints = local.site_codes.get_indexer(codes)

    def batches() -> Iterator[RankBatch]:
        for group in groups:
            chosen = [codes[i] for i in group]
            yield RankBatch(kind, [int(ints[i]) for i in group], local.context(*chosen))

    scores: list[dict] = [{}] * len(codes)
    done = distributed.completed(score_batch, batches(), scheduler=scheduler, in_flight=8)
    for g, batch_scores in steps(done, f"closing each {kind} (batches on {scheduler})", total=len(groups)):
        for i, row in zip(groups[g], batch_scores, strict=True):
            row["code"] = codes[i]
            if row.get("largest_rise_at", "") != "":
                row["largest_rise_at"] = local.site_codes[row["largest_rise_at"]]
            scores[i] = row
    return scores


def _along_a_curve(local: LocalContexts, codes: list[str]) -> list[int]:
    """Positions of ``codes`` along a Hilbert curve through 1 km squares, so that a run of them is
    a compact patch of neighbouring sites; sites with no coordinates go last."""
    sites = local.ctx.sites.drop_duplicates("code").set_index("code")
    at = sites.reindex(local.site_codes.get_indexer(codes))
    return hilbert_order(at["easting"].to_numpy(float), at["northing"].to_numpy(float)).tolist()


def write_outputs(result: ScenarioResult, out: Path) -> list[Path]:
    """Write the scenario's tables as CSV into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in (
        ("lsoa_minutes_to_gp", result.lsoas),
        ("practices", result.practices),
        ("unplaced_patients", result.unplaced),
        ("lsoa_minutes_to_pharmacy", result.pharmacy),
        ("lsoa_pharmacies_within_1600m", result.pharmacy_distance),
        ("people_newly_beyond_thresholds", result.newly_beyond),
    ):
        path = out / f"{name}.csv"
        frame.to_csv(path, index=False)
        written.append(path)
    return written
