"""A failed import leaves the store exactly as it was; a repeated import replaces its kind."""

from __future__ import annotations

import duckdb
import pytest
from tests.conftest import assert_same, epraccur, good_row, snapshot, write

from nearcare import InputError
from nearcare.bundle import load_bundle
from nearcare.sources import import_files
from nearcare.store import Store


@pytest.fixture()
def loaded(tmp_path, tiny_floors):
    with Store(tmp_path / "s.duckdb") as store:
        load_bundle(store)
        import_files(
            store, "ods-gp-practices", [epraccur(tmp_path, [good_row("Z99001"), good_row("Z99002")])]
        )
        yield store


BAD_INPUTS = {
    "truncated row": lambda p: epraccur(p, [good_row("Z99003"), good_row("Z99004")[:40]]),
    "duplicate key": lambda p: epraccur(p, [good_row("Z99003"), good_row("Z99003")]),
    "bad postcode": lambda p: epraccur(p, [good_row("Z99003"), good_row("Z99004", postcode="XX")]),
    "bad code": lambda p: epraccur(p, [good_row("z-9")]),
}


@pytest.mark.parametrize("problem", list(BAD_INPUTS))
def test_failed_import_changes_nothing(tmp_path, loaded, problem):
    before = snapshot(loaded)
    bad = tmp_path / "bad"
    bad.mkdir()
    with pytest.raises(InputError):
        import_files(loaded, "ods-gp-practices", [BAD_INPUTS[problem](bad)])
    assert_same(before, snapshot(loaded))


def test_second_file_bad_means_first_not_written(tmp_path, loaded):
    before = snapshot(loaded)
    good = write(tmp_path / "pop_mid2019.csv", "Area Codes,All Ages\nE01013787,1500\n")
    bad = write(tmp_path / "pop2_mid2019.csv", "Area Codes,All Ages\nE01013788,lots\n")
    with pytest.raises(InputError):
        import_files(loaded, "population", [good, bad])
    assert_same(before, snapshot(loaded))


def test_clash_between_files_rolls_back(tmp_path, loaded):
    before = snapshot(loaded)
    one = write(tmp_path / "a_mid2019.csv", "Area Codes,All Ages\nE01013787,1500\n")
    two = write(tmp_path / "b_mid2019.csv", "Area Codes,All Ages\nE01013787,1600\n")
    with pytest.raises(InputError, match="clashes"):
        import_files(loaded, "population", [one, two])
    assert_same(before, snapshot(loaded))


def test_reimport_replaces_same_kind_only(tmp_path, loaded):
    pharmacies = loaded.count("organisations") - 2
    import_files(loaded, "ods-gp-practices", [epraccur(tmp_path, [good_row("Z99005")])])
    codes = set(loaded.df("SELECT code FROM organisations WHERE kind = 'gp'")["code"])
    assert "Z99005" in codes and not {"Z99001", "Z99002"} & codes
    # Bundled GP practices came from a different provenance kind, so they stay.
    assert loaded.count("organisations") == pharmacies + 1


def test_import_settings_apply_while_writing_and_are_restored(tmp_path, loaded, monkeypatch):
    """The small buffer pool and single thread (kept the national postcode import under 1 GB) last
    only while an import writes, whether it succeeds or clashes and rolls back."""
    setting = "SELECT current_setting('memory_limit'), current_setting('threads')"
    own = loaded.con.execute(setting).fetchall()[0]
    seen = []
    insert = Store.insert
    monkeypatch.setattr(
        Store,
        "insert",
        lambda self, *a: (seen.append(self.con.execute(setting).fetchall()[0]), insert(self, *a)),
    )
    one = write(tmp_path / "a_mid2019.csv", "Area Codes,All Ages\nE01013787,1500\n")
    two = write(tmp_path / "b_mid2019.csv", "Area Codes,All Ages\nE01013787,1600\n")
    import_files(loaded, "population", [one])
    assert loaded.con.execute(setting).fetchall()[0] == own
    with pytest.raises(InputError, match="clashes"):
        import_files(loaded, "population", [one, two])
    assert loaded.con.execute(setting).fetchall()[0] == own
    assert seen and all(threads == 1 and limit != own[0] for limit, threads in seen)


def test_an_import_that_outgrows_the_small_buffer_pool_is_written_again(tmp_path, loaded, monkeypatch):
    """The import settings are an economy, not a limit: if DuckDB runs out of its small pool, the
    rolled-back write is done again with the defaults, and the store holds exactly the file."""
    insert = Store.insert
    attempts = []

    def insert_once_out_of_memory(self, *args):
        limited = self.con.execute("SELECT current_setting('threads')").fetchall()[0][0] == 1
        attempts.append(limited)
        if limited:
            raise duckdb.OutOfMemoryException("simulated: the index outgrew the pool")
        return insert(self, *args)

    sources_before = loaded.scalar("SELECT count(*) FROM provenance")
    monkeypatch.setattr(Store, "insert", insert_once_out_of_memory)
    one = write(tmp_path / "a_mid2019.csv", "Area Codes,All Ages\nE01013787,1500\n")
    result = import_files(loaded, "population", [one])
    assert attempts[0] is True and attempts[-1] is False and result.rows == {"population": 1}
    stored = loaded.df(
        "SELECT lsoa_code, population FROM population WHERE source_id IN "
        "(SELECT source_id FROM provenance WHERE kind = 'population')"
    )
    assert stored.values.tolist() == [["E01013787", 1500.0]]
    assert (
        loaded.scalar("SELECT count(*) FROM provenance") == sources_before + 1
    )  # the failed attempt left none
