"""Every long step of ``nearcare demo`` reports progress (#19): the session's demo ran once through the
CLI runner (tests/conftest.py), and what it printed is read here; the demo is not run again."""

from __future__ import annotations

import re

import pytest

# The demo's steps, in order; (step, what is counted and how many) where the work is countable.
STEPS = [
    "loading the bundled data",
    "building the area",
    "building the road networks",
    "walk times on the Rutland road network",
    "drive times on the Rutland road network",
    "crow-fly times and access measures",
    "allocating GP FTE",
    "closing Empingham Medical Centre",
    "ranking every practice closure",
    "siting defibrillators",
    "checking the neighbourhoods",
    "writing the report (figures)",
]


def _lines(demo_output: str) -> list[str]:
    return [line.strip() for line in demo_output.splitlines()]


@pytest.mark.parametrize("name", STEPS)
def test_each_demo_step_reports_its_start_and_its_time(demo_output, name):
    lines = _lines(demo_output)
    started = [i for i, line in enumerate(lines) if line.startswith(f"{name}: started")]
    done = [i for i, line in enumerate(lines) if re.match(rf"{re.escape(name)}: done in \d+\.\d s", line)]
    assert len(started) == 1 and len(done) == 1 and started[0] < done[0]


def test_steps_come_in_the_demos_order(demo_output):
    lines = _lines(demo_output)
    firsts = [
        next(i for i, line in enumerate(lines) if line.startswith(f"{name}: started")) for name in STEPS
    ]
    assert firsts == sorted(firsts)


def test_countable_work_is_counted(demo, demo_output, demo_store):
    lines = _lines(demo_output)
    practices = len(demo_store.df("SELECT code FROM sites WHERE kind = 'gp'"))
    lsoas = len(demo_store.df("SELECT lsoa21_code FROM small_areas"))
    # Closures ranked, each quarter and the last.
    assert f"closing each gp: {practices}/{practices}" in lines
    assert f"closing each gp: {practices} steps" in lines
    # LSOAs assigned to neighbourhoods, unit by unit.
    assert f"designing neighbourhoods (LSOAs assigned): {lsoas}/{lsoas}" in lines
    # Figures written: as many as the report embeds.
    figures = demo.report_path.read_text(encoding="utf-8").count('src="data:image/png;base64,')
    written = [line for line in lines if line.startswith("writing the report (figures): done in ")]
    assert figures > 5 and written[0].endswith(f", {figures} done")
