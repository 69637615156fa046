"""Library progress goes through logging (logger ``nearcare``), never print; silent unless enabled."""

from __future__ import annotations

import logging
import re

from nearcare._progress import advance, step, steps
from nearcare.cli import show_progress


def test_steps_log_start_and_finish_and_yield_everything(caplog, capsys):
    with caplog.at_level(logging.INFO, logger="nearcare"):
        assert list(steps(iter(range(5)), "closing each gp", total=5)) == [0, 1, 2, 3, 4]
        assert list(steps([1, 2], "routing")) == [1, 2]
    messages = [r.getMessage() for r in caplog.records if r.name == "nearcare"]
    assert messages[0] == "closing each gp: 5 steps"
    assert messages[1:5] == [f"closing each gp: {n}/5" for n in (2, 3, 4, 5)]  # each quarter passed
    assert messages[5].startswith("closing each gp: done in ")
    assert messages[6] == "routing: 2 steps"
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""  # not a terminal: no bar, nothing printed


def test_steps_are_silent_by_default(caplog):
    with caplog.at_level(logging.WARNING, logger="nearcare"):
        list(steps(range(3), "routing"))
    assert not [r for r in caplog.records if r.name == "nearcare"]


def test_a_step_logs_its_start_counts_and_time_and_advance_reaches_the_innermost(caplog, capsys):
    with caplog.at_level(logging.INFO, logger="nearcare"):
        advance()  # no step open: nothing to count, no error
        with step("writing the report (figures)"):
            with step("designing neighbourhoods (LSOAs assigned)", total=8) as assigned:
                assigned(6)
                assigned(2)
            for _ in range(3):
                advance()  # as report.maps does for each figure
    messages = [r.getMessage() for r in caplog.records if r.name == "nearcare"]
    assert messages[0] == "writing the report (figures): started"
    assert messages[1] == "designing neighbourhoods (LSOAs assigned): started, 8 to do"
    assert messages[2:4] == [
        "designing neighbourhoods (LSOAs assigned): 6/8",
        "designing neighbourhoods (LSOAs assigned): 8/8",
    ]
    assert re.fullmatch(
        r"designing neighbourhoods \(LSOAs assigned\): done in \d+\.\d s, 8 done", messages[4]
    )
    assert re.fullmatch(r"writing the report \(figures\): done in \d+\.\d s, 3 done", messages[5])
    assert capsys.readouterr().err == ""  # not a terminal: no spinner drawn


def test_the_cli_shows_progress_as_plain_lines_unless_quiet(capsys):
    restore = show_progress(True)
    try:
        with step("ranking every practice closure"):
            pass
        shown = capsys.readouterr().err.splitlines()
        assert shown[0] == "  ranking every practice closure: started"
        assert shown[1].startswith("  ranking every practice closure: done in ")
    finally:
        restore()
    restore = show_progress(False)  # --quiet
    try:
        with step("ranking every practice closure"):
            list(steps(range(3), "closing each gp"))
        assert capsys.readouterr().err == ""
    finally:
        restore()


def test_a_cli_command_leaves_no_progress_handler_behind(capsys):
    """Run inside another program (a notebook, a test), a command's progress lines end with it."""
    from typer.testing import CliRunner

    from nearcare.cli import app

    logger = logging.getLogger("nearcare")
    before = (list(logger.handlers), logger.level)
    assert CliRunner().invoke(app, ["kinds"]).exit_code == 0
    assert (list(logger.handlers), logger.level) == before
    with step("after the command"):
        pass
    assert capsys.readouterr().err == ""


def test_on_a_terminal_nested_steps_share_one_display(monkeypatch, tmp_path):
    """A bar inside a spinner (closures counted inside the demo's ranking step, a large file read
    inside an import) is one more line of the open display, removed when its work ends."""
    from nearcare import _progress

    monkeypatch.setattr(_progress, "_enabled", lambda: True)
    big = tmp_path / "big.csv"
    big.write_bytes(b"x" * (_progress._FILES_WORTH_A_BAR + 1))
    with step("ranking every practice closure") as outer:
        assert list(steps(range(3), "closing each gp")) == [0, 1, 2]
        with step("designing neighbourhoods (LSOAs assigned)", total=4) as inner:
            inner(4)
            with _progress.reading_progress(big) as read:
                read(100)
                (display,) = _progress._live
                shown = {t.description: t.completed for t in display.tasks}
                assert shown == {
                    "ranking every practice closure": 0,
                    "designing neighbourhoods (LSOAs assigned)": 4,
                    "reading big.csv": 100,
                }
        outer()
    assert not _progress._live  # the display is closed with the outermost step
