"""The Python API: `nearcare.open(path) -> Project`, usable from a plain interpreter, without SQL."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import nearcare
from nearcare.cli import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


@pytest.fixture()
def copy(demo, tmp_path) -> Path:
    path = tmp_path / "store.duckdb"
    shutil.copyfile(demo.store_path, path)
    return path


def _python(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)


def test_python_c_opens_a_store_and_reads_frames(demo):
    done = _python(
        "import nearcare; "
        f"p = nearcare.open({str(demo.store_path)!r}, read_only=True); "
        "a = p.small_areas(); f = p.equity('gp', 'drive', mode='crowfly'); "
        "print(type(a).__name__, len(a), len(p.sites('gp')), f.measure)"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["GeoDataFrame", "634", "128", "e2sfca_need", "(gp,", "drive,", "crowfly)"]


def test_import_nearcare_leaves_the_kernels_unloaded_until_used():
    """Start-up: the CLI imports nearcare, so the kernels (SciPy, pyproj) load only when first used."""
    done = _python(
        "import sys, nearcare; before = {'scipy', 'pyproj'} & set(sys.modules); "
        "kernels = [getattr(nearcare, n) for n in nearcare.__all__]; "
        "print(sorted(before), callable(nearcare.e2sfca), 'scipy' in sys.modules)"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[]", "True", "True"]


def test_every_exported_name_resolves():
    for name in nearcare.__all__:
        assert getattr(nearcare, name) is not None, name
    with pytest.raises(AttributeError):
        nearcare.not_a_kernel  # noqa: B018


def test_save_false_returns_results_and_leaves_the_store_as_it_was(copy):
    with nearcare.open(copy) as p:
        before = p.tables().set_index("table")["rows"]
        stored_access = p.table("access")
        pairs = p.travel_times("drive", "gp", mode="crowfly", max_minutes=10, save=False)
        access = p.access("walk", kinds="gp", mode="crowfly", threshold_minutes=5, save=False)
        shared = p.allocate(3, to="lsoas", save=False)
        after = p.tables().set_index("table")["rows"]
        assert after.equals(before)
        assert p.table("access").equals(stored_access)
    assert len(pairs) and (pairs["minutes"] <= 10).all() and set(pairs["mode"]) == {"crowfly"}
    assert set(access["threshold_minutes"]) == {5.0} and len(access) == 634
    assert shared.allocation["units"].sum() == pytest.approx(3)


def test_save_true_stores_what_it_returns(copy):
    with nearcare.open(copy) as p:
        access = p.access("walk", kinds="gp", mode="crowfly", threshold_minutes=5)
        stored = p.table("access")
    stored = stored[(stored["profile"] == "walk") & (stored["mode"] == "crowfly") & (stored["kind"] == "gp")]
    assert stored.reset_index(drop=True).equals(access.reset_index(drop=True))


def test_save_false_on_a_read_only_store_says_why(demo):
    with (
        nearcare.open(demo.store_path, read_only=True) as p,
        pytest.raises(nearcare.StoreError, match="read-only"),
    ):
        p.access("walk", kinds="gp", save=False)


def test_scenario_from_codes_merges_and_openings(demo):
    """A scenario without a file: a closure, a merger and a new practice where the closed one stood."""
    with nearcare.open(demo.store_path, read_only=True) as p:
        closed = p.sites("gp").set_index("code").loc["C82005"]
        opening = nearcare.NewSite("NEW1", "New surgery", "gp", closed["easting"], closed["northing"], 6.0)
        only_closed = p.scenario(close=["C82005"], mode="crowfly")
        reopened = p.scenario(close=["C82005"], openings=[opening], mode="crowfly")
        merged = p.scenario(merges=[("C82005", "C82010")], mode="crowfly")
        with pytest.raises(nearcare.InputError, match="unknown site code"):
            p.scenario(close=["NOPE"])
    assert only_closed.moved_patients > 0 and only_closed.displaced_patients == pytest.approx(10_860)
    gained = reopened.practices.set_index("practice_code")["patients_gained"]
    assert gained["NEW1"] > 0  # patients near the closed practice go to the new one beside it
    assert merged.merged_patients == pytest.approx(10_860) and merged.displaced_patients == 0


def test_mode_words_are_checked(demo):
    with nearcare.open(demo.store_path, read_only=True) as p:
        with pytest.raises(nearcare.InputError, match="network or crowfly"):
            p.equity("gp", "drive", mode="bicycle")
        assert (
            p.equity("gp", "drive", mode="network").measure == p.equity("gp", "drive", mode="drive").measure
        )


def test_cli_profile_and_its_deprecated_mode_alias_agree(demo):
    new = runner.invoke(app, ["equity", "--store", str(demo.store_path), "--profile", "drive", "--crowfly"])
    old = runner.invoke(app, ["equity", "--store", str(demo.store_path), "--mode", "drive", "--crowfly"])
    assert new.exit_code == 0 and old.exit_code == 0, new.output + old.output
    assert "deprecated" in old.output and "deprecated" not in new.output
    assert (
        old.output.replace("note: --mode is deprecated here; use --profile (same values)\n", "") == new.output
    )
    both = runner.invoke(
        app, ["equity", "--store", str(demo.store_path), "--profile", "walk", "--mode", "drive"]
    )
    assert both.exit_code == 2 and "disagree" in both.output
    bad = runner.invoke(app, ["access", "--store", str(demo.store_path), "--profile", "cycle"])
    assert bad.exit_code == 2 and "--profile must be walk or drive" in bad.output
    assert "--mode" not in runner.invoke(app, ["access", "--help"]).output  # hidden: one release, then gone


def test_the_cli_holds_no_sql_and_no_store_access():
    """The CLI is a face: every command goes through Project (issue #14)."""
    tree = ast.parse((ROOT / "src" / "nearcare" / "cli.py").read_text())
    strings = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    assert not [s for s in strings if re.search(r"\b(SELECT|FROM|WHERE)\b", s)]  # SQL, not prose
    attributes = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    assert not attributes & {"df", "scalar", "con", "store", "transaction"}
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not modules & {"nearcare.store", "nearcare.sources", "nearcare.area", "nearcare.network"}


def test_travel_times_hands_workers_to_the_network_search(copy, monkeypatch):
    """``workers=`` reaches the search (it was once dropped without a word)."""
    from nearcare import travel

    seen = []
    search = travel.pairs_within

    def recording(*args, **kwargs):
        seen.append(kwargs.get("workers"))
        return search(*args, **kwargs)

    monkeypatch.setattr(travel, "pairs_within", recording)
    with nearcare.open(copy) as p:
        pairs = p.travel_times("walk", "pharmacy", max_minutes=30, mode="network", save=False, workers=1)
    assert seen == [1] and len(pairs)
