"""Library progress goes through logging (logger ``nearcare``), never print; silent unless enabled."""

from __future__ import annotations

import logging

from nearcare._progress import steps


def test_steps_log_start_and_finish_and_yield_everything(caplog, capsys):
    with caplog.at_level(logging.INFO, logger="nearcare"):
        assert list(steps(iter(range(5)), "closing each gp", total=5)) == [0, 1, 2, 3, 4]
        assert list(steps([1, 2], "routing")) == [1, 2]
    messages = [r.getMessage() for r in caplog.records if r.name == "nearcare"]
    assert messages[0] == "closing each gp: 5 steps" and messages[1].startswith("closing each gp: done in ")
    assert messages[2] == "routing: 2 steps"
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""  # not a terminal: no bar, nothing printed


def test_steps_are_silent_by_default(caplog):
    with caplog.at_level(logging.WARNING, logger="nearcare"):
        list(steps(range(3), "routing"))
    assert not [r for r in caplog.records if r.name == "nearcare"]
