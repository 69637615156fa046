"""The embedded store: one DuckDB file per analysis (conventionally ``nearcare.duckdb``).

Data flows one way: importers fill the *source tables* from public files, ``build`` derives the
*area tables* for the chosen area, and analyses read those. Every source row carries the
``source_id`` of the provenance row for the file it came from. The schema is written out in
``docs/SCHEMA.md``; a test keeps the two in step.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Literal, get_args

import duckdb
import pandas as pd

from nearcare._errors import StoreError

# The one list of service kinds: GP practices, pharmacies, dentists and opticians (optometrists).
ServiceKind = Literal["gp", "pharmacy", "dentist", "optometrist"]
SERVICE_KINDS: tuple[str, ...] = get_args(ServiceKind)
# Kinds of site in the store: the services, and a GP practice's branch surgeries (kind "branch").
ORGANISATION_KINDS: tuple[str, ...] = (SERVICE_KINDS[0], "branch", *SERVICE_KINDS[1:])

# Source tables: filled by importers from public files.
SOURCE_SCHEMA = """
CREATE TABLE IF NOT EXISTS provenance (
    source_id BIGINT PRIMARY KEY,
    kind VARCHAR NOT NULL,
    path VARCHAR NOT NULL,
    sha256 VARCHAR NOT NULL,
    rows BIGINT NOT NULL,
    data_date VARCHAR,
    publisher VARCHAR,
    licence VARCHAR,
    imported_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS organisations (
    code VARCHAR PRIMARY KEY,
    name VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    open_date DATE,
    close_date DATE,
    postcode VARCHAR,
    address VARCHAR,
    sub_icb_code VARCHAR,
    icb_code VARCHAR,
    parent_code VARCHAR,
    lat DOUBLE,
    lon DOUBLE,
    source_id BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS postcodes (
    postcode VARCHAR PRIMARY KEY,
    easting DOUBLE NOT NULL,
    northing DOUBLE NOT NULL,
    lat DOUBLE NOT NULL,
    lon DOUBLE NOT NULL,
    lsoa21_code VARCHAR,
    lad_code VARCHAR,
    source_id BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS lsoa_boundaries (
    lsoa21_code VARCHAR PRIMARY KEY,
    lsoa21_name VARCHAR,
    boundary BLOB NOT NULL,
    source_id BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS lsoa_centroids (
    lsoa_code VARCHAR PRIMARY KEY,
    lat DOUBLE NOT NULL,
    lon DOUBLE NOT NULL,
    easting DOUBLE NOT NULL,
    northing DOUBLE NOT NULL,
    source_id BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS imd (
    edition INTEGER NOT NULL,
    lsoa_code VARCHAR NOT NULL,
    imd_score DOUBLE,
    imd_rank INTEGER NOT NULL,
    imd_decile INTEGER NOT NULL,
    income_decile INTEGER,
    employment_decile INTEGER,
    education_decile INTEGER,
    health_decile INTEGER,
    crime_decile INTEGER,
    housing_decile INTEGER,
    environment_decile INTEGER,
    source_id BIGINT NOT NULL,
    PRIMARY KEY (edition, lsoa_code)
);
CREATE TABLE IF NOT EXISTS lsoa_nhs_lookup (
    lsoa21_code VARCHAR PRIMARY KEY,
    lsoa21_name VARCHAR,
    sub_icb_code VARCHAR NOT NULL,
    sub_icb_ons_code VARCHAR,
    sub_icb_name VARCHAR,
    icb_code VARCHAR NOT NULL,
    icb_ons_code VARCHAR,
    icb_name VARCHAR,
    source_id BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS lsoa11_lsoa21 (
    lsoa11_code VARCHAR NOT NULL,
    lsoa21_code VARCHAR NOT NULL,
    change_code VARCHAR,
    lsoa21_name VARCHAR,
    lad_code VARCHAR,
    lad_name VARCHAR,
    source_id BIGINT NOT NULL,
    PRIMARY KEY (lsoa11_code, lsoa21_code)
);
CREATE TABLE IF NOT EXISTS rural_urban (
    lsoa21_code VARCHAR PRIMARY KEY,
    ruc21_code VARCHAR NOT NULL,
    classification VARCHAR,
    urban_rural VARCHAR,
    source_id BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS population (
    geography VARCHAR NOT NULL,
    lsoa_code VARCHAR NOT NULL,
    year INTEGER NOT NULL,
    population DOUBLE NOT NULL,
    source_id BIGINT NOT NULL,
    PRIMARY KEY (geography, lsoa_code, year)
);
CREATE TABLE IF NOT EXISTS gp_list_sizes (
    practice_code VARCHAR NOT NULL,
    extract_date DATE NOT NULL,
    patients BIGINT NOT NULL,
    source_id BIGINT NOT NULL,
    PRIMARY KEY (practice_code, extract_date)
);
CREATE TABLE IF NOT EXISTS gp_registrations_lsoa (
    practice_code VARCHAR NOT NULL,
    lsoa_code VARCHAR NOT NULL,
    extract_date DATE NOT NULL,
    patients BIGINT NOT NULL,
    source_id BIGINT NOT NULL,
    PRIMARY KEY (practice_code, lsoa_code, extract_date)
);
CREATE TABLE IF NOT EXISTS gp_workforce (
    practice_code VARCHAR NOT NULL,
    year INTEGER NOT NULL,
    patients DOUBLE,
    gp_fte DOUBLE,
    locum_trainee_fte DOUBLE,
    nurse_fte DOUBLE,
    direct_patient_care_fte DOUBLE,
    admin_fte DOUBLE,
    source_id BIGINT NOT NULL,
    PRIMARY KEY (practice_code, year)
);
-- England's totals per year, derived from the national workforce file when the bundle is made
-- (nearcare.bundle.england_workforce): over practices reporting GP FTE above 0.
CREATE TABLE IF NOT EXISTS england_workforce (
    year INTEGER PRIMARY KEY,
    practices BIGINT NOT NULL,
    practices_with_gp_fte BIGINT NOT NULL,
    patients DOUBLE,
    patients_with_gp_fte DOUBLE,
    gp_fte DOUBLE,
    locum_trainee_fte DOUBLE,
    nurse_fte DOUBLE,
    direct_patient_care_fte DOUBLE,
    admin_fte DOUBLE,
    need_factor_mean DOUBLE,
    source_id BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS practice_deprivation (
    practice_code VARCHAR PRIMARY KEY,
    imd_score DOUBLE NOT NULL,
    imd_quintile_england INTEGER NOT NULL,
    edition INTEGER NOT NULL,
    source_id BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS practice_age_mix (
    practice_code VARCHAR PRIMARY KEY,
    patients BIGINT NOT NULL,
    mean_age DOUBLE,
    pct_male DOUBLE,
    pct_65_plus DOUBLE,
    pct_50_plus DOUBLE,
    pct_0_64 DOUBLE,
    source_id BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS qof_prevalence (
    practice_code VARCHAR NOT NULL,
    condition VARCHAR NOT NULL,
    prevalence_pct DOUBLE,
    achievement_pct DOUBLE,
    list_size BIGINT,
    source_id BIGINT NOT NULL,
    PRIMARY KEY (practice_code, condition)
);
CREATE TABLE IF NOT EXISTS osm_extracts (
    source_id BIGINT PRIMARY KEY,
    path VARCHAR NOT NULL,
    sha256 VARCHAR NOT NULL,
    min_lon DOUBLE, min_lat DOUBLE, max_lon DOUBLE, max_lat DOUBLE,
    highway_ways BIGINT NOT NULL,
    defibrillators BIGINT NOT NULL,
    replication_time VARCHAR
);
"""

# Area tables: derived by nearcare.area.build for the chosen area; rebuilt, never imported.
AREA_SCHEMA = """
CREATE TABLE IF NOT EXISTS area (
    area_code VARCHAR NOT NULL,
    area_kind VARCHAR NOT NULL,
    label VARCHAR NOT NULL,
    built_at TIMESTAMP NOT NULL,
    population_note VARCHAR
);
CREATE TABLE IF NOT EXISTS small_areas (
    lsoa21_code VARCHAR PRIMARY KEY,
    lsoa21_name VARCHAR,
    lad_code VARCHAR,
    lad_name VARCHAR,
    sub_icb_code VARCHAR,
    sub_icb_name VARCHAR,
    icb_code VARCHAR,
    icb_name VARCHAR,
    population DOUBLE,
    imd_score DOUBLE,
    imd_rank INTEGER,
    imd_decile INTEGER,
    income_decile INTEGER,
    employment_decile INTEGER,
    education_decile INTEGER,
    health_decile INTEGER,
    crime_decile INTEGER,
    housing_decile INTEGER,
    environment_decile INTEGER,
    ruc21_code VARCHAR,
    urban_rural VARCHAR,
    centroid_lat DOUBLE,
    centroid_lon DOUBLE,
    centroid_easting DOUBLE,
    centroid_northing DOUBLE,
    boundary BLOB
);
CREATE TABLE IF NOT EXISTS sites (
    code VARCHAR PRIMARY KEY,
    name VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    postcode VARCHAR,
    sub_icb_code VARCHAR,
    lsoa21_code VARCHAR,
    lat DOUBLE,
    lon DOUBLE,
    easting DOUBLE,
    northing DOUBLE,
    geocoded_by VARCHAR,
    lsoa_placed_by VARCHAR,
    source_id BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS site_placement (
    kind VARCHAR NOT NULL,
    outcome VARCHAR NOT NULL,
    in_sites BOOLEAN NOT NULL,
    sites BIGINT NOT NULL,
    PRIMARY KEY (kind, outcome)
);
CREATE TABLE IF NOT EXISTS practices (
    practice_code VARCHAR PRIMARY KEY,
    name VARCHAR NOT NULL,
    sub_icb_code VARCHAR,
    patients BIGINT,
    list_size_date DATE,
    gp_fte DOUBLE,
    nurse_fte DOUBLE,
    workforce_year INTEGER,
    patients_per_gp_fte DOUBLE,
    pct_65_plus DOUBLE,
    mean_age DOUBLE,
    imd_score DOUBLE,
    imd_quintile_england INTEGER
);
"""

# Network and travel-time tables: derived from an OSM extract by nearcare.network and nearcare.travel.
NETWORK_SCHEMA = """
CREATE TABLE IF NOT EXISTS networks (
    mode VARCHAR PRIMARY KEY,
    osm_source_id BIGINT NOT NULL,
    nodes BIGINT NOT NULL,
    edges BIGINT NOT NULL,
    dropped_nodes BIGINT NOT NULL,
    dropped_edges BIGINT NOT NULL,
    walk_speed_kph DOUBLE NOT NULL,
    built_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS network_nodes (
    mode VARCHAR NOT NULL,
    node INTEGER NOT NULL,
    osm_id BIGINT NOT NULL,
    easting DOUBLE NOT NULL,
    northing DOUBLE NOT NULL,
    PRIMARY KEY (mode, node)
);
CREATE TABLE IF NOT EXISTS network_edges (
    mode VARCHAR NOT NULL,
    source INTEGER NOT NULL,
    target INTEGER NOT NULL,
    length_m DOUBLE NOT NULL,
    minutes DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS travel_times (
    origin_id VARCHAR NOT NULL,
    destination_id VARCHAR NOT NULL,
    destination_kind VARCHAR NOT NULL,
    profile VARCHAR NOT NULL,
    mode VARCHAR NOT NULL,
    distance_m DOUBLE NOT NULL,
    minutes DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS nearest_services (
    origin_id VARCHAR NOT NULL,
    destination_kind VARCHAR NOT NULL,
    profile VARCHAR NOT NULL,
    mode VARCHAR NOT NULL,
    destination_id VARCHAR,
    distance_m DOUBLE,
    minutes DOUBLE,
    PRIMARY KEY (origin_id, destination_kind, profile, mode)
);
CREATE TABLE IF NOT EXISTS travel_runs (
    profile VARCHAR NOT NULL,
    destination_kind VARCHAR NOT NULL,
    mode VARCHAR NOT NULL,
    max_minutes DOUBLE,
    origins BIGINT NOT NULL,
    destinations BIGINT NOT NULL,
    unsnapped_origins BIGINT NOT NULL,
    unsnapped_destinations BIGINT NOT NULL,
    max_snap_m DOUBLE,
    run_at TIMESTAMP NOT NULL,
    PRIMARY KEY (profile, destination_kind, mode)
);
CREATE TABLE IF NOT EXISTS unsnapped (
    profile VARCHAR NOT NULL,
    mode VARCHAR NOT NULL,
    point_kind VARCHAR NOT NULL,
    point_id VARCHAR NOT NULL,
    snap_m DOUBLE NOT NULL
);
"""

# Analysis tables: access measures and allocations, derived from the tables above.
ANALYSIS_SCHEMA = """
CREATE TABLE IF NOT EXISTS access (
    lsoa21_code VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    profile VARCHAR NOT NULL,
    mode VARCHAR NOT NULL,
    threshold_minutes DOUBLE NOT NULL,
    nearest_minutes DOUBLE,
    services_within BIGINT NOT NULL,
    e2sfca DOUBLE NOT NULL,
    e2sfca_need DOUBLE NOT NULL,
    supply_measure VARCHAR,
    catchment VARCHAR,
    PRIMARY KEY (lsoa21_code, kind, profile, mode)
);
CREATE TABLE IF NOT EXISTS defibrillators (
    defib_id VARCHAR PRIMARY KEY,
    source VARCHAR NOT NULL,
    lat DOUBLE NOT NULL,
    lon DOUBLE NOT NULL,
    easting DOUBLE NOT NULL,
    northing DOUBLE NOT NULL,
    postcode VARCHAR,
    access VARCHAR NOT NULL,
    hours VARCHAR,
    outdoor BOOLEAN,
    location_note VARCHAR,
    guardian VARCHAR,
    registered_on_circuit BOOLEAN,
    pads_expiry DATE,
    battery_expiry DATE,
    last_checked DATE,
    status VARCHAR NOT NULL,
    source_id BIGINT
);
CREATE TABLE IF NOT EXISTS defib_reports (
    report_id BIGINT PRIMARY KEY,
    defib_id VARCHAR NOT NULL,
    reported_at TIMESTAMP NOT NULL,
    lat DOUBLE NOT NULL,
    lon DOUBLE NOT NULL,
    access VARCHAR NOT NULL,
    hours VARCHAR NOT NULL,
    looks_registered BOOLEAN,
    note VARCHAR,
    match_distance_m DOUBLE
);
CREATE TABLE IF NOT EXISTS neighbourhoods (
    lsoa21_code VARCHAR PRIMARY KEY,
    neighbourhood VARCHAR NOT NULL,
    method VARCHAR NOT NULL,
    source_id BIGINT
);
CREATE TABLE IF NOT EXISTS allocations (
    target_kind VARCHAR NOT NULL,
    target_code VARCHAR NOT NULL,
    need DOUBLE NOT NULL,
    floor DOUBLE,
    cap DOUBLE,
    units DOUBLE NOT NULL,
    PRIMARY KEY (target_kind, target_code)
);
"""

SOURCE_TABLES = tuple(
    line.split()[5] for line in SOURCE_SCHEMA.splitlines() if line.startswith("CREATE TABLE")
)
AREA_TABLES = tuple(line.split()[5] for line in AREA_SCHEMA.splitlines() if line.startswith("CREATE TABLE"))
ANALYSIS_TABLES = tuple(
    line.split()[5] for line in ANALYSIS_SCHEMA.splitlines() if line.startswith("CREATE TABLE")
)
NETWORK_TABLES = tuple(
    line.split()[5] for line in NETWORK_SCHEMA.splitlines() if line.startswith("CREATE TABLE")
)


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read in blocks so that national files stay out of memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _open_problem(path: Path, exc: duckdb.Error) -> str:
    """One line saying why a store could not be opened, and what to do."""
    text = str(exc)
    if "Could not set lock" in text:
        pid = re.search(r"\(PID (\d+)\)", text)
        holder = f"process {pid.group(1)}" if pid else "another process"
        return (
            f"{path}: the store is in use by {holder} (for example `nearcare serve` or another nearcare "
            "command); stop it and try again, or work on a copy of the store"
        )
    if "not a valid DuckDB database" in text:
        return f"{path}: not a nearcare store (not a DuckDB database file)"
    return f"{path}: cannot open the store: {' '.join(text.split())}"


class Store:
    """A DuckDB file holding one analysis: sources, provenance and derived area tables."""

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        if read_only and not self.path.exists():
            raise StoreError(f"{self.path}: no such store (run `nearcare import` or `nearcare demo` first)")
        # A store this call creates is removed again if the work in it fails (see __exit__).
        self._created = [p for p in (self.path, *self.path.parents) if not p.exists()]
        self._committed = False  # a transaction committed through this Store
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.con = duckdb.connect(str(self.path), read_only=read_only)
            if not read_only:
                self.con.execute(SOURCE_SCHEMA)
                self.con.execute(AREA_SCHEMA)
                self.con.execute(NETWORK_SCHEMA)
                self.con.execute(ANALYSIS_SCHEMA)
                # Columns added since a store was first made (CREATE TABLE IF NOT EXISTS leaves old tables be).
                self.con.execute(
                    "ALTER TABLE postcodes ADD COLUMN IF NOT EXISTS lad_code VARCHAR; "
                    "ALTER TABLE sites ADD COLUMN IF NOT EXISTS lsoa_placed_by VARCHAR; "
                    # the file a defibrillator or a loaded neighbourhood came from (NULL: from no file)
                    "ALTER TABLE defibrillators ADD COLUMN IF NOT EXISTS source_id BIGINT; "
                    "ALTER TABLE neighbourhoods ADD COLUMN IF NOT EXISTS source_id BIGINT"
                )
        except duckdb.Error as exc:
            if hasattr(self, "con"):
                self.con.close()
            self._remove_created()
            raise StoreError(_open_problem(self.path, exc)) from None

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self.close()
        # A failed first command leaves no store behind; but what an earlier step in the same
        # session committed (fourteen national imports, then a fifteenth that fails) is kept.
        if exc_type is not None and not self._committed:
            self._remove_created()

    def _remove_created(self) -> None:
        """Remove the store file (and folders) this Store created, so a failed first command leaves nothing."""
        if not self._created:
            return
        for leftover in (self.path, self.path.with_name(self.path.name + ".wal")):
            leftover.unlink(missing_ok=True)
        for folder in self._created[1:]:
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """All or nothing: on any error the store is left exactly as it was."""
        self.con.begin()
        try:
            yield self.con
        except BaseException:
            self.con.rollback()
            raise
        try:
            self.con.commit()
        except BaseException:
            # A commit that fails is undone by DuckDB; roll back in case a version leaves it open.
            with suppress(duckdb.Error):
                self.con.rollback()
            raise
        self._committed = True

    def df(self, sql: str, params: list | tuple | None = None) -> pd.DataFrame:
        """Run a parameterised query and return a DataFrame."""
        return self.con.execute(sql, params or []).df()

    def scalar(self, sql: str, params: list | tuple | None = None) -> Any:  # a DuckDB value: any type
        rows = self.con.execute(
            sql, params or []
        ).fetchall()  # fetch all: DuckDB holds a half-read result open
        return rows[0][0] if rows else None

    def count(self, table: str) -> int:
        return int(self.scalar(f'SELECT count(*) FROM "{self._table(table)}"'))

    def tables(self) -> list[str]:
        rows = self.con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY 1"
        ).fetchall()
        return [r[0] for r in rows]

    def _table(self, name: str) -> str:
        if name not in self.tables():
            raise StoreError(f"{self.path}: no table {name!r}; tables are: {', '.join(self.tables())}")
        return name

    def insert(self, table: str, frame: pd.DataFrame) -> None:
        """Insert a DataFrame by column name (call inside ``transaction``)."""
        self.con.register("_incoming", frame)
        try:
            self.con.execute(f'INSERT INTO "{self._table(table)}" BY NAME SELECT * FROM _incoming')
        except duckdb.Error:
            raise  # the view stays registered in the aborted transaction; the next insert replaces it
        else:
            self.con.unregister("_incoming")

    def add_provenance(
        self,
        *,
        kind: str,
        path: str | Path,
        sha256: str,
        rows: int,
        data_date: str | None,
        publisher: str | None,
        licence: str | None,
    ) -> int:
        """Record an imported file and return its ``source_id`` (call inside ``transaction``)."""
        source_id = int(self.scalar("SELECT coalesce(max(source_id), 0) + 1 FROM provenance"))
        self.con.execute(
            "INSERT INTO provenance VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                source_id,
                kind,
                str(path),
                sha256,
                rows,
                data_date,
                publisher,
                licence,
                dt.datetime.now(dt.UTC).replace(tzinfo=None),
            ],
        )
        return source_id

    def require(self, table: str, hint: str) -> None:
        """Raise StoreError unless ``table`` has rows; ``hint`` says which step fills it."""
        if self.count(table) == 0:
            raise StoreError(f"{self.path}: table {table!r} is empty; {hint}")
