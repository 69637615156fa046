"""Shared fixtures: the national files in ../shared/data (skip only when absent) and a demo store."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

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
    import shutil

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
