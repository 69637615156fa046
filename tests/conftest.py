"""Shared fixtures and builders: the national files in ../shared/data (skip only when absent), a demo
store, and the small files and store copies several test modules build. Tests share builders from
here, never by importing each other."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nearcare.demo import run_demo
from nearcare.store import Store

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def shared_file(relative: str) -> Path:
    """A national file from ../shared/data; the test skips if (and only if) it is absent."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"national file not present here: {path}")
    return path


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    """The demo run once for the session: its result, store path and report path.

    For development only, ``NEARCARE_DEMO_CACHE=DIR`` keeps the demo in DIR and reuses it across
    runs (delete DIR after a change that alters the demo); CI never sets it.
    """
    cache = os.environ.get("NEARCARE_DEMO_CACHE")
    if not cache:
        return run_demo(tmp_path_factory.mktemp("demo"), log=lambda *_: None)
    saved = Path(cache) / "demo-result.pickle"
    if saved.exists():
        return pickle.loads(saved.read_bytes())
    result = run_demo(Path(cache), log=lambda *_: None)
    saved.write_bytes(pickle.dumps(result))
    return result


@pytest.fixture()
def demo_store(demo):
    with Store(demo.store_path, read_only=True) as store:
        yield store


@pytest.fixture()
def store(demo, tmp_path):
    """A writable copy of the demo store, for tests that change it."""
    copy = tmp_path / "store.duckdb"
    shutil.copyfile(demo.store_path, copy)
    with Store(copy) as opened:
        yield opened


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_text(text, encoding=encoding)
    return path


@pytest.fixture()
def tiny_floors(monkeypatch):
    """Hand-made files of a few rows, of kinds published only for all of England (which a real import
    refuses as cut short): lower their floors so that the check under test is reached."""
    from nearcare.sources import ods, registrations

    monkeypatch.setattr(ods, "NATIONAL_MINIMUM", {"gp": 1, "pharmacy": 1, "dentist": 1})
    monkeypatch.setattr(registrations, "NATIONAL_MINIMUM_PRACTICES", 1)


# --- builders shared by several test modules -------------------------------------------------------

EPRACCUR_ROW = (
    '"{code}","A PRACTICE","Y60","QK1","1 HIGH ST","","LEICESTER","","","{postcode}","20000101","","A",'
    '"B","03W","20200401","","0116 000000","","","","0","","03W","","{setting}",""'
)


def epraccur(tmp_path, rows: list[str]):
    return write(tmp_path / "epraccur.csv", "\n".join(rows) + "\n")


def good_row(code="C82001", postcode="LE8 0LG", setting="4"):
    return EPRACCUR_ROW.format(code=code, postcode=postcode, setting=setting)


def snapshot(store: Store) -> dict[str, pd.DataFrame]:
    return {t: store.df(f'SELECT * FROM "{t}" ORDER BY ALL') for t in store.tables()}


def assert_same(before: dict[str, pd.DataFrame], after: dict[str, pd.DataFrame]) -> None:
    assert before.keys() == after.keys()
    for table in before:
        pd.testing.assert_frame_equal(before[table], after[table], check_dtype=False, obj=table)


RUTLAND_PRACTICES = ["C82010", "C82044", "C82077", "C82649"]


def with_registrations(demo, folder, registered_at=lambda i, lsoa: RUTLAND_PRACTICES, seed: int = 3):
    """A copy of the demo store with an LSOA registration file for Rutland: LSOA number i (in code
    order) is registered at the practices ``registered_at(i, lsoa)``, in random numbers."""
    from nearcare.sources import import_files, registrations

    copy = folder / "registrations.duckdb"
    shutil.copyfile(demo.store_path, copy)
    with Store(copy) as store:
        rutland = store.df("SELECT lsoa21_code FROM small_areas WHERE lad_code = 'E06000017' ORDER BY 1")[
            "lsoa21_code"
        ]
        rows = ["PUBLICATION,EXTRACT_DATE,PRACTICE_CODE,PRACTICE_NAME,LSOA_CODE,SEX,NUMBER_OF_PATIENTS"]
        rng = np.random.default_rng(seed)
        for i, lsoa in enumerate(rutland):
            rows += [
                f"GP_PRAC_PAT_LIST,01APR2024,{p},X,{lsoa},ALL,{rng.integers(1, 400)}"
                for p in registered_at(i, lsoa)
            ]
        # A Rutland-only file: lower the national floor (a real import refuses a file this short).
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(registrations, "NATIONAL_MINIMUM_PRACTICES", 1)
            import_files(
                store,
                "gp-lsoa-registrations",
                [write(folder / "gp-reg-pat-prac-lsoa-all.csv", "\n".join(rows) + "\n")],
            )
    return copy
