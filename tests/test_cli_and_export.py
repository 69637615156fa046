"""The CLI through its test runner, exports, and docs that match the code."""

from __future__ import annotations

import json
import re
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from tests.conftest import epraccur, good_row
from typer.testing import CliRunner

from nearcare.cli import app
from nearcare.export import export_table
from nearcare.store import ANALYSIS_TABLES, AREA_TABLES, NETWORK_TABLES, SOURCE_TABLES, Store

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def test_cli_import_build_export(tmp_path, demo, tiny_floors):
    store = tmp_path / "s.duckdb"
    result = runner.invoke(
        app, ["import", "ods-gp-practices", str(epraccur(tmp_path, [good_row()])), "--store", str(store)]
    )
    assert result.exit_code == 0, result.output
    assert "1 rows into organisations" in result.output
    bad = epraccur(tmp_path, [good_row(), good_row()])
    result = runner.invoke(app, ["import", "ods-gp-practices", str(bad), "--store", str(store)])
    assert result.exit_code == 2 and "duplicate code" in result.output
    result = runner.invoke(app, ["build", "--area", "QK1", "--store", str(store)])
    assert result.exit_code == 2 and "lsoa-nhs-lookup" in result.output
    out = tmp_path / "sites.csv"
    result = runner.invoke(app, ["export", "sites", str(out), "--store", str(demo.store_path)])
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(out)) == 680


def test_cli_unknown_kind_and_missing_store(tmp_path):
    result = runner.invoke(
        app, ["import", "no-such-kind", str(tmp_path / "x.csv"), "--store", str(tmp_path / "s.duckdb")]
    )
    assert result.exit_code == 2 and "unknown import kind" in result.output
    result = runner.invoke(app, ["tables", "--store", str(tmp_path / "absent.duckdb")])
    assert result.exit_code == 2 and "no such store" in result.output


def test_cli_demo(demo, demo_output):
    """The session's demo ran through the CLI (tests/conftest.py), so it is not run again here."""
    assert demo.report_path.exists() and "634 LSOAs" in demo_output
    assert f"Open {demo.report_path.resolve()} in a browser." in demo_output.replace("\n", "")


@pytest.mark.parametrize("suffix", [".csv", ".geojson", ".parquet"])
def test_export_round_trip(tmp_path, demo_store, suffix):
    path = tmp_path / f"small_areas{suffix}"
    assert export_table(demo_store, "small_areas", path) == 634
    if suffix == ".csv":
        frame = pd.read_csv(path)
        assert frame["boundary"].str.startswith(("POLYGON", "MULTIPOLYGON")).all()
    else:
        frame = gpd.read_parquet(path) if suffix == ".parquet" else gpd.read_file(path)
        assert frame.crs.to_epsg() == 4326 and frame.geometry.notna().all()
    assert sorted(frame["lsoa21_code"]) == sorted(
        demo_store.df("SELECT lsoa21_code FROM small_areas")["lsoa21_code"]
    )


def test_export_points_with_unlocated_sites(tmp_path, demo_store):
    path = tmp_path / "sites.geojson"
    export_table(demo_store, "sites", path)
    features = json.loads(path.read_text())["features"]
    assert sum(f["geometry"] is None for f in features) == demo_store.scalar(
        "SELECT count(*) FROM sites WHERE lat IS NULL"
    )


def test_every_command_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    for command in app.registered_commands:
        name = command.name or command.callback.__name__
        assert f"nearcare {name}" in readme, f"`nearcare {name}` is not documented in README.md"


def test_every_table_and_import_kind_is_documented():
    from nearcare.sources import importers

    schema = (ROOT / "docs" / "SCHEMA.md").read_text()
    for table in SOURCE_TABLES + AREA_TABLES + NETWORK_TABLES + ANALYSIS_TABLES:
        assert re.search(rf"^### `{table}`", schema, flags=re.M), f"table {table} is not in docs/SCHEMA.md"
    readme = (ROOT / "README.md").read_text()
    for kind in importers():
        assert f"`{kind}`" in readme, f"import kind {kind} is not in README.md"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    command = re.search(r"```sh\n# 2\. .*\n(.+)\n```", readme).group(1)
    assert command in ci


def test_cli_network_and_travel_times(tmp_path, demo):
    import shutil

    store = tmp_path / "s.duckdb"
    shutil.copyfile(demo.store_path, store)
    result = runner.invoke(app, ["network", "--store", str(store), "--mode", "walk"])
    assert result.exit_code == 0 and "walk: 27,964 nodes" in result.output, result.output
    out = tmp_path / "pharmacy.csv"
    result = runner.invoke(
        app,
        [
            "travel-times",
            "--store",
            str(store),
            "--mode",
            "walk",
            "--to",
            "pharmacy",
            "--max-minutes",
            "15",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "608 LSOAs" in result.output  # the LLR LSOAs outside the Rutland extract are reported, not joined
    pairs = pd.read_csv(out)
    assert len(pairs) > 0 and (pairs["minutes"] <= 15).all() and set(pairs["mode"]) == {"walk"}
    result = runner.invoke(app, ["travel-times", "--store", str(store), "--to", "hospital"])
    assert result.exit_code == 2 and "unknown service kind" in result.output
    result = runner.invoke(app, ["network", "--store", str(store), "--mode", "cycle"])
    assert result.exit_code == 2 and "--mode must be" in result.output


def test_cli_access_equity_allocate(tmp_path, demo):
    import shutil

    store = tmp_path / "s.duckdb"
    shutil.copyfile(demo.store_path, store)
    out = tmp_path / "access.csv"
    result = runner.invoke(
        app,
        [
            "access",
            "--store",
            str(store),
            "--mode",
            "drive",
            "--crowfly",
            "--decay",
            "step",
            "--zones",
            "5:1,10:0.5,15:0.1",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    measures = pd.read_csv(out)
    assert len(measures[measures["kind"] == "gp"]) == 634 and (measures["mode"] == "crowfly").all()
    assert "up to 10 min x 0.5" in measures["catchment"].iloc[0]
    result = runner.invoke(
        app, ["access", "--store", str(store), "--mode", "drive", "--threshold-minutes", "45"]
    )
    assert result.exit_code == 2 and "larger --max-minutes" in result.output
    result = runner.invoke(app, ["access", "--store", str(store), "--zones", "ten:1"])
    assert result.exit_code == 2 and "--zones" in result.output
    result = runner.invoke(app, ["equity", "--store", str(store), "--mode", "drive"])
    assert result.exit_code == 0, result.output
    assert "inverse care law" in result.output.lower() and "GP FTE per need-weighted patient" in result.output
    result = runner.invoke(
        app,
        [
            "allocate",
            "--units",
            "12",
            "--to",
            "lsoas",
            "--floor",
            "0.001",
            "--store",
            str(store),
            "--out",
            str(tmp_path / "alloc.csv"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert pd.read_csv(tmp_path / "alloc.csv")["units"].sum() == pytest.approx(12)
    result = runner.invoke(app, ["allocate", "--units", "1", "--floor", "5", "--store", str(store)])
    assert result.exit_code == 2 and "floors add up" in result.output
    Store(store).con.execute("DELETE FROM neighbourhoods")
    result = runner.invoke(app, ["allocate", "--units", "1", "--to", "neighbourhoods", "--store", str(store)])
    assert result.exit_code == 2 and "no neighbourhoods" in result.output


def test_csv_exports_defuse_spreadsheet_formulas(tmp_path):
    """A name that a spreadsheet would run as a formula is written with a leading quote; numbers and
    ordinary text are written as they are (CSV injection, OWASP)."""
    import pandas as pd

    from nearcare.export import write_frame

    frame = pd.DataFrame(
        {
            "name": ['=HYPERLINK("http://x.example","click")', "+1 surgery", "@home", "Oakham Medical", None],
            "change_minutes": [-1.5, 2.0, 0.0, -3.0, 1.0],
        }
    )
    written = tmp_path / "out.csv"
    write_frame(frame, written)
    back = pd.read_csv(written)
    assert back["name"].tolist()[:4] == [
        '\'=HYPERLINK("http://x.example","click")',
        "'+1 surgery",
        "'@home",
        "Oakham Medical",
    ]
    assert back["change_minutes"].tolist() == frame["change_minutes"].tolist()
