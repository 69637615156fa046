"""Downloads that can be trusted: resumed, retried, timed out, verified, then moved into place whole.

A download is written to ``CACHE/.partial/NAME.part`` and moved to ``CACHE/.../NAME`` (one
``os.replace`` on the same file system) only after its size and checksum or format are checked,
so an import never sees half a file. A part left by a cut connection is resumed with an HTTP
``Range`` request on the next attempt, or on the next run.
"""

from __future__ import annotations

import gzip
import http.client
import os
import socket
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path

from nearcare._errors import InputError
from nearcare._version import __version__
from nearcare.store import file_sha256

CHUNK_BYTES = 1 << 16
USER_AGENT = f"nearcare/{__version__} (+https://github.com/nearcare)"
Progress = Callable[[int, int | None], None]  # (bytes so far, total bytes or None)


class FetchError(InputError):
    """A file could not be fetched or failed its check; the message names the file and its URL."""

    def __init__(self, problem: str, *, name: str, url: str) -> None:
        super().__init__(f"{problem} [{url}]", path=name)
        self.url = url


class _Retry(Exception):
    """A failure worth another attempt (timeout, cut connection, server error)."""


def partial_path(dest: Path, cache: Path) -> Path:
    return cache / ".partial" / (dest.name + ".part")


def download(
    url: str,
    dest: Path,
    *,
    cache: Path,
    sha256: str = "",
    size_bytes: int = 0,
    fmt: str = "",
    timeout_s: float = 60.0,
    retries: int = 3,
    backoff_s: float = 1.0,
    progress: Progress | None = None,
) -> Path:
    """Fetch ``url`` to ``dest`` (a path under ``cache``) unless it is there already.

    Retries a timeout, a cut connection or a 5xx reply ``retries`` times, waiting
    ``backoff_s`` x 1, 2, 4... seconds, resuming from the bytes already received.
    """
    if dest.exists():
        return dest
    part = partial_path(dest, cache)
    part.parent.mkdir(parents=True, exist_ok=True)
    name = dest.name
    for attempt in range(retries + 1):
        try:
            _get(url, part, timeout_s=timeout_s, progress=progress, name=name)
            break
        except _Retry as exc:
            if attempt == retries:
                raise FetchError(f"{exc} after {retries + 1} attempts", name=name, url=url) from None
            time.sleep(backoff_s * 2**attempt)
    try:
        verify(part, sha256=sha256, size_bytes=size_bytes, fmt=fmt)
    except ValueError as exc:
        part.unlink(missing_ok=True)  # a bad file is never kept, so the next run starts afresh
        raise FetchError(str(exc), name=name, url=url) from None
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(part, dest)
    return dest


def _get(url: str, part: Path, *, timeout_s: float, progress: Progress | None, name: str) -> None:
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout_s)
    except urllib.error.HTTPError as exc:
        if exc.code == 416:  # the part is whole or the file changed: start again
            part.unlink(missing_ok=True)
            raise _Retry("the server refused to resume (HTTP 416)") from None
        if exc.code >= 500 or exc.code in (408, 429):
            raise _Retry(f"HTTP {exc.code} {exc.reason}") from None
        raise FetchError(f"HTTP {exc.code} {exc.reason}", name=name, url=url) from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError | socket.timeout):
            raise _Retry(f"no reply within {timeout_s:g} s") from None
        if isinstance(exc.reason, ConnectionError):
            raise _Retry(f"connection failed ({exc.reason})") from None
        raise FetchError(f"cannot reach the server ({exc.reason})", name=name, url=url) from None
    except TimeoutError:
        raise _Retry(f"no reply within {timeout_s:g} s") from None
    except (ConnectionError, http.client.HTTPException) as exc:
        raise _Retry(f"connection failed ({exc})") from None
    with response:
        length = response.headers.get("Content-Length")
        resumed = have > 0 and response.status == 206
        if not resumed:
            have = 0  # the server sent the whole file: start the part again
        total = have + int(length) if length is not None else None
        done = have
        try:
            with part.open("ab" if resumed else "wb") as out:
                while chunk := response.read(CHUNK_BYTES):
                    out.write(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, total)
        except TimeoutError:
            raise _Retry(f"the download stalled for {timeout_s:g} s at {done:,} bytes") from None
        except (ConnectionError, http.client.HTTPException) as exc:
            raise _Retry(f"the connection was cut at {done:,} bytes ({type(exc).__name__})") from None
    if total is not None and done < total:
        raise _Retry(f"truncated download: {done:,} of {total:,} bytes")


def verify(path: Path, *, sha256: str = "", size_bytes: int = 0, fmt: str = "") -> None:
    """Raise ValueError unless ``path`` has the stated size and checksum and looks like ``fmt``."""
    size = path.stat().st_size
    if size == 0:
        raise ValueError("the download is empty")
    if size_bytes and size != size_bytes:
        raise ValueError(f"size {size:,} bytes, the manifest says {size_bytes:,}")
    if sha256:
        got = file_sha256(path)
        if got != sha256.lower():
            raise ValueError(f"checksum mismatch: SHA-256 {got}, the manifest says {sha256.lower()}")
    with path.open("rb") as handle:
        head = handle.read(4096)
    if head.lstrip()[:15].lower().startswith((b"<!doctype html", b"<html")):
        raise ValueError("the server sent a web page, not the file (has the publisher moved it?)")
    sniff = _SNIFFERS.get(fmt)
    if sniff:
        sniff(path, head)


def _sniff_zip(path: Path, head: bytes) -> None:
    if not head.startswith(b"PK\x03\x04"):
        raise ValueError("not a zip file")
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()  # reads every member: a CRC error means a damaged download
    except zipfile.BadZipFile as exc:
        raise ValueError(f"a damaged zip file ({exc})") from None
    if bad:
        raise ValueError(f"a damaged zip file (member {bad} fails its CRC)")


def _sniff_gzip(path: Path, head: bytes) -> None:
    if not head.startswith(b"\x1f\x8b"):
        raise ValueError("not a gzip file")
    try:
        with gzip.open(path, "rb") as handle:
            while handle.read(1 << 20):
                pass
    except (OSError, EOFError) as exc:
        raise ValueError(f"a damaged gzip file ({exc})") from None


def _sniff_csv(path: Path, head: bytes) -> None:
    if b"\x00" in head:
        raise ValueError("not a CSV file (binary bytes)")
    if b"," not in head and b"\n" not in head:
        raise ValueError("not a CSV file (no comma or line break in its first 4 KB)")


def _sniff_geojson(path: Path, head: bytes) -> None:
    if not head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        raise ValueError("not a GeoJSON file")


def _sniff_gpkg(path: Path, head: bytes) -> None:
    if not head.startswith(b"SQLite format 3\x00"):
        raise ValueError("not a GeoPackage (SQLite) file")


def _sniff_pbf(path: Path, head: bytes) -> None:
    # An OSM PBF file opens with a 4-byte length, then a BlobHeader whose type is "OSMHeader".
    header_length = int.from_bytes(head[:4], "big")
    if not 0 < header_length < 64 * 1024 or b"OSMHeader" not in head[4 : 4 + header_length]:
        raise ValueError("not an OpenStreetMap PBF file")


_SNIFFERS: dict[str, Callable[[Path, bytes], None]] = {
    "zip": _sniff_zip,
    "gzip": _sniff_gzip,
    "csv": _sniff_csv,
    "geojson": _sniff_geojson,
    "gpkg": _sniff_gpkg,
    "pbf": _sniff_pbf,
}
