"""What the commands print: people as whole numbers, counts that say what they cover."""

from __future__ import annotations

import math
import re
import shutil

import pandas as pd
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from nearcare import defib
from nearcare.cli import _figure, _frame_text, _whole, app

runner = CliRunner()


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e15, max_value=1e15))
def test_people_print_as_whole_numbers(people):
    """Regression: people printed as 16446.333333, sums as 7.275958e-12 or -0."""
    text = _whole(people)
    assert re.fullmatch(r"-?\d{1,3}(,\d{3})*", text) and text != "-0"
    assert int(text.replace(",", "")) == round(people)


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e15, max_value=1e15))
def test_other_figures_keep_four_digits_and_never_minus_zero(value):
    text = _figure(value)
    assert text != "-0"
    assert math.isclose(
        float(text.replace(",", "")), value, rel_tol=1e-3, abs_tol=0.5 if abs(value) >= 1000 else 0
    )


def test_tables_round_people_columns_only():
    frame = pd.DataFrame(
        {
            "lsoa21_code": ["E01000001", "E01000002"],
            "people": [16446.333333, -7.275958e-12],
            "need_weighted_population": [1.5, 2.5],
            "pct_65_plus": [12.345678, 0.0],
            "patients_per_gp_fte": [1700.25, 1.25],
            "covered": [True, False],
        }
    )
    lines = _frame_text(frame).splitlines()
    assert lines[1].split() == ["E01000001", "16,446", "2", "12.35", "1,700", "True"]
    assert lines[2].split() == ["E01000002", "0", "2", "0", "1.25", "False"]


def test_deserts_say_how_many_and_print_whole_people(demo, demo_store):
    """Regression: `defib deserts` printed the top 20 without saying how many deserts there are."""
    found = defib.deserts(defib.coverage(demo_store), "night")
    result = runner.invoke(app, ["defib", "deserts", "--store", str(demo.store_path)])
    assert result.exit_code == 0, result.output
    assert f"{min(20, len(found))} of {len(found):,} deserts" in result.output
    rows = [line.split() for line in result.output.splitlines() if re.match(r"\s*E0\d{7}\s", line)]
    assert len(rows) == min(20, len(found))
    assert all(re.fullmatch(r"\d{1,3}(,\d{3})*", row[1]) for row in rows)


def test_crowfly_runs_say_nothing_about_the_network(tmp_path, demo):
    """Regression: crow-fly runs printed "0 LSOAs and 0 sites too far from the network"."""
    store = tmp_path / "s.duckdb"
    shutil.copyfile(demo.store_path, store)
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
            "10",
            "--crowfly",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "(crowfly)" in result.output and "network" not in result.output


def test_equity_can_choose_the_crowfly_run(demo):
    """Regression: `equity` could not choose the area-wide crow-fly run once a network run existed."""
    plain = runner.invoke(app, ["equity", "--store", str(demo.store_path), "--mode", "drive"])
    crowfly = runner.invoke(app, ["equity", "--store", str(demo.store_path), "--mode", "drive", "--crowfly"])
    assert plain.exit_code == 0 and crowfly.exit_code == 0, plain.output + crowfly.output
    assert "(gp, drive, drive)" in plain.output and "(gp, drive, crowfly)" in crowfly.output


def test_tables_show_missing_people_and_nullable_columns():
    frame = pd.DataFrame(
        {"people": pd.array([1, None], dtype="Int64"), "score": pd.array([0.5, None], dtype="Float64")}
    )
    assert [line.split() for line in _frame_text(frame).splitlines()[1:]] == [["1", "0.5"], ["n/a", "n/a"]]
