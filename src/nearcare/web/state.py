"""How the web app reaches its store: read-only connections per request, a brief read-write one per
report, and heavy results computed once per store version.

DuckDB lets many processes read a file at once but only one write it, and within one process every
connection to a file must share one configuration. So the server never holds a read-write connection:
each request reads through its own read-only connection (other commands, such as ``nearcare tables``,
``export`` and ``report``, keep working alongside; one idle read-only connection lingers for
``LINGER_SECONDS`` after the last request so that a busy server does not reopen the file each time),
and a defibrillator report waits for this process's readers to finish, opens the store read-write for
the one transaction, and closes it. When another
process holds the store, opening is retried briefly; after that the request gets a 503 that says, in
one line, what holds the store and what to do.
"""

from __future__ import annotations

import atexit
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from fastapi import HTTPException

from nearcare._errors import StoreError
from nearcare._progress import log
from nearcare.project import Project

T = TypeVar("T")
RETRY_SECONDS = 3.0  # how long a request waits for another process to let go of the store
# A read-only connection is kept open this long after the last request, so that a busy server does not
# pay for opening the file on every request (about 0.1 s) yet an idle one soon lets other processes write.
LINGER_SECONDS = 2.0
# Every store the process has opened, so that their idle connections close before the interpreter
# finalizes (``_close_at_exit``).
_OPEN: weakref.WeakSet[StoreAccess] = weakref.WeakSet()
_exiting = False


class ReadersWriter:
    """Many readers or one writer; a waiting writer holds back new readers so that it is not starved."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False
        self._writers_waiting = 0

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._writing and not self._writers_waiting)
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def writing(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            self._cond.wait_for(lambda: not self._writing and self._readers == 0)
            self._writers_waiting -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


def _in_use(exc: StoreError) -> bool:
    return "in use by" in str(exc)


def open_project(path: Path, *, read_only: bool, retry_seconds: float = RETRY_SECONDS) -> Project:
    """Open the store, retrying for up to ``retry_seconds`` while another process holds it."""
    deadline = time.monotonic() + retry_seconds
    pause = 0.05
    while True:
        try:
            return Project(path, read_only=read_only)
        except StoreError as exc:
            if not _in_use(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.5)


def _opened(path: Path, *, read_only: bool) -> Project:
    try:
        return open_project(path, read_only=read_only)
    except StoreError as exc:  # held by another process past the retries, or damaged: one line, 503
        raise HTTPException(503, str(exc)) from None


class StoreAccess:
    """The store behind the app, with a cache of heavy results kept per store version.

    A cached result names the tables it reads. A report written through this app bumps the versions of
    the tables it writes (so the defibrillator coverage is computed again, and the equity page is not);
    any other change to the store file (another command, seen by its size and modification time)
    invalidates everything.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = ReadersWriter()
        self._cache: dict[tuple, tuple[tuple, Any]] = {}
        self._key_locks: dict[tuple, threading.Lock] = {}
        self._guard = threading.Lock()
        self._table_versions: Counter[str] = Counter()
        self._generation = 0
        self._signature = self._file_signature()
        self.computed: Counter[str] = Counter()  # computations by cache name (for tests and diagnostics)
        self._idle: Project | None = (
            None  # keeps DuckDB's database open between requests (see LINGER_SECONDS)
        )
        self._idle_lock = threading.Lock()
        self._last_read = 0.0
        self._closer: threading.Timer | None = None
        _OPEN.add(self)

    def _file_signature(self) -> tuple:
        parts: list[tuple[int, int] | None] = []
        for file in (self.path, self.path.with_name(self.path.name + ".wal")):
            try:
                stat = file.stat()
            except FileNotFoundError:
                parts.append(None)
            else:
                parts.append((stat.st_mtime_ns, stat.st_size))
        return tuple(parts)

    def _version(self, tables: Iterable[str]) -> tuple:
        """The version of ``tables``; a change to the file not made by this app starts a new generation."""
        with self._guard:
            signature = self._file_signature()
            if signature != self._signature:
                self._signature = signature
                self._generation += 1
            return (self._generation, *(self._table_versions[t] for t in sorted(tables)))

    @contextmanager
    def reading(self) -> Iterator[Project]:
        """A read-only project for one request."""
        with self.lock.reading():
            with self._idle_lock:
                if self._idle is None:
                    self._idle = _opened(self.path, read_only=True)
                project = _opened(self.path, read_only=True)  # the same database: opens at once
            try:
                yield project
            finally:
                project.close()
                self._linger()

    def _linger(self) -> None:
        with self._idle_lock:
            self._last_read = time.monotonic()
            if self._closer is None and not _exiting:
                self._start_closer(LINGER_SECONDS)

    def _start_closer(self, seconds: float) -> None:
        """A daemon timer that closes the idle connection (hold ``_idle_lock``)."""
        self._closer = threading.Timer(seconds, self._close_when_idle)
        self._closer.daemon = True
        self._closer.start()

    def _close_when_idle(self) -> None:
        with self._idle_lock:
            if self._closer is not threading.current_thread():
                return  # cancelled by release() while it waited for the lock: a newer timer may run
            self._closer = None
            idle_for = time.monotonic() - self._last_read
            if idle_for < LINGER_SECONDS and not _exiting:
                self._start_closer(LINGER_SECONDS - idle_for)
            elif self._idle is not None:
                self._idle.close()
                self._idle = None

    def release(self) -> threading.Timer | None:
        """Close the idle read-only connection now (requests open it again when they need it).

        Returns the timer it stopped, if any (its thread ends soon after; join it to wait).
        """
        with self._idle_lock:
            stopped, self._closer = self._closer, None
            if stopped is not None:
                stopped.cancel()
            if self._idle is not None:
                self._idle.close()
                self._idle = None
        return stopped

    @contextmanager
    def writing(self, tables: Iterable[str]) -> Iterator[Project]:
        """A read-write project for one short write to ``tables``, closed straight after."""
        with self.lock.writing():
            self.release()  # one process cannot have a file open read-only and read-write at once
            project = _opened(self.path, read_only=False)
            try:
                yield project
            finally:
                project.close()
                with self._guard:
                    self._table_versions.update(set(tables))
                    self._signature = self._file_signature()  # this app's own change: no new generation

    def cached(self, name: str, args: tuple, tables: Iterable[str], compute: Callable[[Project], T]) -> T:
        """``compute(project)`` once per version of ``tables``; concurrent callers wait for one result."""
        tables = tuple(tables)
        key = (name, *args)
        with self._guard:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            version = self._version(tables)
            hit = self._cache.get(key)
            if hit is not None and hit[0] == version:
                return hit[1]
            with self.reading() as project:
                value = compute(project)
            self.computed[name] += 1
            self._cache[key] = (version, value)
            return value


@atexit.register
def _close_at_exit() -> None:
    """Close idle connections while the interpreter still runs, not in a timer as it finalizes.

    Closing releases the GIL inside DuckDB; a daemon thread that takes it back once finalization has
    begun is ended mid-C++, which aborts the whole process (exit 134 after a clean run).
    """
    global _exiting
    _exiting = True
    stopped = []
    for store in list(_OPEN):
        try:
            stopped.append(store.release())
        except Exception as exc:  # one store's failure must not leave the others open
            log.warning("could not close the store %s at exit: %s", store.path, exc)
    for timer in stopped:
        if timer is not None:
            timer.join(timeout=5)
