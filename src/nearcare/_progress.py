"""Progress for long work: messages through ``logging`` (logger ``nearcare``), bars on a terminal.

The library never prints. Each long step logs what it starts and how long it took at INFO on the
``nearcare`` logger, which is silent unless the application turns it on (the CLI shows it under its
rich output; a notebook can ``logging.basicConfig(level=logging.INFO)``). On a terminal a transient
bar is also drawn on standard error; elsewhere (tests, CI logs) nothing is.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sized
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

log = logging.getLogger("nearcare")
T = TypeVar("T")
_FILES_WORTH_A_BAR = 5 << 20  # bytes: smaller files read too fast for a bar to help


def _enabled() -> bool:
    return sys.stderr.isatty()


@contextmanager
def reading_progress(path: Path) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(bytes_read)``; draws a bar for large files on a terminal."""
    size = path.stat().st_size
    if not _enabled() or size < _FILES_WORTH_A_BAR:
        yield lambda _done: None
        return
    with Progress(
        TextColumn(f"reading {path.name}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task("read", total=size)
        yield lambda done: bar.update(task, completed=done)


def steps(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate, logging the start and the time taken, with a bar on a terminal (``description`` says
    what each step is)."""
    count = total if total is not None else len(items) if isinstance(items, Sized) else None
    log.info("%s: %s steps", description, "unknown" if count is None else count)
    started = time.perf_counter()
    yield from _bar(items, description, count)
    log.info("%s: done in %.1f s", description, time.perf_counter() - started)


def _bar(items: Iterable[T], description: str, total: int | None) -> Iterator[T]:
    if not _enabled():
        yield from items
        return
    with Progress(
        TextColumn(description),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeRemainingColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=total)
        for item in items:
            yield item
            bar.advance(task)
