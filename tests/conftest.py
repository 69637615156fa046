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


def _run_demo_cli(out: Path):
    """``nearcare demo --out OUT`` through the CLI runner, as a user runs it: its result and what it
    printed (progress lines included: standard error is not a terminal here)."""
    from typer.testing import CliRunner

    from nearcare import demo as demo_module
    from nearcare.cli import app

    results = []

    def recorded(*args, **kwargs):
        results.append(run_demo(*args, **kwargs))
        return results[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(demo_module, "run_demo", recorded)
        invoked = CliRunner().invoke(app, ["demo", "--out", str(out)])
    assert invoked.exit_code == 0, invoked.output
    return results[0], invoked.output


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """The demo run once for the session, through the CLI: (its result, what the command printed).

    For development only, ``NEARCARE_DEMO_CACHE=DIR`` keeps the demo in DIR and reuses it across
    runs (delete DIR after a change that alters the demo); CI never sets it.
    """
    cache = os.environ.get("NEARCARE_DEMO_CACHE")
    if not cache:
        return _run_demo_cli(tmp_path_factory.mktemp("demo"))
    saved, printed = Path(cache) / "demo-result.pickle", Path(cache) / "demo-output.txt"
    if saved.exists():
        if not printed.exists():
            pytest.skip(f"{cache} was built before the demo's output was kept: delete it")
        return pickle.loads(saved.read_bytes()), printed.read_text()
    result, output = _run_demo_cli(Path(cache))
    saved.write_bytes(pickle.dumps(result))
    printed.write_text(output)
    return result, output


@pytest.fixture(scope="session")
def demo(demo_run):
    """The demo's result: store path, report path and build."""
    return demo_run[0]


@pytest.fixture(scope="session")
def demo_output(demo_run) -> str:
    """What ``nearcare demo`` printed, progress lines included."""
    return demo_run[1]


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


@pytest.fixture(scope="session")
def cluster():
    """A dask.distributed LocalCluster: two workers on loopback, threads in this process (2 cores: processes would only add start-up)."""
    distributed_ = pytest.importorskip("distributed")
    with distributed_.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=False,
        protocol="tcp",
        host="127.0.0.1",
        dashboard_address=None,
    ) as running:
        yield running


@pytest.fixture
def three_icbs(tmp_path):
    """A store of 300 LSOAs in three ICBs (GP access rising, falling and flat with deprivation
    rank) and a fourth of two LSOAs, with their centroids; returns (path, small_areas, access)."""
    rng = np.random.default_rng(16)
    n = 300
    small = pd.DataFrame(
        {
            "lsoa21_code": [f"E01{i:06d}" for i in range(n)],
            "icb_code": rng.choice(["QAA", "QBB", "QCC"], n),
            "population": rng.integers(1000, 3000, n).astype(float),
            "imd_rank": rng.permutation(np.arange(1, n + 1)).astype(float),
            "centroid_easting": rng.uniform(400_000, 500_000, n),
            "centroid_northing": rng.uniform(200_000, 300_000, n),
        }
    )
    small["imd_decile"] = np.ceil(small["imd_rank"] / (n / 10)).astype(int)
    small["icb_name"] = small["icb_code"] + " ICB"
    tiny = small.index[:2]
    small.loc[tiny, ["icb_code", "icb_name"]] = ["QDD", "QDD ICB"]  # two LSOAs: not assessed
    gradient = {"QAA": 0.002, "QBB": -0.002, "QCC": 0.0, "QDD": 0.0}
    access = pd.DataFrame(
        {
            "lsoa21_code": small["lsoa21_code"],
            "kind": "gp",
            "profile": "drive",
            "mode": "crowfly",
            "threshold_minutes": 15.0,
            "services_within": 1,
            "e2sfca": 1.0,
            "e2sfca_need": 1 + small["icb_code"].map(gradient) * small["imd_rank"] + rng.normal(0, 0.05, n),
        }
    )
    with Store(tmp_path / "s.duckdb") as store:
        store.insert("small_areas", small)
        store.insert("access", access)
        store.insert(
            "area",
            pd.DataFrame(
                [
                    {
                        "area_code": "test",
                        "area_kind": "areas",
                        "label": "Four ICBs",
                        "built_at": pd.Timestamp.now(),
                    }
                ]
            ),
        )
    return tmp_path / "s.duckdb", small, access
