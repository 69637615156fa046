"""Neighbourhoods: group contiguous LSOAs into neighbourhood health areas, and profile each one.

Design. Within each unit of the chosen boundary (sub-ICB location, local authority, or none),
LSOAs that share a boundary (rook contiguity, libpysal) are grouped by the max-p regionalisation
heuristic (Duque, Anselin & Rey 2012; PySAL ``spopt``): as many regions as possible, each with at
least ``min_population`` people, compact because regions are kept alike in their centroid
coordinates. Max-p does not cap a region's size; neighbourhoods above ``max_population`` are
reported, as is every other constraint: contiguity, the boundary, and how much of each GP
practice's registered population falls in one neighbourhood (modelled where no LSOA-level
registrations are imported).

Load. A user's own neighbourhoods: a CSV of ``lsoa21_code,neighbourhood``, or of
``practice_code,neighbourhood`` (groupings such as PCNs), where each LSOA joins the grouping that
holds most of its (modelled) registered patients, or, without travel times, of its nearest
practice. The file goes through the import step of ``nearcare.sources``: recorded in provenance
(kind ``neighbourhoods``, publisher ``user``), each row carrying its ``source_id``; loading again,
or designing, replaces the stored neighbourhoods and the earlier file's provenance row.

Profiles. Per neighbourhood: population, share aged 65+ (modelled), people in each national IMD
quintile, QOF prevalence (the practices inside, weighted by list size), services inside and minutes
to the nearest, need-weighted GP access, and a suggested team: staff per profession from
``TEAM_PER_10K_NEED`` (per 10,000 need-weighted people; nearcare's planning ratios, to be replaced
by local ones) for the whole area, shared among neighbourhoods in proportion to need with
``nearcare.allocation.allocate``.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from nearcare._errors import InputError, StoreError
from nearcare._progress import step
from nearcare.allocation import allocate
from nearcare.area import small_areas_frame
from nearcare.flows import patient_flows
from nearcare.need import need_weighted_population
from nearcare.sources import Parsed, forget_user_files, import_user_file
from nearcare.sources._read import read_rows
from nearcare.store import Store

NEIGHBOURHOODS_KIND = "neighbourhoods"  # provenance kind of a user's neighbourhood file
DEFAULT_MIN_POPULATION = 30_000
DEFAULT_MAX_POPULATION = 50_000
BOUNDARIES = {"sub-icb": "sub_icb_code", "lad": "lad_code", "none": None}
# Staff per 10,000 need-weighted people: planning ratios written down for users to change.
TEAM_PER_10K_NEED = {
    "GPs (FTE)": 5.8,
    "general practice nurses": 2.7,
    "district and community nurses": 3.5,
    "clinical pharmacists": 1.0,
    "physiotherapists (first contact)": 0.7,
    "paramedics": 0.5,
    "mental health practitioners": 0.5,
    "social prescribing link workers": 0.5,
    "care coordinators": 0.6,
    "health and wellbeing coaches": 0.3,
}


def _contiguity(frame):
    import libpysal

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return libpysal.weights.Rook.from_dataframe(frame, use_index=True, silence_warnings=True)


class _FastMoves:
    """spopt's ``_pick_move_area`` (0.6-0.7) with the same answer in the same order, without its cost.

    spopt's simulated annealing asks, for every area a region could give up, whether the region is
    still contiguous without it, by slicing a SciPy sparse matrix and counting its connected parts:
    most of the demo's design time went on that slicing. Here the same question is answered by a
    breadth-first search over the same weights (a region is one part exactly when a search from
    one of its areas reaches all the others), so the regions designed are those spopt designs.
    """

    def __init__(self) -> None:
        self.weights = None
        self.neighbours: list[list[int]] = []

    def _read(self, weights) -> None:
        """Neighbours by position from the weights spopt passes (its own, after joining islands)."""
        undirected = (weights.sparse + weights.sparse.T).tocsr()  # weak connectivity, as spopt asks
        self.weights, self.neighbours = (
            weights,
            [
                undirected.indices[undirected.indptr[i] : undirected.indptr[i + 1]].tolist()
                for i in range(undirected.shape[0])
            ],
        )

    def connected(self, areas: np.ndarray) -> bool:
        inside = set(areas.tolist())
        start = next(iter(inside))
        seen, frontier = {start}, [start]
        while frontier:
            for j in self.neighbours[frontier.pop()]:
                if j in inside and j not in seen:
                    seen.add(j)
                    frontier.append(j)
        return len(seen) == len(inside)

    def __call__(
        self, labels, region_lists, region_spatial_attrs, threshold_array, weight, distance, threshold
    ):
        if weight is not self.weights:
            self._read(weight)
        potential_areas = []
        for k, v in region_spatial_attrs.items():
            rla = np.array(region_lists[k])
            for pasi in np.where(v - threshold_array[rla] > threshold)[0]:
                if self.connected(np.delete(rla, pasi)):
                    potential_areas.append(rla[pasi])
        return potential_areas


def _areas(store: Store):
    store.require("small_areas", "run `nearcare build --area CODE` first")
    frame = small_areas_frame(
        store,
        "lsoa21_code, sub_icb_code, lad_code, population, imd_decile, "
        "centroid_easting AS x, centroid_northing AS y",
    )
    return frame.sort_values("lsoa21_code").reset_index(drop=True)


def design(
    store: Store,
    *,
    min_population: float = DEFAULT_MIN_POPULATION,
    max_population: float = DEFAULT_MAX_POPULATION,
    boundary: str = "sub-icb",
    seed: int = 0,
) -> pd.DataFrame:
    """Design neighbourhoods; returns lsoa21_code -> neighbourhood, and stores them."""
    if boundary not in BOUNDARIES:
        raise InputError(f"boundary must be one of {', '.join(BOUNDARIES)}", value=boundary)
    if not 0 < min_population <= max_population:
        raise InputError(
            "population bounds must satisfy 0 < minimum <= maximum",
            value=f"{min_population}-{max_population}",
        )
    areas = _areas(store)
    column = BOUNDARIES[boundary]
    groups = areas.groupby(areas[column].fillna("unknown") if column else pd.Series("all", index=areas.index))
    labels = pd.Series("", index=areas.index, dtype=object)
    with step("designing neighbourhoods (LSOAs assigned)", total=len(areas)) as advance:
        for unit, part in groups:
            labels[part.index] = _design_unit(str(unit), part.reset_index(), min_population, seed)
            advance(len(part))
    result = pd.DataFrame({"lsoa21_code": areas["lsoa21_code"], "neighbourhood": labels.to_numpy()})
    _save(store, result, f"max-p, {min_population:,.0f}+ people, within {boundary}")
    return result


def _design_unit(unit: str, part: pd.DataFrame, min_population: float, seed: int) -> list[str]:
    """Neighbourhood labels for the LSOAs of one boundary unit, in ``part``'s order."""
    from spopt.region import MaxPHeuristic
    from spopt.region import maxp as maxp_module

    if part["population"].sum() < 2 * min_population:
        # Room for one neighbourhood only (and spopt's max-p does not return when p = 1).
        return [f"{unit}-01"] * len(part)
    weights = _contiguity(part)
    # The heuristic draws from NumPy's global generator: seed it, then give the caller's state back.
    caller_state = np.random.get_state()  # noqa: NPY002
    np.random.seed(seed)  # noqa: NPY002
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MaxPHeuristic(
            part,
            weights,
            ["x", "y"],
            "population",
            min_population,
            top_n=2,
            max_iterations_construction=99,
            max_iterations_sa=2,
        )
        original = maxp_module._pick_move_area
        maxp_module._pick_move_area = _FastMoves()  # same moves; see _FastMoves
        try:
            model.solve()
        finally:
            maxp_module._pick_move_area = original
            np.random.set_state(caller_state)  # noqa: NPY002
    found = np.asarray(model.labels_)
    names = {label: i + 1 for i, label in enumerate(sorted(set(found) - {0, -1}))}
    if not names:  # no region reaches the minimum (e.g. islands): one neighbourhood, reported
        names = dict.fromkeys(set(found), 1)
    numbered = [names.get(label, 0) for label in found]
    # Enclaves max-p left unassigned join the neighbouring region with the smallest population.
    for i, number in enumerate(numbered):
        if number == 0:
            neighbours = [numbered[j] for j in weights.neighbors[i] if numbered[j]]
            numbered[i] = (
                min(
                    neighbours,
                    key=lambda n: sum(p for p, k in zip(part["population"], numbered, strict=True) if k == n),
                )
                if neighbours
                else max(numbered) + 1
            )
    return [f"{unit}-{n:02d}" for n in numbered]


def _save(store: Store, assignment: pd.DataFrame, method: str) -> None:
    """Replace the stored neighbourhoods with designed ones (from no file: source_id NULL)."""
    with store.transaction() as con:
        con.execute("DELETE FROM neighbourhoods")
        forget_user_files(store, NEIGHBOURHOODS_KIND)
        store.insert("neighbourhoods", assignment.assign(method=method))


def load(store: Store, path: str | Path) -> pd.DataFrame:
    """Load a user's neighbourhoods (LSOA or practice groupings; see the module notes) and store them."""

    path = Path(path)
    names, rows, lines = read_rows(path, header=True)
    if "neighbourhood" not in names or not ({"lsoa21_code", "practice_code"} & set(names)):
        raise InputError(
            "expected columns lsoa21_code,neighbourhood or practice_code,neighbourhood", path=path, line=1
        )
    key = "lsoa21_code" if "lsoa21_code" in names else "practice_code"
    k, n = names.index(key), names.index("neighbourhood")
    frame = pd.DataFrame(
        {key: [r[k].strip() for r in rows], "neighbourhood": [r[n].strip() for r in rows], "_line": lines}
    )
    empty = frame["neighbourhood"] == ""
    if empty.any():
        raise InputError(
            "required value is missing",
            path=path,
            line=int(frame.loc[empty, "_line"].iloc[0]),
            field="neighbourhood",
        )
    twice = frame[frame.duplicated(key, keep=False)].drop_duplicates([key, "neighbourhood"])
    clash = twice[twice.duplicated(key, keep=False)]
    if len(clash):
        first = clash.iloc[0]
        raise InputError(
            f"{first[key]} is in two neighbourhoods ({', '.join(sorted(clash.loc[clash[key] == first[key], 'neighbourhood']))})",
            path=path,
            line=int(clash[clash[key] == first[key]]["_line"].max()),
            field=key,
        )
    frame = frame.drop_duplicates(key)
    areas = store.df("SELECT lsoa21_code FROM small_areas")["lsoa21_code"]
    if key == "lsoa21_code":
        bad = frame[~frame[key].str.fullmatch(r"E01\d{6}")]
        if len(bad):
            raise InputError(
                "not an LSOA code",
                path=path,
                line=int(bad["_line"].iloc[0]),
                field=key,
                value=bad[key].iloc[0],
            )
        unknown = frame[~frame[key].isin(areas)]
        if len(unknown):
            raise InputError(
                "LSOA not in the built area",
                path=path,
                line=int(unknown["_line"].iloc[0]),
                field=key,
                value=unknown[key].iloc[0],
            )
        assignment = frame[["lsoa21_code", "neighbourhood"]]
    else:
        known = set(store.df("SELECT practice_code FROM practices")["practice_code"])
        unknown = frame[~frame[key].isin(known)]
        if len(unknown):
            raise InputError(
                "practice not in the built area",
                path=path,
                line=int(unknown["_line"].iloc[0]),
                field=key,
                value=unknown[key].iloc[0],
            )
        assignment = _lsoas_from_practices(store, frame.set_index("practice_code")["neighbourhood"])
    missing = sorted(set(areas) - set(assignment["lsoa21_code"]))
    if missing:
        raise InputError(
            f"{len(missing)} LSOAs of the area are in no neighbourhood (every LSOA needs one)",
            path=path,
            value=missing[0],
        )
    rows = assignment.reset_index(drop=True).assign(method=f"loaded from {path.name}")
    import_user_file(
        store,
        NEIGHBOURHOODS_KIND,
        path,
        Parsed({"neighbourhoods": rows}),
        clear_sql="DELETE FROM neighbourhoods",
    )
    return assignment


def _lsoas_from_practices(store: Store, grouping: pd.Series) -> pd.DataFrame:
    """Each LSOA joins the grouping holding most of its (modelled) patients, or its nearest practice's."""
    flows = _patient_flows(store)
    if flows is not None:
        flows = flows[flows["destination_id"].isin(grouping.index)].assign(
            neighbourhood=lambda f: f["destination_id"].map(grouping)
        )
        best = (
            flows.groupby(["origin_id", "neighbourhood"])["patients"]
            .sum()
            .reset_index()
            .sort_values("patients", ascending=False)
            .drop_duplicates("origin_id")
        )
        return best.rename(columns={"origin_id": "lsoa21_code"})[["lsoa21_code", "neighbourhood"]]
    from scipy.spatial import cKDTree

    areas = store.df("SELECT lsoa21_code, centroid_easting AS x, centroid_northing AS y FROM small_areas")
    sites = store.df(
        "SELECT code, easting AS x, northing AS y FROM sites WHERE kind = 'gp' AND easting IS NOT NULL"
    )
    sites = sites[sites["code"].isin(grouping.index)]
    _, nearest = cKDTree(sites[["x", "y"]].to_numpy()).query(areas[["x", "y"]].to_numpy())
    return pd.DataFrame(
        {
            "lsoa21_code": areas["lsoa21_code"],
            "neighbourhood": grouping.reindex(sites["code"].to_numpy()[nearest]).to_numpy(),
        }
    )


def _patient_flows(store: Store) -> pd.DataFrame | None:
    """Patients per LSOA per practice (real, or modelled by ``nearcare.flows``), if travel times exist."""
    try:
        return patient_flows(store)[0]
    except StoreError:
        return None


@dataclass
class DesignCheck:
    neighbourhoods: (
        pd.DataFrame
    )  # neighbourhood -> lsoas, population, within_bounds, contiguous, boundary_units, compactness
    practice_cohesion: pd.DataFrame | None  # practice -> share of its patients in its main neighbourhood
    min_population: float
    max_population: float

    @property
    def summary(self) -> str:
        n = self.neighbourhoods
        text = (
            f"{len(n)} neighbourhoods; {int(n['within_bounds'].sum())} within {self.min_population:,.0f}-"
            f"{self.max_population:,.0f} people; {int(n['contiguous'].sum())} contiguous; "
            f"{int((n['boundary_units'] == 1).sum())} inside one boundary unit"
        )
        if self.practice_cohesion is not None and len(self.practice_cohesion):
            share = self.practice_cohesion["share_in_main"]
            text += (
                f"; practices' registered patients in their main neighbourhood: median {100 * share.median():.0f}%, "
                f"{int((share >= 0.5).sum())} of {len(share)} practices at least half (modelled)"
            )
        return text


def check(
    store: Store,
    *,
    min_population: float = DEFAULT_MIN_POPULATION,
    max_population: float = DEFAULT_MAX_POPULATION,
    boundary: str = "sub-icb",
) -> DesignCheck:
    """How well the stored neighbourhoods meet each constraint."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    assignment = store.df("SELECT lsoa21_code, neighbourhood FROM neighbourhoods")
    if assignment.empty:
        raise StoreError("no neighbourhoods yet: run `nearcare neighbourhoods design` or `load`")
    areas = _areas(store).merge(assignment, on="lsoa21_code")
    weights = _contiguity(areas)
    rows = []
    column = BOUNDARIES.get(boundary)
    for name, part in areas.groupby("neighbourhood"):
        index = part.index.to_numpy()
        position = {v: i for i, v in enumerate(index)}
        edges = [(position[i], position[j]) for i in index for j in weights.neighbors[i] if j in position]
        graph = csr_matrix(
            (np.ones(len(edges)), ([a for a, _ in edges], [b for _, b in edges])), shape=(len(index),) * 2
        )
        pieces = connected_components(graph, directed=False)[0] if len(index) > 1 else 1
        shape = part.dissolve().geometry.iloc[0]
        rows.append(
            {
                "neighbourhood": name,
                "lsoas": len(part),
                "population": part["population"].sum(),
                "contiguous": pieces == 1,
                "boundary_units": part[column].nunique() if column else 1,
                "compactness": 4 * np.pi * shape.area / shape.length**2,
            }
        )  # Polsby-Popper, 1 = a circle
    frame = pd.DataFrame(rows)
    frame["within_bounds"] = frame["population"].between(min_population, max_population)
    flows = _patient_flows(store)
    cohesion = None
    if flows is not None:
        flows = flows.merge(assignment, left_on="origin_id", right_on="lsoa21_code")
        by = flows.groupby(["destination_id", "neighbourhood"])["patients"].sum()
        totals = by.groupby(level=0).sum()
        cohesion = (
            (by.groupby(level=0).max() / totals)
            .rename("share_in_main")
            .reset_index()
            .rename(columns={"destination_id": "practice_code"})
        )
    return DesignCheck(frame, cohesion, min_population, max_population)


def profiles(store: Store, ratios: dict[str, float] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per neighbourhood: the profile, and the suggested team (staff per profession)."""

    ratios = ratios or TEAM_PER_10K_NEED
    assignment = store.df("SELECT lsoa21_code, neighbourhood FROM neighbourhoods")
    if assignment.empty:
        raise StoreError("no neighbourhoods yet: run `nearcare neighbourhoods design` or `load`")
    need = need_weighted_population(store).reset_index()
    areas = need.merge(assignment, on="lsoa21_code")
    areas["quintile"] = (areas["imd_decile"] + 1) // 2
    profile = areas.groupby("neighbourhood").apply(
        lambda g: pd.Series(
            {
                "lsoas": len(g),
                "population": g["population"].sum(),
                "need_weighted_population": g["need_weighted_population"].sum(),
                "pct_65_plus_modelled": 100
                * np.average(g["share_65_plus"].fillna(0), weights=g["population"]),
                **{
                    f"pct_imd_quintile_{q}": 100
                    * g.loc[g["quintile"] == q, "population"].sum()
                    / g["population"].sum()
                    for q in (1, 5)
                },
            }
        ),
        include_groups=False,
    )
    sites = store.df("SELECT s.kind, n.neighbourhood FROM sites s JOIN neighbourhoods n USING (lsoa21_code)")
    counts = sites.groupby(["neighbourhood", "kind"]).size().unstack(fill_value=0)
    for kind, label in (
        ("gp", "gp_practices"),
        ("pharmacy", "pharmacies"),
        ("dentist", "dental_practices"),
        ("optometrist", "opticians_2014"),
    ):
        profile[label] = counts[kind].reindex(profile.index, fill_value=0) if kind in counts else 0
    defibs = store.df("SELECT easting, northing FROM defibrillators")
    if len(defibs):
        import geopandas as gpd

        polygons = small_areas_frame(store, "lsoa21_code").merge(assignment, on="lsoa21_code")
        points = gpd.GeoDataFrame(
            geometry=gpd.points_from_xy(defibs["easting"], defibs["northing"]), crs=polygons.crs
        )
        inside = gpd.sjoin(points, polygons, predicate="within").groupby("neighbourhood").size()
        profile["defibrillators"] = inside.reindex(profile.index, fill_value=0)
    access = store.df(
        "SELECT a.lsoa21_code, a.kind, a.nearest_minutes, a.e2sfca_need, s.population FROM access a "
        "JOIN small_areas s USING (lsoa21_code) WHERE a.profile = 'drive' AND a.mode = 'crowfly'"
    )
    if len(access):
        access = access.merge(assignment, on="lsoa21_code")
        for kind in ("gp", "pharmacy"):
            part = access[access["kind"] == kind]
            weighted = part.groupby("neighbourhood").apply(
                lambda g: np.average(g["nearest_minutes"], weights=g["population"]), include_groups=False
            )
            profile[f"drive_minutes_to_{kind}_crowfly"] = weighted.reindex(profile.index)
        gp = access[access["kind"] == "gp"]
        profile["gp_access_per_1000_need"] = (
            gp.groupby("neighbourhood")
            .apply(lambda g: np.average(g["e2sfca_need"], weights=g["population"]), include_groups=False)
            .reindex(profile.index)
        )
    qof = store.df(
        "SELECT q.practice_code, q.condition, q.prevalence_pct, p.patients, n.neighbourhood FROM qof_prevalence q "
        "JOIN practices p USING (practice_code) JOIN sites s ON s.code = p.practice_code "
        "JOIN neighbourhoods n ON n.lsoa21_code = s.lsoa21_code WHERE q.prevalence_pct IS NOT NULL"
    )
    for condition in ("HYP", "CHD", "AF", "HF"):
        part = qof[(qof["condition"] == condition) & qof["patients"].notna()]
        if len(part):
            profile[f"qof_{condition.lower()}_pct"] = (
                part.groupby("neighbourhood")
                .apply(lambda g: np.average(g["prevalence_pct"], weights=g["patients"]), include_groups=False)
                .reindex(profile.index)
            )
    team = pd.DataFrame(index=profile.index)
    total_need = profile["need_weighted_population"].sum()
    for role, per_10k in ratios.items():
        if per_10k < 0:
            raise InputError("team ratios cannot be negative", value=f"{role}: {per_10k}")
        team[role] = allocate(profile["need_weighted_population"], per_10k * total_need / 1e4)
    return profile.reset_index(), team.reset_index()


def parse_ratios(text: str | None) -> dict[str, float] | None:
    """'paramedics=0.8,clinical pharmacists=1.2' -> changes to the default ratios."""
    if not text:
        return None
    ratios = dict(TEAM_PER_10K_NEED)
    for part in text.split(","):
        match = re.fullmatch(r"\s*([^=]+?)\s*=\s*([0-9.]+)\s*", part)
        if not match:
            raise InputError("--ratios is a list like 'paramedics=0.8,clinical pharmacists=1.2'", value=part)
        if match.group(1) not in ratios:
            raise InputError(f"unknown profession; known: {', '.join(ratios)}", value=match.group(1))
        ratios[match.group(1)] = float(match.group(2))
    return ratios
