"""Progress bars for long work, shown on a terminal and silent elsewhere (tests, CI logs)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

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
    """Iterate with a bar on a terminal (``description`` says what each step is)."""
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
        task = bar.add_task(description, total=total if total is not None else len(items))  # type: ignore[arg-type]
        for item in items:
            yield item
            bar.advance(task)
