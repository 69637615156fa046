"""Defibrillators: a register with reports, walking coverage by time of day, deserts and best new sites.

Register. Defibrillators come from OpenStreetMap (``emergency=defibrillator``), from a CSV export
(columns below) and from public reports. Each has a status: ``registered`` (on The Circuit, the
national network 999 call handlers use), ``verified`` (checked by a guardian: a ``last_checked``
date) or ``reported`` (known, not checked); pads or batteries past their expiry are flagged.

CSV columns (header row; one defibrillator per row): ``id`` (required), ``lat`` and ``lon`` or
``postcode``, ``access`` (public | restricted), ``hours`` (``24/7`` or OpenStreetMap
``opening_hours`` such as ``Mo-Fr 08:00-18:00; Sa 09:00-13:00``), ``guardian``, ``registered``
(yes | no), ``pads_expiry``, ``battery_expiry``, ``last_checked`` (YYYY-MM-DD).

Reports: a sighting with a location (lat/lon or postcode), access, hours and whether it looks
registered. Each is matched to the nearest known defibrillator within ``MATCH_DISTANCE_M``;
otherwise it adds a new one with status ``reported``.

Provenance: every defibrillator row carries the ``source_id`` of the file it came from: the OSM
extract, or the CSV (kind ``defibrillator-csv``, publisher ``user``). One added by a report comes
from no file: its ``source_id`` is NULL and its record is the report (``defib_reports``, with the
time it was made; its ``defib_id`` is ``report-N``).

Availability by time of day: a defibrillator counts at a time if it is public and open then: day
is Wednesday 12:00, evening 20:00, night 03:00 of a fixed reference week (``REFERENCE_MONDAY``:
9-15 March 2026, Greenwich Mean Time, no public holiday), so results do not depend on the day they
are run. Hours are OpenStreetMap ``opening_hours`` read by the maintained ``opening-hours-py``
package: ``24/7 closed`` (out of service) is never available; hours past midnight run into the next
day (``Mo-Fr 22:00-02:00`` is open at 01:00 on Saturday); ``PH`` rules parse but never apply in
the reference week; ``sunrise``/``sunset`` are the sun's times at the defibrillator's own place on
the reference day (about 06:25 and 18:00 in the East Midlands: open at 12:00, closed at 20:00 and
03:00). Hours not recorded, not valid ``opening_hours`` (as in some OSM data; the register shows
why) or saying ``unknown`` are *unknown*: an outdoor defibrillator (``indoor=no``, or in a phone
box) then counts at all hours, any other in the day only (weekdays 08:00-18:00). A known
defibrillator without recorded hours takes those of its latest report. Where access is not
recorded, an outdoor one counts as public and any other as restricted. Reports and CSV rows with
hours that are not valid ``opening_hours`` are refused with the reason.

Coverage: residents are postcode points, each carrying an equal share of its LSOA's population;
a resident is covered if an available public defibrillator is within ``distance_m`` (default 200 m,
the distance within which 999 call handlers direct a caller to one; 500 m as a second band) along
the walking network. Residents whose postcode point is more than ``MAX_SNAP_M`` from the walking
network (outside the area it covers, or far from any path) are *not assessed*: counted and named
("not assessed: N people in M LSOAs ..."), and left out of the shares, the deserts and the siting.
Covered + not covered + not assessed = all residents.

Best new sites (maximal covering location problem; Church & ReVelle 1974): choose k candidate hosts
(pharmacies, GP practices, and OSM phone boxes, village halls, community centres, post offices,
places of worship and pubs) to maximise people newly covered at night (a new cabinet is public and
open at all hours)::

    maximise   sum_i w_i y_i
    subject to y_i <= sum_{j covers i} x_j,   sum_j x_j = k,   x, y binary

solved exactly with CBC (through PuLP; the solver is passed in) and greedily; the gap between them
and each chosen site's marginal gain are reported.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from nearcare._errors import InputError, StoreError
from nearcare.geo import from_wkb, in_england_box, normalise_postcode, to_bng, to_wgs84
from nearcare.need import deprivation_priority_weight
from nearcare.network import load_network
from nearcare.network.search import Points, pairs_within, snap
from nearcare.sources import Parsed, import_user_file
from nearcare.sources._read import Field, read_validated
from nearcare.sources.osm import amenities, defibrillator_nodes, latest_extract
from nearcare.store import Store

if TYPE_CHECKING:
    import pulp

DEFAULT_DISTANCE_M = 200.0
SECOND_BAND_M = 500.0
MATCH_DISTANCE_M = 50.0
MAX_SNAP_M = 250.0
TIMES = {"day": (2, 12 * 60), "evening": (2, 20 * 60), "night": (2, 3 * 60)}  # (weekday 0=Mo, minute of day)
# Hours are evaluated in one fixed week, so results do not depend on the day they are run: Monday 9
# to Sunday 15 March 2026, Greenwich Mean Time, with no public holiday in England (or in the GB
# calendar of opening-hours-py), so ``PH`` rules never apply; sunrise about 06:25 and sunset 18:00.
REFERENCE_MONDAY = dt.date(2026, 3, 9)
CANDIDATE_AMENITIES = (
    "telephone",
    "village_hall",
    "community_centre",
    "post_office",
    "place_of_worship",
    "pub",
)
STATUSES = ("reported", "verified", "registered")
DEFIBRILLATOR_CSV_KIND = "defibrillator-csv"  # provenance kind of a user's defibrillator list
_LONDON = zoneinfo.ZoneInfo("Europe/London")


# --- opening hours ------------------------------------------------------------------------------


def hours_problem(hours: str | None) -> str | None:
    """Why ``hours`` are not valid OpenStreetMap ``opening_hours``, or None when they are."""
    from opening_hours import (  # type: ignore[attr-defined]  # missing from its stubs
        OpeningHours,
        ParserError,
    )

    if not isinstance(hours, str) or not hours.strip():
        return "no hours given"
    try:
        OpeningHours(hours.strip())
    except ParserError as exc:
        text = str(exc)
        where = re.search(r"--> \d+:(\d+)", text)
        expected = [line.strip(" =") for line in text.splitlines() if line.strip().startswith("= ")]
        return (
            "not valid opening_hours"
            + (f" at character {where.group(1)}" if where else "")
            + (f" ({expected[-1]})" if expected else "")
        )
    return None


def hours_state(hours: str | None, weekday: int, minute: int, *, lat: float, lon: float) -> str:
    """'open', 'closed' or 'unknown': ``hours`` at ``weekday`` (0 = Monday) and ``minute`` of the reference week.

    Evaluated by the opening-hours-py package at the defibrillator's place (sunrise and sunset there,
    Europe/London time, its GB public-holiday calendar). Hours not recorded, not valid
    ``opening_hours``, or saying ``unknown`` are 'unknown'.
    """
    from opening_hours import OpeningHours

    if not isinstance(hours, str) or not hours.strip() or hours_problem(hours) is not None:
        return "unknown"
    parsed = OpeningHours(hours.strip(), timezone=_LONDON, country="GB", coords=(float(lat), float(lon)))
    when = dt.datetime.combine(REFERENCE_MONDAY + dt.timedelta(days=weekday), dt.time()) + dt.timedelta(
        minutes=minute
    )
    return str(parsed.state(when)[0]).rsplit(".", 1)[-1].lower()


def open_at(hours: str | None, weekday: int, minute: int, *, outdoor: bool, lat: float, lon: float) -> bool:
    """Whether a defibrillator with ``hours`` is available at ``weekday`` and ``minute`` of the reference week.

    Unknown hours (see ``hours_state``): available at all hours outdoors (a cabinet or phone box),
    otherwise in the day only (weekdays 08:00-18:00).
    """
    state = hours_state(hours, weekday, minute, lat=lat, lon=lon)
    if state == "unknown":
        return outdoor or (weekday < 5 and 8 * 60 <= minute < 18 * 60)
    return state == "open"


# --- the register ---------------------------------------------------------------------------------


def _status(frame: pd.DataFrame) -> pd.Series:
    registered = frame["registered_on_circuit"].fillna(False).astype(bool)
    verified = frame["last_checked"].notna()
    return pd.Series(
        np.select([registered, verified], ["registered", "verified"], "reported"), index=frame.index
    )


def _access(value: str | None) -> str:
    value = (value or "").strip().lower()
    if value in ("yes", "public", "permissive"):
        return "public"
    if value in ("", "unknown"):
        return "unknown"
    return "restricted"  # customers, private, no, ...


def _defib_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    easting, northing = to_bng(frame["lon"].to_numpy(float), frame["lat"].to_numpy(float))
    frame["easting"], frame["northing"] = easting, northing
    frame["status"] = _status(frame)
    return frame


def parse_osm_defibrillators(path: Path) -> pd.DataFrame:
    """Defibrillators mapped in an OpenStreetMap extract, as register rows."""
    nodes = defibrillator_nodes(path)
    rows = [
        {
            "defib_id": f"osm-n{node.osm_id}",
            "source": "osm",
            "lat": node.lat,
            "lon": node.lon,
            "postcode": None,
            "access": _access(node.access),
            "hours": node.hours,
            "outdoor": node.outdoor,
            "location_note": node.location_note,
            "guardian": node.guardian,
            "registered_on_circuit": None,
            "pads_expiry": None,
            "battery_expiry": None,
            "last_checked": None,
        }
        for node in nodes.itertuples(index=False)
    ]
    columns = [
        "defib_id",
        "source",
        "lat",
        "lon",
        "postcode",
        "access",
        "hours",
        "outdoor",
        "location_note",
        "guardian",
        "registered_on_circuit",
        "pads_expiry",
        "battery_expiry",
        "last_checked",
    ]
    return _defib_frame(rows) if rows else pd.DataFrame(columns=[*columns, "easting", "northing", "status"])


def _text(value: object) -> str | None:
    """A text field as text, or None where the file left it empty (pandas gives NaN)."""
    return value if isinstance(value, str) and value.strip() else None


def _yes_no(value: object, path, line, field) -> bool | None:
    value = _text(value)
    if value is None:
        return None
    if value.lower() in ("yes", "y", "true", "1"):
        return True
    if value.lower() in ("no", "n", "false", "0"):
        return False
    raise InputError("must be yes or no", path=path, line=line, field=field, value=value)


def parse_defibrillator_csv(path: Path, store: Store) -> pd.DataFrame:
    """A defibrillator list in the documented CSV layout (see the module notes)."""

    frame = read_validated(
        path,
        [
            Field("defib_id", "id"),
            Field("lat", "lat", "number", required=False),
            Field("lon", "lon", "number", required=False),
            Field("postcode", "postcode", "postcode", required=False),
            Field("access", "access", "code", pattern="(?i)public|restricted"),
            Field("hours", "hours", required=False),
            Field("guardian", "guardian", required=False),
            Field("registered", "registered", required=False),
            Field("pads_expiry", "pads_expiry", "date", required=False, date_format="%Y-%m-%d"),
            Field("battery_expiry", "battery_expiry", "date", required=False, date_format="%Y-%m-%d"),
            Field("last_checked", "last_checked", "date", required=False, date_format="%Y-%m-%d"),
        ],
        key=["defib_id"],
    )
    rows = []
    for _, row in frame.iterrows():
        lat, lon = _place(
            store, row["lat"], row["lon"], _text(row["postcode"]), path=path, line=int(row["_line"])
        )
        if _text(row["hours"]) is not None and (problem := hours_problem(row["hours"])) is not None:
            raise InputError(
                f"not OpenStreetMap opening_hours: {problem}",
                path=path,
                line=int(row["_line"]),
                field="hours",
                value=row["hours"],
            )
        rows.append(
            {
                "defib_id": f"csv-{row['defib_id']}",
                "source": "csv",
                "lat": lat,
                "lon": lon,
                "postcode": _text(row["postcode"]),
                "access": row["access"].lower(),
                "hours": _text(row["hours"]),
                "outdoor": None,
                "location_note": None,
                "guardian": _text(row["guardian"]),
                "registered_on_circuit": _yes_no(row["registered"], path, int(row["_line"]), "registered"),
                "pads_expiry": row["pads_expiry"],
                "battery_expiry": row["battery_expiry"],
                "last_checked": row["last_checked"],
            }
        )
    return _defib_frame(rows)


def _place(store: Store, lat, lon, postcode, *, path=None, line=None) -> tuple[float, float]:
    """Latitude and longitude from coordinates or a postcode; refuses places outside England."""
    if lat is not None and lon is not None and np.isfinite(lat) and np.isfinite(lon):
        if not in_england_box(np.array([lon]), np.array([lat]))[0]:
            raise InputError(
                "coordinates are not in England", path=path, line=line, field="lat/lon", value=f"{lat}, {lon}"
            )
        return float(lat), float(lon)
    if postcode:
        code = normalise_postcode(str(postcode))
        found = store.df("SELECT lat, lon FROM postcodes WHERE postcode = ?", [code])
        if found.empty:
            raise InputError(
                "unknown postcode (not in the imported postcode file)",
                path=path,
                line=line,
                field="postcode",
                value=code,
            )
        return float(found["lat"].iloc[0]), float(found["lon"].iloc[0])
    raise InputError("a location is needed: lat and lon, or a postcode", path=path, line=line)


def import_defibrillators(
    store: Store, frame: pd.DataFrame, *, source: str, source_id: int | None = None
) -> int:
    """Replace the defibrillators of one source (osm or csv) in one transaction; reports are kept.

    ``source_id``: the provenance row of the file they came from (``import_osm_defibrillators`` and
    ``import_defibrillator_csv`` give it; prefer those).
    """
    with store.transaction() as con:
        con.execute("DELETE FROM defibrillators WHERE source = ?", [source])
        if len(frame):
            store.insert("defibrillators", frame.assign(source_id=source_id))
    return len(frame)


def import_osm_defibrillators(store: Store) -> int:
    """Replace the OSM defibrillators with those of the latest imported extract (rows carry its source_id)."""
    extract = latest_extract(store)
    if extract is None:
        raise StoreError("no OSM extract imported; give a CSV file or run `nearcare import osm FILE` first")
    frame = parse_osm_defibrillators(extract.path)
    return import_defibrillators(store, frame, source="osm", source_id=extract.source_id)


def import_defibrillator_csv(store: Store, path: str | Path) -> int:
    """Replace the CSV defibrillators with those of ``path`` (documented columns), recorded in provenance.

    All or nothing: a damaged file is refused (file, line, field) and the store is left as it was.
    Importing a CSV again replaces the earlier CSV's defibrillators and its provenance row, as
    importing a public kind again replaces the earlier import; reports are kept.
    """
    path = Path(path)
    frame = parse_defibrillator_csv(path, store)
    import_user_file(
        store,
        DEFIBRILLATOR_CSV_KIND,
        path,
        Parsed({"defibrillators": frame}),
        clear_sql="DELETE FROM defibrillators WHERE source = 'csv'",
    )
    return len(frame)


@dataclass
class Report:
    lat: float | None
    lon: float | None
    postcode: str | None
    access: str
    hours: str
    looks_registered: bool | None
    note: str | None = None


def add_report(
    store: Store, report: Report, *, match_distance_m: float = MATCH_DISTANCE_M
) -> tuple[str, bool]:
    """Validate a public report, match it to a known defibrillator or add one; return (id, matched)."""
    if report.access not in ("public", "restricted"):
        raise InputError("access must be public or restricted", field="access", value=report.access)
    if not report.hours or not report.hours.strip():
        raise InputError(
            "hours are required ('24/7' or opening hours such as 'Mo-Fr 08:00-18:00')", field="hours"
        )
    if (problem := hours_problem(report.hours)) is not None:
        raise InputError(
            f"hours must be OpenStreetMap opening_hours such as '24/7' or 'Mo-Fr 08:00-18:00': {problem}",
            field="hours",
            value=report.hours,
        )
    lat, lon = _place(store, report.lat, report.lon, report.postcode)
    easting, northing = to_bng(np.array([lon]), np.array([lat]))
    known = store.df("SELECT defib_id, easting, northing FROM defibrillators")
    distance = (
        np.hypot(known["easting"] - easting[0], known["northing"] - northing[0])
        if len(known)
        else pd.Series(dtype=float)
    )
    matched = len(known) > 0 and float(distance.min()) <= match_distance_m
    with store.transaction():
        if matched:
            defib_id = str(known["defib_id"].iloc[int(np.argmin(distance.to_numpy()))])
        else:
            defib_id = f"report-{int(store.scalar('SELECT count(*) FROM defib_reports')) + 1}"
            store.insert(
                "defibrillators",
                _defib_frame(
                    [
                        {
                            "defib_id": defib_id,
                            "source": "report",
                            "lat": lat,
                            "lon": lon,
                            "postcode": report.postcode,
                            "access": report.access,
                            "hours": report.hours,
                            "outdoor": None,
                            "location_note": report.note,
                            "guardian": None,
                            "registered_on_circuit": None,
                            "pads_expiry": None,
                            "battery_expiry": None,
                            "last_checked": None,
                        }
                    ]
                ),
            )
        report_id = int(store.scalar("SELECT coalesce(max(report_id), 0) + 1 FROM defib_reports"))
        store.insert(
            "defib_reports",
            pd.DataFrame(
                [
                    {
                        "report_id": report_id,
                        "defib_id": defib_id,
                        "reported_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
                        "lat": lat,
                        "lon": lon,
                        "access": report.access,
                        "hours": report.hours,
                        "looks_registered": report.looks_registered,
                        "note": report.note,
                        "match_distance_m": float(distance.min()) if matched else None,
                    }
                ]
            ),
        )
    return defib_id, bool(matched)


def register(store: Store, *, today: dt.date | None = None) -> pd.DataFrame:
    """Every known defibrillator with its status, report count and expiry flags.

    ``hours`` are those recorded with it, or else those of its latest report (``hours_from`` says
    which; None where neither); ``hours_problem`` says why hours are not valid ``opening_hours``
    (counted as unknown hours). Missing text is None, never NaN.
    """
    today = today or dt.date.today()
    frame = store.df(
        "SELECT d.* EXCLUDE (hours), coalesce(d.hours, latest.hours) AS hours, "
        "CASE WHEN d.hours IS NOT NULL THEN 'recorded' WHEN latest.hours IS NOT NULL THEN 'report' END AS hours_from, "
        "(SELECT count(*) FROM defib_reports r WHERE r.defib_id = d.defib_id) AS reports "
        "FROM defibrillators d LEFT JOIN (SELECT defib_id, arg_max(hours, report_id) AS hours FROM defib_reports "
        "GROUP BY defib_id) latest USING (defib_id) ORDER BY defib_id"
    )
    for column in frame.columns:
        if pd.api.types.is_string_dtype(frame[column]) or pd.api.types.is_object_dtype(frame[column]):
            frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    frame["hours_problem"] = [hours_problem(h) if h is not None else None for h in frame["hours"]]
    for part in ("pads", "battery"):
        expiry = pd.to_datetime(frame[f"{part}_expiry"])
        frame[f"{part}_expired"] = (expiry.notna() & (expiry < pd.Timestamp(today))).to_numpy(bool)
    return frame


def unregistered(store: Store) -> pd.DataFrame:
    """Known defibrillators not registered on The Circuit (to pass to the ambulance service)."""
    frame = register(store)
    return frame[frame["status"] != "registered"]


# --- coverage -------------------------------------------------------------------------------------


def residents(store: Store, lsoas: list[str] | None = None) -> pd.DataFrame:
    """Postcode points in the area's LSOAs, each with an equal share of its LSOA's population.

    A postcode belongs to the LSOA whose boundary holds it; where an LSOA has no boundary, to the
    LSOA the postcode file names (the ONSPD's column). An LSOA with no postcode point is represented
    by its population-weighted centroid, and one with no centroid either keeps its people at no
    point (so they are counted as not assessed, never dropped).
    """
    import geopandas as gpd

    areas = store.df(
        "SELECT lsoa21_code, population, imd_decile, centroid_easting, centroid_northing, boundary "
        "FROM small_areas"
    )
    if lsoas is not None:
        areas = areas[areas["lsoa21_code"].isin(lsoas)]
    bounded = areas[areas["boundary"].notna()]
    found = [pd.DataFrame(columns=["postcode", "easting", "northing", "lsoa21_code"])]
    if len(bounded):
        polygons = gpd.GeoDataFrame(
            bounded[["lsoa21_code"]], geometry=from_wkb(bounded["boundary"]), crs="EPSG:4326"
        )
        box = polygons.total_bounds
        points = store.df(
            "SELECT postcode, lon, lat, easting, northing FROM postcodes WHERE lon BETWEEN ? AND ? "
            "AND lat BETWEEN ? AND ?",
            [float(box[0]), float(box[2]), float(box[1]), float(box[3])],
        )
        located = gpd.sjoin(
            gpd.GeoDataFrame(
                points, geometry=gpd.points_from_xy(points["lon"], points["lat"]), crs="EPSG:4326"
            ),
            polygons,
            predicate="within",
        )
        found.append(pd.DataFrame(located.drop(columns=["geometry", "index_right"])))
    unbounded = areas.loc[areas["boundary"].isna(), "lsoa21_code"].tolist()
    if unbounded:
        found.append(
            store.df(
                "SELECT postcode, easting, northing, lsoa21_code FROM postcodes "
                "WHERE lsoa21_code IN (SELECT unnest(?))",
                [unbounded],
            )
        )
    located = pd.concat(
        [f[["postcode", "easting", "northing", "lsoa21_code"]] for f in found], ignore_index=True
    )
    missing = areas[~areas["lsoa21_code"].isin(located["lsoa21_code"])]
    centroids = pd.DataFrame(
        {
            "postcode": "centroid " + missing["lsoa21_code"],
            "easting": missing["centroid_easting"],
            "northing": missing["centroid_northing"],
            "lsoa21_code": missing["lsoa21_code"],
        }
    )
    points = pd.concat([located, centroids], ignore_index=True)
    points[["easting", "northing"]] = points[["easting", "northing"]].astype(float)
    counts = points.groupby("lsoa21_code")["postcode"].transform("count")
    share = areas.set_index("lsoa21_code")
    points["people"] = (
        share["population"].reindex(points["lsoa21_code"]).to_numpy(dtype=float) / counts.to_numpy()
    )
    points["imd_decile"] = share["imd_decile"].reindex(points["lsoa21_code"]).to_numpy()
    return points


def walking_reach(
    store: Store, sites: pd.DataFrame, people: pd.DataFrame, distance_m: float, *, network=None, origins=None
) -> pd.DataFrame:
    """(site_id, postcode) pairs within ``distance_m`` along the walking network, door to door.

    ``network`` and ``origins`` (the people already snapped) save loading and snapping again."""

    network = network if network is not None else _walk_network(store)
    origins = origins if origins is not None else _snap_people(network, people)
    minutes = distance_m / (network.walk_speed_kph * 1000 / 60)
    targets = snap(
        network,
        Points(
            sites["site_id"].astype(str).to_numpy(),
            sites["easting"].to_numpy(float),
            sites["northing"].to_numpy(float),
        ),
        side="destination",
        max_snap_m=MAX_SNAP_M,
    )
    pairs = pairs_within(network, origins, targets, minutes)
    return pairs.rename(columns={"origin_id": "postcode", "destination_id": "site_id"})


def _walk_network(store: Store):
    return load_network(store, "walk")


def _snap_people(network, people: pd.DataFrame):
    placed = people[
        np.isfinite(people["easting"].to_numpy(float)) & np.isfinite(people["northing"].to_numpy(float))
    ]
    return snap(
        network,
        Points(
            placed["postcode"].to_numpy(),
            placed["easting"].to_numpy(float),
            placed["northing"].to_numpy(float),
        ),
        side="origin",
        max_snap_m=MAX_SNAP_M,
    )


@dataclass
class Coverage:
    """Who is covered, by time of day and distance band, among residents placed on the walking network.

    Residents (postcode points) farther than ``MAX_SNAP_M`` from the walking network (outside the
    area it covers, or far from any path) are *not assessed*: counted, never called covered or
    uncovered, and left out of shares and deserts. Covered + not covered + not assessed = all residents.
    """

    people: pd.DataFrame  # postcode, lsoa21_code, people, imd_decile, assessed, covered_<time>_<band>
    by_lsoa: (
        pd.DataFrame
    )  # lsoa21_code, people, people_assessed, people_not_assessed, imd_decile, people_<time>_<band>
    distance_m: float
    second_band_m: float

    @property
    def total_people(self) -> float:
        return float(self.people["people"].sum())

    @property
    def assessed_people(self) -> float:
        return float(self.people.loc[self.people["assessed"], "people"].sum())

    @property
    def not_assessed_people(self) -> float:
        return float(self.people.loc[~self.people["assessed"], "people"].sum())

    def covered_people(self, time: str, band: str = "first") -> float:
        return float(self.people.loc[self.people[f"covered_{time}_{band}"], "people"].sum())

    def share(self, time: str, band: str = "first") -> float:
        """Percentage of assessed residents covered (nan where nobody could be assessed)."""
        assessed = self.assessed_people
        return 100 * self.covered_people(time, band) / assessed if assessed > 0 else float("nan")

    def not_assessed_note(self) -> str:
        """'not assessed: N people in M LSOAs with no walking network ...', for every face (CLI, report, web)."""
        partly = self.by_lsoa[self.by_lsoa["people_not_assessed"] > 0]
        wholly = int((self.by_lsoa.loc[partly.index, "people_assessed"] == 0).sum())
        return (
            f"not assessed: {self.not_assessed_people:,.0f} people in {len(partly)} LSOAs with no walking network "
            f"within {MAX_SNAP_M:g} m of their postcode ({wholly} LSOAs wholly)"
        )

    def summary(self, time: str) -> str:
        """One line: the share of assessed residents covered at ``time``, reconciled with everyone."""
        covered = self.covered_people(time)
        share = self.share(time)
        return (
            f"{time}: {'no one assessed' if np.isnan(share) else f'{share:.1f}%'} of {self.assessed_people:,.0f} "
            f"assessed people within {self.distance_m:g} m ({covered:,.0f} covered, "
            f"{self.assessed_people - covered:,.0f} not); all residents {self.total_people:,.0f}"
        )


def coverage(
    store: Store,
    *,
    lsoas: list[str] | None = None,
    distance_m: float = DEFAULT_DISTANCE_M,
    second_band_m: float = SECOND_BAND_M,
    extra: pd.DataFrame | None = None,
) -> Coverage:
    """Who lives within ``distance_m`` (and ``second_band_m``) of an available public defibrillator,
    by day, evening and night. ``extra`` adds defibrillators (as for siting and for tests)."""
    if distance_m <= 0 or second_band_m < distance_m:
        raise InputError("distances must be positive and the second band at least the first")
    people = residents(store, lsoas)
    network = _walk_network(store)
    origins = _snap_people(network, people)
    people["assessed"] = people["postcode"].isin(set(origins.ids))
    defibs = register(store)[["defib_id", "easting", "northing", "access", "hours", "outdoor"]].rename(
        columns={"defib_id": "site_id"}
    )
    if extra is not None:
        defibs = pd.concat([defibs, extra], ignore_index=True)
    reach = (
        walking_reach(store, defibs, people, second_band_m, network=network, origins=origins)
        if len(defibs)
        else pd.DataFrame(columns=["postcode", "site_id", "distance_m", "minutes"])
    )
    outdoor = defibs["outdoor"].astype("boolean").fillna(False).to_numpy(bool)
    # Access not recorded: public if outdoors (a cabinet or phone box), restricted otherwise.
    public = (defibs["access"] == "public").to_numpy() | (
        (defibs["access"] == "unknown").to_numpy() & outdoor
    )
    lon, lat = to_wgs84(defibs["easting"].to_numpy(float), defibs["northing"].to_numpy(float))
    for name, (weekday, minute) in TIMES.items():
        open_now = np.array(
            [
                open_at(h, weekday, minute, outdoor=o, lat=y, lon=x)
                for h, o, y, x in zip(defibs["hours"], outdoor, lat, lon, strict=True)
            ],
            dtype=bool,
        )
        available = defibs.loc[public & open_now, "site_id"]
        usable = reach[reach["site_id"].isin(available)]
        for band, limit in (("first", distance_m), ("second", second_band_m)):
            covered = set(usable.loc[usable["distance_m"] <= limit, "postcode"])
            people[f"covered_{name}_{band}"] = people["postcode"].isin(covered) & people["assessed"]
    counted = people.assign(
        people_assessed=people["people"].where(people["assessed"], 0.0),
        people_not_assessed=people["people"].where(~people["assessed"], 0.0),
    )
    for column in [c for c in people.columns if c.startswith("covered_")]:
        counted[column.replace("covered_", "people_")] = people["people"].where(people[column], 0.0)
    sums = [c for c in counted.columns if c.startswith("people")]
    by_lsoa = (
        counted.groupby("lsoa21_code")
        .agg({**dict.fromkeys(sums, "sum"), "imd_decile": "first"})
        .reset_index()
    )
    return Coverage(people, by_lsoa, distance_m, second_band_m)


def deserts(cov: Coverage, time: str = "night") -> pd.DataFrame:
    """LSOAs where nobody assessed lives within the first distance of an available defibrillator at
    ``time``, ranked by the assessed population weighted by deprivation (1.9 in the most deprived
    decile, 1 in the least). LSOAs where nobody could be assessed are left out (see ``Coverage``)."""
    frame = cov.by_lsoa[
        (cov.by_lsoa[f"people_{time}_first"] == 0) & (cov.by_lsoa["people_assessed"] > 0)
    ].copy()
    frame["priority"] = frame["people_assessed"] * deprivation_priority_weight(frame["imd_decile"])
    return frame.sort_values("priority", ascending=False).reset_index(drop=True)


# --- best new sites -------------------------------------------------------------------------------


def candidate_hosts(store: Store, lsoas: list[str] | None = None) -> pd.DataFrame:
    """Pharmacies, GP practices, and OSM phone boxes, halls, post offices, places of worship and pubs."""
    sites = store.df(
        "SELECT code AS site_id, name, kind AS host, easting, northing, lsoa21_code FROM sites "
        "WHERE kind IN ('pharmacy', 'gp') AND easting IS NOT NULL"
    )
    if lsoas is not None:
        sites = sites[sites["lsoa21_code"].isin(lsoas)]
    hosts = [sites.drop(columns=["lsoa21_code"])]
    extract = latest_extract(store)
    if extract is not None and extract.path.exists():
        osm = amenities(extract.path, CANDIDATE_AMENITIES)
        if len(osm):
            osm["easting"], osm["northing"] = to_bng(osm["lon"].to_numpy(), osm["lat"].to_numpy())
            hosts.append(osm.drop(columns=["lon", "lat"]))
    return pd.concat(hosts, ignore_index=True)


@dataclass
class Siting:
    chosen: pd.DataFrame  # site_id, name, host, marginal_people (in the order they add most)
    exact_people: float
    greedy_people: float
    greedy_chosen: list[str]

    @property
    def gap(self) -> float:
        return (self.exact_people - self.greedy_people) / self.exact_people if self.exact_people else 0.0


def covering_sets(reach: pd.DataFrame, weights: pd.Series) -> tuple[list[str], list[str], list[np.ndarray]]:
    """Candidates, demand points, and for each candidate the demand points (by index) it covers."""
    demand = [p for p in weights.index if weights[p] > 0]
    position = {p: i for i, p in enumerate(demand)}
    reach = reach[reach["postcode"].isin(position)]
    candidates = sorted(reach["site_id"].unique())
    covers = [
        np.array([position[p] for p in group["postcode"]], dtype=int)
        for _, group in reach.groupby("site_id", sort=True)
    ]
    return candidates, demand, covers


def greedy_cover(weights: np.ndarray, covers: list[np.ndarray], k: int) -> list[int]:
    covered = np.zeros(len(weights), bool)
    chosen: list[int] = []
    for _ in range(min(k, len(covers))):
        gains = [weights[c[~covered[c]]].sum() if j not in chosen else -1.0 for j, c in enumerate(covers)]
        best = int(np.argmax(gains))
        if gains[best] <= 0:
            break
        chosen.append(best)
        covered[covers[best]] = True
    return chosen


def exact_cover(
    weights: np.ndarray, covers: Sequence[np.ndarray], k: int, solver: pulp.LpSolver | None = None
) -> list[int]:
    """The maximal covering location problem (see the module notes), solved exactly by an integer program.

    ``weights[i]`` is demand point i's people; ``covers[j]`` the indices of the points candidate j
    covers; at most ``k`` candidates are chosen. ``solver`` is any PuLP solver (default: CBC, bundled
    with PuLP, quiet). Returns the chosen candidates' indices; raises ``StoreError`` if the solver
    does not report an optimum.
    """
    import pulp  # lazily: importing PuLP takes about 0.4 s, which every CLI command would pay

    model = pulp.LpProblem("mclp", pulp.LpMaximize)
    x = [model.add_variable(f"x{j}", cat="Binary") for j in range(len(covers))]
    y = [
        model.add_variable(f"y{i}", lowBound=0, upBound=1) for i in range(len(weights))
    ]  # integral at the optimum
    model += pulp.lpSum(float(w) * y[i] for i, w in enumerate(weights))
    coverers: list[list[int]] = [[] for _ in weights]
    for j, c in enumerate(covers):
        for i in c:
            coverers[i].append(j)
    for i, js in enumerate(coverers):
        model += y[i] <= pulp.lpSum(x[j] for j in js)
    model += pulp.lpSum(x) <= k
    status = model.solve(solver or pulp.PULP_CBC_CMD(msg=False))
    if pulp.LpStatus[status] != "Optimal":
        raise StoreError(f"the siting problem was not solved ({pulp.LpStatus[status]})")
    return [j for j, v in enumerate(x) if (value := v.value()) is not None and value > 0.5]


def best_sites(
    store: Store,
    k: int,
    *,
    lsoas: list[str] | None = None,
    distance_m: float = DEFAULT_DISTANCE_M,
    time: str = "night",
    solver: pulp.LpSolver | None = None,
) -> tuple[Siting, Coverage]:
    """Choose k new sites to cover the most assessed people not yet covered at ``time``, exactly and greedily."""
    if k < 1:
        raise InputError("k must be at least 1", value=k)
    cov = coverage(store, lsoas=lsoas, distance_m=distance_m)
    people = cov.people[cov.people["assessed"]]  # no site is chosen for people off the walking network
    uncovered = people[~people[f"covered_{time}_first"]].set_index("postcode")["people"]
    candidates = candidate_hosts(store, lsoas)
    reach = walking_reach(store, candidates, people, distance_m)
    names, demand, covers = covering_sets(reach, uncovered)
    weights = uncovered.reindex(demand).to_numpy()
    exact = exact_cover(weights, covers, k, solver)
    greedy = greedy_cover(weights, covers, k)

    def people_covered(chosen: list[int]) -> float:
        hit = np.zeros(len(weights), bool)
        for j in chosen:
            hit[covers[j]] = True
        return float(weights[hit].sum())

    # Order the exact choice by marginal gain, each site after those before it.
    order: list[int] = []
    remaining = list(exact)
    while remaining:
        best = max(remaining, key=lambda j: people_covered([*order, j]) - people_covered(order))
        order.append(best)
        remaining.remove(best)
    info = candidates.set_index("site_id")
    chosen = pd.DataFrame({"site_id": [names[j] for j in order]})
    chosen["name"] = chosen["site_id"].map(info["name"])
    chosen["host"] = chosen["site_id"].map(info["host"])
    chosen["easting"] = chosen["site_id"].map(info["easting"])
    chosen["northing"] = chosen["site_id"].map(info["northing"])
    chosen["marginal_people"] = [
        people_covered(order[: i + 1]) - people_covered(order[:i]) for i in range(len(order))
    ]
    return Siting(chosen, people_covered(exact), people_covered(greedy), [names[j] for j in greedy]), cov
