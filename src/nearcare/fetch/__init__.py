"""``nearcare fetch``: download the public files an area needs, then ``build --from`` imports them.

National files go once into a cache shared by every area (``--cache``, default
``~/.cache/nearcare`` or ``$NEARCARE_CACHE``); the area's folder (``--into``) gets links to them,
the OpenStreetMap cut for the area, and ``fetched.json``, which says what to import.
Where each file comes from is the sources manifest (``nearcare/data/sources.toml``, or the
user's own with ``--manifest``).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

from nearcare._errors import InputError
from nearcare.fetch._http import FetchError, Progress, download
from nearcare.fetch.extracts import Box, buffered, cut_extract, regions_meeting
from nearcare.fetch.manifest import Manifest, OsmSource, Source, load_manifest

__all__ = [
    "FetchError",
    "FetchResult",
    "Manifest",
    "Source",
    "area_box",
    "default_cache",
    "fetch_area",
    "import_fetched",
    "load_manifest",
    "plan",
]

FETCHED = "fetched.json"
# The kinds an area's box is worked out from (the same files `build` resolves the area with).
_AREA_KINDS = ("lsoa-nhs-lookup", "lsoa11-lsoa21-lookup", "lsoa-centroids")


def default_cache() -> Path:
    return Path(os.environ.get("NEARCARE_CACHE") or Path.home() / ".cache" / "nearcare")


@dataclass
class FetchResult:
    into: Path
    files: dict[str, list[Path]]  # kind -> files to import, in manifest order
    missing: list[str] = field(default_factory=list)  # one line per file not fetched, saying why
    notes: list[str] = field(default_factory=list)


def plan(manifest: Manifest, kinds: list[str] | None = None) -> list[Source]:
    """The sources ``fetch`` would fetch: every non-optional one, or exactly those of ``kinds``."""
    if kinds:
        known = {s.kind for s in manifest.sources} | ({"osm"} if manifest.osm else set())
        unknown = [k for k in kinds if k not in known]
        if unknown:
            raise InputError(f"the manifest has no source of kind {unknown[0]!r}", path=manifest.path)
        return [s for s in manifest.sources if s.kind in kinds]
    return [s for s in manifest.sources if not s.optional]


def _cached(cache: Path, source: Source) -> Path:
    return cache / source.kind / source.name


def _members(archive: Path, source: Source, cache: Path) -> list[Path]:
    """Unpack the members named by ``source.member`` beside the archive (each moved into place whole)."""
    out_dir = cache / source.kind / (source.name + ".d")
    with zipfile.ZipFile(archive) as opened:
        names = [n for n in opened.namelist() if fnmatch(n, source.member) and not n.endswith("/")]
        if not names:
            raise InputError(f"the zip holds no file matching {source.member!r}", path=archive)
        paths = []
        for name in sorted(names):
            target = out_dir / Path(name).name
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                part = cache / ".partial" / (target.name + ".unzip")
                part.parent.mkdir(parents=True, exist_ok=True)
                with opened.open(name) as member, part.open("wb") as written:
                    shutil.copyfileobj(member, written, 1 << 20)
                os.replace(part, target)
            paths.append(target)
    return paths


def _link(path: Path, into: Path, kind: str) -> Path:
    """A hard link to a cached file in the area's folder, so the folder is whole; the cache path if
    the two are on different file systems (a copy of a national file would double the disk used)."""
    target = into / kind / path.name
    if target.exists():
        target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(path, target)
    except OSError:
        return path.resolve()
    return target


@contextmanager
def _bars(enabled: bool) -> Iterator[Callable[[str], Progress]]:
    """``start(name)`` returns a progress callback; a bar with sizes is drawn on a terminal only."""
    if not enabled:
        yield lambda _name: lambda _done, _total: None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    with Progress(
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn()
    ) as bars:

        def start(name: str) -> Callable[[int, int | None], None]:
            task = bars.add_task(name, total=None)
            return lambda done, total: bars.update(task, completed=done, total=total)

        yield start


def fetch_area(
    area: str,
    *,
    into: Path,
    cache: Path | None = None,
    manifest: Manifest | None = None,
    kinds: list[str] | None = None,
    offline: bool = False,
    box: Box | None = None,
    timeout_s: float = 60.0,
    retries: int = 3,
    backoff_s: float = 1.0,
    log: Callable[[str], object] = print,
) -> FetchResult:
    """Fetch the files for ``area`` into ``into`` (national files through the shared cache).

    ``offline`` uses only what is cached and lists what is missing. ``box`` (west, south, east,
    north) overrides the area's box for the OpenStreetMap cut, which is otherwise worked out from
    the fetched LSOA lookup and centroids.
    """
    manifest = manifest or load_manifest()
    cache = cache or default_cache()
    into.mkdir(parents=True, exist_ok=True)
    result = FetchResult(into=into, files={})
    with _bars(sys.stderr.isatty()) as start:
        for source in plan(manifest, kinds):
            path = _cached(cache, source)
            if not path.exists():
                if offline:
                    result.missing.append(f"{source.kind}: {source.name} is not in the cache {cache}")
                    continue
                if not source.url:
                    result.missing.append(
                        f"{source.kind}: no download URL known; get {source.name} from {source.page} and "
                        f"save it as {path}, or give its url in a manifest (--manifest)"
                    )
                    continue
                log(f"fetching {source.kind}: {source.url}")
                download(
                    source.url,
                    path,
                    cache=cache,
                    sha256=source.sha256,
                    size_bytes=source.size_bytes,
                    fmt=source.format,
                    timeout_s=timeout_s,
                    retries=retries,
                    backoff_s=backoff_s,
                    progress=start(source.name),
                )
            else:
                log(f"cached {source.kind}: {path}")
            paths = _members(path, source, cache) if source.member else [path]
            result.files.setdefault(source.kind, []).extend(_link(p, into, source.kind) for p in paths)
        if manifest.osm and (not kinds or "osm" in kinds):
            _fetch_osm(
                area,
                manifest,
                manifest.osm,
                cache,
                result,
                box,
                offline,
                start,
                log,
                timeout_s=timeout_s,
                retries=retries,
                backoff_s=backoff_s,
            )
    _write_fetched(into, area, manifest, result)
    return result


def _fetch_osm(
    area: str,
    manifest: Manifest,
    osm: OsmSource,
    cache: Path,
    result: FetchResult,
    box: Box | None,
    offline: bool,
    start: Callable[[str], Progress],
    log: Callable[[str], object],
    **http: float,
) -> None:
    if box is None:
        # The lookups fetched now, else those already in the cache (as with `--kind osm` alone).
        area_files = {
            kind: result.files.get(kind)
            or [
                p
                for s in manifest.sources
                if s.kind == kind and not s.member
                for p in [_cached(cache, s)]
                if p.exists()
            ]
            for kind in _AREA_KINDS
        }
        if not (area_files["lsoa-nhs-lookup"] and area_files["lsoa-centroids"]):
            result.missing.append(
                "osm: the area's box needs the LSOA lookup and centroids (lsoa-nhs-lookup, lsoa-centroids) "
                "or --bbox WEST,SOUTH,EAST,NORTH"
            )
            return
        box = area_box(area, {k: v for k, v in area_files.items() if v})
    wanted = buffered(box, osm.buffer_km)
    regions = regions_meeting(wanted, osm.regions)
    if not regions:
        result.missing.append(f"osm: no extract in the manifest's [osm.regions] meets the box {wanted}")
        return
    result.notes.append(
        f"OpenStreetMap: {', '.join(regions)} (Geofabrik), cut to the area's box plus {osm.buffer_km:g} km"
    )
    pbfs = []
    for region in regions:
        path = cache / "osm" / f"{region}-latest.osm.pbf"
        if not path.exists():
            if offline:
                result.missing.append(f"osm: {path.name} is not in the cache {cache}")
                continue
            url = osm.url(region)
            log(f"fetching osm {region}: {url}")
            download(
                url,
                path,
                cache=cache,
                fmt="pbf",
                timeout_s=http["timeout_s"],
                retries=int(http["retries"]),
                backoff_s=http["backoff_s"],
                progress=start(path.name),
            )
        pbfs.append(path)
    if len(pbfs) < len(regions):
        return
    log(f"cutting the area plus {osm.buffer_km:g} km from {len(pbfs)} extract(s)")
    out = cut_extract(pbfs, wanted, result.into / "osm" / "area.osm.pbf")
    result.files["osm"] = [out]


def area_box(area: str, files: dict[str, list[Path]]) -> Box:
    """The box (west, south, east, north) of the area's LSOA population-weighted centroids.

    The area is resolved as ``build`` resolves it, from the fetched lookups (imported into a
    throwaway store).
    """
    # lazy: start-up time
    from nearcare.area import resolve_area
    from nearcare.sources import import_files
    from nearcare.store import Store

    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "area.duckdb") as store:
        for kind in _AREA_KINDS:
            if kind in files:
                import_files(store, kind, files[kind])
        _, _, codes = resolve_area(store, area)
        row = store.df(
            "SELECT min(lon) AS w, min(lat) AS s, max(lon) AS e, max(lat) AS n, count(*) AS k "
            "FROM lsoa_centroids WHERE list_contains(?, lsoa_code)",
            [codes],
        ).iloc[0]
    if not row["k"]:
        raise InputError(f"no centroid in the fetched lsoa-centroids file for any LSOA of {area}")
    return (float(row["w"]), float(row["s"]), float(row["e"]), float(row["n"]))


def _write_fetched(into: Path, area: str, manifest: Manifest, result: FetchResult) -> None:
    sources = {s.kind: s for s in manifest.sources}
    record = {
        "area": area,
        "manifest": manifest.path,
        "files": [
            {
                "kind": kind,
                "paths": [_relative(p, into) for p in paths],
                "options": sources[kind].options if kind in sources else {},
            }
            for kind, paths in result.files.items()
        ],
        "missing": result.missing,
    }
    part = into / (FETCHED + ".part")
    part.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    os.replace(part, into / FETCHED)


def _relative(path: Path, into: Path) -> str:
    """A path inside the folder relative to it (so the folder can be moved), else absolute."""
    try:
        return str(path.resolve().relative_to(into.resolve()))
    except ValueError:
        return str(path.resolve())


def import_fetched(store, folder: Path, *, log: Callable[[str], object] = print) -> list:
    """Import every file ``nearcare fetch`` put in ``folder``, kind by kind, in the manifest's order."""
    # lazy: start-up time
    from nearcare.sources import import_files

    record_path = folder / FETCHED
    if not record_path.exists():
        raise InputError(
            f"no {FETCHED} here: run `nearcare fetch --area AREA --into {folder}` first", path=folder
        )
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        entries = [
            (e["kind"], [folder / p for p in e["paths"]], dict(e.get("options", {}))) for e in record["files"]
        ]
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"not a file written by `nearcare fetch` ({exc})", path=record_path) from None
    results = []
    for kind, paths, options in entries:
        imported = import_files(store, kind, paths, **options)
        log(f"{kind}: " + ", ".join(f"{rows:,} rows into {table}" for table, rows in imported.rows.items()))
        results.append(imported)
    for line in record.get("missing", []):
        log(f"  not fetched: {line}")
    return results
