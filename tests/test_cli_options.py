"""Every command, driven with bad options and bad stores: one line, exit code 2, the store untouched.

The commands are enumerated from the typer app, so a new command or a new numeric option is covered
(and must be validated) without editing this file; only a new command's required arguments go in
``REQUIRED`` below.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import typing
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from nearcare import __version__
from nearcare.cli import app

runner = CliRunner()

# Arguments and options a command cannot run without (values that parse; the store decides the rest).
REQUIRED = {
    ("import",): ["ods-gp-practices", "epraccur.csv"],
    ("build",): ["--area", "QK1"],
    ("scenario",): ["scenario.toml"],
    ("export",): ["sites", "sites.csv"],
    ("allocate",): ["--units", "1"],
    ("defib", "report"): ["--access", "public", "--hours", "24/7"],
    ("defib", "site"): ["--k", "1"],
    ("neighbourhoods", "load"): ["neighbourhoods.csv"],
}
# Not a number, infinite, negative and absurd; none is allowed for any option (longitude too: -100).
BAD_NUMBERS = ["nan", "inf", "-inf", "-100", "-1e308", "1e308", "1e15", "99999999999999999999"]


def _commands(group=None, words=()):
    """(words, click command) for every command of the app, sub-apps included."""
    group = group or typer.main.get_command(app)
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from _commands(command, (*words, name))
        else:
            yield (*words, name), command


COMMANDS = dict(_commands())


def _numeric_options(words) -> list[str]:
    """The command's options whose Python type is a number (int or float, optional or not)."""
    command = COMMANDS[words]
    hints = typing.get_type_hints(command.callback)
    numeric = []
    for param in command.params:
        hint = hints.get(param.name)
        types = set(typing.get_args(hint)) - {type(None)} if typing.get_args(hint) else {hint}
        if types & {int, float} and param.param_type_name == "option":
            numeric.append(param.opts[-1])
    return numeric


def _fingerprint(store) -> dict[str, tuple]:
    """Row count and an order-free hash of every table's contents."""
    return {
        table: store.con.execute(f'SELECT count(*), sum(hash(t)) FROM "{table}" t').fetchone()
        for table in store.tables()
    }


def _files(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()
    }


def _one_line_error(result, *needles: str) -> None:
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    for needle in needles:
        assert needle in lines[0], result.output


def test_the_enumeration_finds_every_command():
    assert {
        ("travel-times",),
        ("access",),
        ("defib", "deserts"),
        ("neighbourhoods", "design"),
        ("serve",),
    } <= set(COMMANDS)
    assert set(_numeric_options(("travel-times",))) == {"--max-minutes", "--max-snap-m"}
    assert set(_numeric_options(("defib", "report"))) == {"--lat", "--lon"}


COMMANDS_WITH_NUMBERS = [words for words in COMMANDS if _numeric_options(words)]


@pytest.mark.parametrize("words", COMMANDS_WITH_NUMBERS, ids=" ".join)
def test_bad_numbers_end_in_one_line_and_leave_the_store_alone(words, store):
    """Regression: `travel-times --max-minutes nan` deleted the stored walk-to-GP pairs, and
    `access --threshold-minutes nan` and `network --walk-speed-kph nan` crashed."""
    before, files = _fingerprint(store), _files(store.path.parent)
    store_args = (
        ["--store", str(store.path)] if any(p.name == "store" for p in COMMANDS[words].params) else []
    )
    for option in _numeric_options(words):
        for value in BAD_NUMBERS:
            args = [*words, *REQUIRED.get(words, []), *store_args, option, value]
            result = runner.invoke(app, args)
            _one_line_error(result, option)
            assert _fingerprint(store) == before, f"{' '.join(args)} changed the store"
            assert _files(store.path.parent) == files, f"{' '.join(args)} changed the store's folder"


@pytest.mark.parametrize("words", list(COMMANDS), ids=" ".join)
def test_a_file_that_is_not_a_store(words, tmp_path):
    """Every command given a --store that is not a DuckDB file (or is a folder) says so in one line."""
    if words in (("demo",), ("kinds",), ("fetch",)):  # the commands without a store
        assert not any(p.name == "store" for p in COMMANDS[words].params)
        return
    not_a_store = tmp_path / "notes.duckdb"
    not_a_store.write_text("lsoa21_code,people\nE01000001,1500\n")
    for path, message in ((not_a_store, "not a nearcare store"), (tmp_path, "cannot open the store")):
        (tmp_path / "out").mkdir(exist_ok=True)
        files = _files(tmp_path)
        result = runner.invoke(
            app, [*words, *REQUIRED.get(words, []), "--store", str(path)], catch_exceptions=True
        )
        _one_line_error(result, str(path), message)
        assert _files(tmp_path) == files


def test_version():
    """Regression: `nearcare --version` failed with "Missing command"."""
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == __version__


@pytest.mark.parametrize("words", [("import",), ("build",), ("network",), ("defib", "import")], ids=" ".join)
def test_a_failed_first_command_leaves_no_store(words, tmp_path):
    """Regression: a failed import into a new --store path left an empty store behind."""
    bad = tmp_path / "epraccur.csv"
    bad.write_text("not,a,practice,file\n")
    args = {("import",): ["import", "ods-gp-practices", str(bad)], ("build",): ["build", "--area", "QK1"]}
    new = tmp_path / "new" / "deeper" / "s.duckdb"
    result = runner.invoke(app, [*args.get(words, words), "--store", str(new)])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert not (tmp_path / "new").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epraccur.csv"]


def test_a_store_held_by_another_process(tmp_path, demo):
    """DuckDB's 'Could not set lock on file' becomes one line naming the process and what to do."""
    import shutil

    path = tmp_path / "s.duckdb"
    shutil.copyfile(demo.store_path, path)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
            "print('ready', flush=True); time.sleep(60)",
            str(path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        files = _files(tmp_path)
        for args in (["tables"], ["travel-times", "--crowfly"], ["access"]):
            result = runner.invoke(app, [*args, "--store", str(path)])
            _one_line_error(result, "in use by process", str(holder.pid), "nearcare serve")
        assert _files(tmp_path) == files
    finally:
        holder.kill()
        holder.wait()


def test_an_unexpected_failure_is_one_line_unless_debugging(tmp_path, demo, monkeypatch):
    """A bug shows one line and exit code 1; --debug (for developers) lets its traceback through."""
    from nearcare.store import Store

    def broken(self):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(Store, "tables", broken)
    result = runner.invoke(app, ["tables", "--store", str(demo.store_path)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    (line,) = result.output.strip().splitlines()
    assert "unexpected ZeroDivisionError: division by zero" in line and "--debug" in line
    result = runner.invoke(app, ["--debug", "tables", "--store", str(demo.store_path)])
    assert isinstance(result.exception, ZeroDivisionError)


def test_the_england_box_matches_geo():
    from nearcare import cli, geo

    assert (cli.ENGLAND_LAT, cli.ENGLAND_LON) == (geo.ENGLAND_LAT, geo.ENGLAND_LON)


@pytest.mark.parametrize(
    "problem",
    [
        EOFError("Compressed file ended before the end-of-stream marker was reached"),
        IsADirectoryError(21, "Is a directory", "data/"),
        UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_unreadable_input_is_one_line_and_exit_code_2(demo, monkeypatch, problem):
    """A file that cannot be read (truncated gzip, a folder, undecodable bytes) is the user's input, not a bug."""
    from nearcare.store import Store

    def unreadable(self):
        raise problem

    monkeypatch.setattr(Store, "tables", unreadable)
    result = runner.invoke(app, ["tables", "--store", str(demo.store_path)])
    _one_line_error(result, str(problem).split()[0])


def test_an_error_message_with_brackets_is_printed_as_is(demo, monkeypatch):
    """Rich markup in a message (a value from a user's file) is shown, not interpreted (or crashed on)."""
    from nearcare._errors import InputError
    from nearcare.store import Store

    def bracketed(self):
        raise InputError("bad value", path="f.csv", line=3, field="name", value="[/] [bold]x")

    monkeypatch.setattr(Store, "tables", bracketed)
    result = runner.invoke(app, ["tables", "--store", str(demo.store_path)])
    _one_line_error(result, "f.csv, line 3, field 'name': bad value (got '[/] [bold]x')")


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["allocate", "--units", "10", "--floor", "5", "--cap", "1"], "--cap"),
        (
            ["neighbourhoods", "design", "--min-population", "60000", "--max-population", "40000"],
            "--max-population",
        ),
        (["access", "--zones", "5:1,nan:0.5"], "--zones"),
        (["access", "--zones", "5:1,10:1.5"], "--zones"),
    ],
    ids=lambda a: " ".join(a) if isinstance(a, list) else a,
)
def test_options_that_contradict_each_other(args, named, store):
    before, files = _fingerprint(store), _files(store.path.parent)
    result = runner.invoke(app, [*args, "--store", str(store.path)])
    _one_line_error(result, named)
    assert _fingerprint(store) == before and _files(store.path.parent) == files
