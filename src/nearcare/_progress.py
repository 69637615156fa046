"""Progress for long work: messages through ``logging`` (logger ``nearcare``), bars on a terminal.

The library never prints. Each long step logs what it starts, how far it has got (countable work,
every quarter) and how long it took at INFO on the ``nearcare`` logger, which is silent unless the
application turns it on (the CLI does, unless ``--quiet``: plain lines off a terminal; a notebook
can ``logging.basicConfig(level=logging.INFO)``). On a terminal a transient bar with counts
(``steps``, or ``step`` with a total) or a spinner with the step's name (``step``) is also drawn on
standard error; elsewhere (tests, CI logs) nothing is. ``set_quiet(True)`` turns the drawing off.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sized
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol, TypeVar

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

log = logging.getLogger("nearcare")
T = TypeVar("T")
_FILES_WORTH_A_BAR = 5 << 20  # bytes: smaller files read too fast for a bar to help


class Advance(Protocol):
    def __call__(self, count: int = 1) -> None: ...


_quiet = False
_active: list[Advance] = []  # advance() of the innermost open step


def set_quiet(quiet: bool) -> None:
    """Draw no bars or spinners (the CLI's ``--quiet``); logging is the application's to silence."""
    global _quiet
    _quiet = quiet


def _enabled() -> bool:
    return not _quiet and sys.stderr.isatty()


class _Counter:
    """Counts work done in a step and logs each quarter of a known total (plain lines off a terminal)."""

    def __init__(self, description: str, total: int | None):
        self.description, self.total, self.done, self._logged = description, total, 0, 0

    def advance(self, count: int = 1) -> None:
        self.done += count
        if self.total and self.done * 4 // self.total > self._logged:
            self._logged = self.done * 4 // self.total
            log.info("%s: %d/%d", self.description, self.done, self.total)


@contextmanager
def step(description: str, total: int | None = None) -> Iterator[Advance]:
    """A long step that is not a loop here: logs its start, counts and time; on a terminal a spinner
    with its name (and a count of what ``advance`` reports, e.g. figures written, out of ``total`` if
    known). Yields ``advance(count=1)``; code deeper down calls ``advance()`` of this module."""
    counter = _Counter(description, total)
    log.info("%s: started%s", description, "" if total is None else f", {total} to do")
    started = time.perf_counter()
    with _spinner(description, total) as draw:

        def advance(count: int = 1) -> None:
            counter.advance(count)
            draw(count)

        _active.append(advance)
        try:
            yield advance
        finally:
            _active.pop()
    counted = f", {counter.done} done" if counter.done else ""
    log.info("%s: done in %.1f s%s", description, time.perf_counter() - started, counted)


def advance(count: int = 1) -> None:
    """Count work done in the innermost open ``step`` (nothing when none is open)."""
    if _active:
        _active[-1](count)


_live: list[Progress] = []  # the one display on screen (rich draws one at a time): inner steps join it


@contextmanager
def _task(description: str, total: float | None, *, reading: bool = False) -> Iterator[Callable[..., None]]:
    """A line on the terminal's one progress display: yields ``advance(count)`` (or, ``reading``,
    ``advance(bytes_read)``); a spinner and a count, with a bar when the total is known."""
    if not _enabled():
        yield lambda *_args: None
        return
    if _live:
        display = _live[0]
        task = display.add_task(description, total=total)

        def advance(count: float = 1) -> None:
            if reading:  # count is the bytes read so far
                display.update(task, completed=count)
            else:
                display.advance(task, count)

        try:
            yield advance
        finally:
            display.remove_task(task)
        return
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=True) as display:
        _live.append(display)
        try:
            with _task(description, total, reading=reading) as advance:
                yield advance
        finally:
            _live.clear()


@contextmanager
def _spinner(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    with _task(description, total) as advance:
        yield advance


@contextmanager
def reading_progress(path: Path) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(bytes_read)``; draws a bar for large files on a terminal."""
    size = path.stat().st_size
    if size < _FILES_WORTH_A_BAR:
        yield lambda _done: None
        return
    with _task(f"reading {path.name}", size, reading=True) as advance:
        yield advance


def steps(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate, logging the start and the time taken, with a bar on a terminal (``description`` says
    what each step is)."""
    count = total if total is not None else len(items) if isinstance(items, Sized) else None
    log.info("%s: %s steps", description, "unknown" if count is None else count)
    started, counter = time.perf_counter(), _Counter(description, count)
    for item in _bar(items, description, count):
        yield item
        counter.advance()
    log.info("%s: done in %.1f s", description, time.perf_counter() - started)


def _bar(items: Iterable[T], description: str, total: int | None) -> Iterator[T]:
    with _task(description, total) as advance:
        for item in items:
            yield item
            advance(1)
