"""A user's own files (defibrillator CSV, neighbourhoods, scenario TOML) go through the import step:
recorded in provenance with their SHA-256 and rows, rows linked back by source_id, re-imports
replace rather than double, and a damaged copy leaves the store byte-for-byte as it was."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from tests.conftest import assert_same, snapshot

from nearcare import InputError, defib
from nearcare.demo import DEMO_CLOSURE
from nearcare.project import Project
from nearcare.report.atlas import sources_section
from nearcare.store import Store

BUNDLED_EXTRACT = Path(defib.__file__).parent / "data" / "llr" / "rutland-latest.osm.pbf"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture()
def project(demo, tmp_path):
    """A writable copy of the demo store, opened as a Project."""
    copy = tmp_path / "project.duckdb"
    shutil.copyfile(demo.store_path, copy)
    with Project(copy) as opened:
        yield opened


@pytest.fixture(scope="module")
def osm_defibrillators() -> pd.DataFrame:
    """The real defibrillators mapped in the bundled Rutland extract (one: Hambleton's phone box)."""
    return defib.parse_osm_defibrillators(BUNDLED_EXTRACT)


def defib_csv(store: Store, osm: pd.DataFrame, path: Path, *, sites: int = 30) -> Path:
    """A guardian's list in the documented CSV layout, from real places: the mapped defibrillators
    (by coordinates) and cabinets at the area's first ``sites`` pharmacies and GP practices (by
    their postcode, which the store resolves)."""
    hours = [h if isinstance(h, str) and defib.hours_problem(h) is None else "" for h in osm["hours"]]
    mapped = pd.DataFrame(
        {
            "id": osm["defib_id"].str.removeprefix("osm-"),
            "lat": osm["lat"].round(6),
            "lon": osm["lon"].round(6),
            "postcode": "",
            "access": ["public" if a == "public" else "restricted" for a in osm["access"]],
            "hours": hours,
        }
    )
    hosts = store.df(
        "SELECT code AS id, postcode FROM sites WHERE kind IN ('gp', 'pharmacy') "
        "AND postcode IN (SELECT postcode FROM postcodes) ORDER BY code LIMIT ?",
        [sites],
    ).assign(access="public", hours="Mo-Fr 08:00-18:30")
    pd.concat([mapped, hosts], ignore_index=True).to_csv(path, index=False)
    return path


def provenance(store: Store, kind: str) -> pd.DataFrame:
    return store.df("SELECT * FROM provenance WHERE kind = ? ORDER BY source_id", [kind])


def test_defibrillator_csv_is_recorded_and_its_rows_link_back(project, osm_defibrillators, tmp_path):
    store = project.store
    path = defib_csv(store, osm_defibrillators, tmp_path / "guardians.csv")
    count = project.import_defibrillators(path)
    recorded = provenance(store, "defibrillator-csv")
    assert len(recorded) == 1
    row = recorded.iloc[0]
    assert (row["path"], row["sha256"], row["rows"]) == (str(path.resolve()), sha256(path), count)
    assert (row["publisher"], row["licence"]) == ("user", None)
    assert count == len(osm_defibrillators) + 30
    linked = store.df(
        "SELECT source, source_id FROM defibrillators WHERE source_id = ?", [int(row["source_id"])]
    )
    assert len(linked) == count and set(linked["source"]) == {"csv"}
    # The report's sources section lists the file.
    listed = [r for table in sources_section(store).tables for r in table.rows]
    assert any(str(path.resolve()) in r and "user" in r for r in listed)


def test_osm_defibrillators_link_to_their_extract_and_reports_to_no_file(project):
    store = project.store
    project.import_defibrillators()
    extract_id = int(store.scalar("SELECT max(source_id) FROM osm_extracts"))
    osm = store.df("SELECT source_id FROM defibrillators WHERE source = 'osm'")
    assert len(osm) > 0 and set(osm["source_id"]) == {extract_id}
    defib_id, matched = project.report_defibrillator(access="public", hours="24/7", lat=52.60, lon=-0.55)
    assert not matched
    assert store.scalar("SELECT source_id FROM defibrillators WHERE defib_id = ?", [defib_id]) is None
    assert store.scalar("SELECT count(*) FROM defib_reports WHERE defib_id = ?", [defib_id]) == 1


def test_defibrillator_csv_imported_again_replaces_its_rows_and_provenance(
    project, osm_defibrillators, tmp_path
):
    store = project.store
    first = defib_csv(store, osm_defibrillators, tmp_path / "first.csv")
    project.import_defibrillators(first)
    project.import_defibrillators(first)  # the same file twice: same rows, one provenance row
    assert len(provenance(store, "defibrillator-csv")) == 1
    assert (
        store.scalar("SELECT count(*) FROM defibrillators WHERE source = 'csv'")
        == len(osm_defibrillators) + 30
    )
    second = defib_csv(store, osm_defibrillators, tmp_path / "second.csv", sites=2)
    project.import_defibrillators(second)  # another list replaces the first, and its provenance row
    recorded = provenance(store, "defibrillator-csv")
    assert recorded["path"].tolist() == [str(second.resolve())]
    csv_rows = store.df("SELECT source_id FROM defibrillators WHERE source = 'csv'")
    assert len(csv_rows) == len(osm_defibrillators) + 2 and set(csv_rows["source_id"]) == {
        int(recorded["source_id"].iloc[0])
    }
    # The OSM list is another source and stays.
    assert store.scalar("SELECT count(*) FROM defibrillators WHERE source = 'osm'") > 0


def test_a_damaged_defibrillator_csv_leaves_the_store_unchanged(project, osm_defibrillators, tmp_path):
    store = project.store
    project.import_defibrillators(defib_csv(store, osm_defibrillators, tmp_path / "good.csv"))
    lines = defib_csv(store, osm_defibrillators, tmp_path / "damaged.csv").read_text().splitlines()
    lines[4] = lines[4].replace("public", "sometimes").replace("restricted", "sometimes")
    damaged = tmp_path / "damaged.csv"
    damaged.write_text("\n".join(lines) + "\n")
    before = snapshot(store)
    with pytest.raises(InputError, match=r"damaged\.csv.*line 5, field 'access'"):
        project.import_defibrillators(damaged)
    assert_same(before, snapshot(store))


def demo_neighbourhoods_csv(store: Store, path: Path) -> Path:
    """The demo's designed neighbourhoods, written out as a user's own file."""
    store.df("SELECT lsoa21_code, neighbourhood FROM neighbourhoods ORDER BY lsoa21_code").to_csv(
        path, index=False
    )
    return path


def test_neighbourhood_file_is_recorded_replaced_and_forgotten_on_design(project, tmp_path):
    store = project.store
    path = demo_neighbourhoods_csv(store, tmp_path / "pcn.csv")
    lsoas = store.count("small_areas")
    project.load_neighbourhoods(path)
    project.load_neighbourhoods(path)  # twice: one provenance row, the same rows
    recorded = provenance(store, "neighbourhoods")
    assert len(recorded) == 1
    row = recorded.iloc[0]
    assert (row["path"], row["sha256"], row["rows"], row["publisher"]) == (
        str(path.resolve()),
        sha256(path),
        lsoas,
        "user",
    )
    stored = store.df("SELECT source_id FROM neighbourhoods")
    assert len(stored) == lsoas and set(stored["source_id"]) == {int(row["source_id"])}
    # Designing replaces the loaded neighbourhoods, so the file is no longer a source of the store.
    project.design_neighbourhoods()
    assert provenance(store, "neighbourhoods").empty
    assert store.scalar("SELECT count(*) FROM neighbourhoods WHERE source_id IS NOT NULL") == 0


def test_a_damaged_neighbourhood_file_leaves_the_store_unchanged(project, tmp_path):
    store = project.store
    path = demo_neighbourhoods_csv(store, tmp_path / "pcn.csv")
    project.load_neighbourhoods(path)
    lines = path.read_text().splitlines()
    lines[7] = "E0100000X," + lines[7].split(",", 1)[1]
    damaged = tmp_path / "damaged.csv"
    damaged.write_text("\n".join(lines) + "\n")
    before = snapshot(store)
    with pytest.raises(InputError, match=r"damaged\.csv.*line 8, field 'lsoa21_code'"):
        project.load_neighbourhoods(damaged)
    assert_same(before, snapshot(store))


SCENARIO = f"""name = "Close Empingham"
close = ["{DEMO_CLOSURE}"]
"""


def test_scenario_file_is_recorded_once_and_named_in_its_outputs(project, tmp_path):
    store = project.store
    path = tmp_path / "close.toml"
    path.write_text(SCENARIO)
    result = project.scenario(path, mode="crowfly")
    recorded = provenance(store, "scenario")
    assert len(recorded) == 1
    row = recorded.iloc[0]
    assert (row["path"], row["sha256"], row["rows"], row["publisher"]) == (
        str(path.resolve()),
        sha256(path),
        1,
        "user",
    )
    assert result.scenario.source_id == int(row["source_id"])
    page = " ".join(project.write_scenario(result, tmp_path / "out")[-1].read_text().split())
    assert (
        f"Defined by {path.resolve()} (SHA-256 {sha256(path)}, provenance source {row['source_id']})" in page
    )
    project.scenario(path, mode="crowfly")  # the same file again: one row
    assert len(provenance(store, "scenario")) == 1
    path.write_text(SCENARIO.replace("Close Empingham", "Close Empingham, edited"))
    edited = project.scenario(path, mode="crowfly")  # an edited file is another source
    assert provenance(store, "scenario")["sha256"].tolist() == [row["sha256"], sha256(path)]
    assert edited.scenario.source_id != result.scenario.source_id


def test_a_damaged_scenario_file_leaves_the_store_unchanged(project, tmp_path):
    store = project.store
    damaged = tmp_path / "damaged.toml"
    damaged.write_text(SCENARIO.replace("]", ""))  # a list that never closes
    before = snapshot(store)
    with pytest.raises(InputError, match=r"damaged\.toml.*not a valid TOML"):
        project.scenario(damaged, mode="crowfly")
    assert_same(before, snapshot(store))


def test_an_older_store_gains_the_source_id_columns(tmp_path):
    path = tmp_path / "old.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(
            "CREATE TABLE neighbourhoods (lsoa21_code VARCHAR PRIMARY KEY, neighbourhood VARCHAR, method VARCHAR)"
        )
        con.execute("INSERT INTO neighbourhoods VALUES ('E01000001', 'N1', 'loaded from old.csv')")
    with Store(path) as store:
        assert store.df("SELECT source_id FROM neighbourhoods")["source_id"].isna().all()
        assert "source_id" in store.df("SELECT * FROM defibrillators").columns
