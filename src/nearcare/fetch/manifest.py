"""The sources manifest: where each public file is published, read from TOML (bundled or the user's)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from nearcare._errors import InputError

FORMATS = ("csv", "zip", "gzip", "geojson", "gpkg", "pbf")
BUNDLED_MANIFEST = "sources.toml"


@dataclass(frozen=True)
class Source:
    """One file to fetch for one import kind."""

    kind: str
    name: str  # the file name in the cache
    url: str  # "" when no direct download is known
    page: str
    publisher: str
    licence: str
    edition: str
    format: str
    member: str = ""  # for a zip: the file inside to import (glob)
    size_mb: float | None = None  # approximate, shown only
    size_bytes: int = 0  # exact, checked when stated
    sha256: str = ""
    optional: bool = False
    options: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class OsmSource:
    """Geofabrik's English county extracts: a URL pattern and each region's box (W, S, E, N degrees)."""

    url_pattern: str
    page: str
    publisher: str
    licence: str
    edition: str
    buffer_km: float
    regions: dict[str, tuple[float, float, float, float]]

    def url(self, region: str) -> str:
        return self.url_pattern.format(region=region)


@dataclass(frozen=True)
class Manifest:
    path: str
    sources: list[Source]
    osm: OsmSource | None


def bundled_manifest_path() -> Path:
    return Path(str(resources.files("nearcare") / "data" / BUNDLED_MANIFEST))


def load_manifest(path: str | Path | None = None) -> Manifest:
    """Read the manifest at ``path`` (default: the one bundled with nearcare), checking every field."""
    where = Path(path) if path is not None else bundled_manifest_path()
    try:
        raw = tomllib.loads(where.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("no such manifest file", path=where) from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"not valid TOML ({exc})", path=where) from None
    # lazy: start-up time
    from nearcare.sources import importers

    known = importers()
    sources = []
    for number, entry in enumerate(raw.get("source", []), start=1):
        sources.append(_source(entry, where, number, known))
    names = [s.name for s in sources]
    clash = next((n for n in names if names.count(n) > 1), None)
    if clash:
        raise InputError("two [[source]] entries keep the same file name", path=where, value=clash)
    osm = _osm(raw["osm"], where) if "osm" in raw else None
    return Manifest(str(where), sources, osm)


def _source(entry: dict, where: Path, number: int, known: dict) -> Source:
    def text(key: str, default: str | None = None) -> str:
        value = entry.get(key, default)
        if not isinstance(value, str):
            raise InputError(f"[[source]] number {number}: {key} must be text", path=where, field=key)
        return value

    kind = text("kind")
    if kind not in known:
        raise InputError(f"[[source]] number {number}: unknown kind", path=where, field="kind", value=kind)
    name = text("name")
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise InputError(
            f"[[source]] number {number}: name must be a plain file name", path=where, value=name
        )
    url = text("url", "")
    if url and not url.startswith(("https://", "http://")):
        raise InputError(f"[[source]] number {number}: url must be http(s)", path=where, value=url)
    fmt = text("format")
    if fmt not in FORMATS:
        raise InputError(
            f"[[source]] number {number}: format must be one of {', '.join(FORMATS)}", path=where, value=fmt
        )
    sha256 = text("sha256", "").lower()
    if sha256 and (len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256)):
        raise InputError(
            f"[[source]] number {number}: sha256 must be 64 hex digits", path=where, value=sha256
        )
    size_bytes = entry.get("size_bytes", 0)
    if not isinstance(size_bytes, int) or size_bytes < 0:
        raise InputError(f"[[source]] number {number}: size_bytes must be a whole number", path=where)
    size_mb = entry.get("size_mb")
    options = entry.get("options", {})
    if not isinstance(options, dict):
        raise InputError(f"[[source]] number {number}: options must be a table", path=where)
    return Source(
        kind=kind,
        name=name,
        url=url,
        page=text("page", ""),
        publisher=text("publisher", ""),
        licence=text("licence", ""),
        edition=text("edition", ""),
        format=fmt,
        member=text("member", ""),
        size_mb=float(size_mb) if isinstance(size_mb, int | float) else None,
        size_bytes=size_bytes,
        sha256=sha256,
        optional=bool(entry.get("optional", False)),
        options=options,
    )


def _osm(entry: dict, where: Path) -> OsmSource:
    pattern = entry.get("url_pattern", "")
    if not isinstance(pattern, str) or "{region}" not in pattern:
        raise InputError("[osm] url_pattern must contain {region}", path=where, value=pattern)
    regions: dict[str, tuple[float, float, float, float]] = {}
    for region, box in entry.get("regions", {}).items():
        if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, int | float) for v in box)):
            raise InputError("[osm.regions] each box is [west, south, east, north]", path=where, field=region)
        west, south, east, north = (float(v) for v in box)
        if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
            raise InputError("[osm.regions] box is not west < east, south < north", path=where, field=region)
        regions[region] = (west, south, east, north)
    buffer_km = entry.get("buffer_km", 10.0)
    if not isinstance(buffer_km, int | float) or not 0 <= buffer_km <= 100:
        raise InputError("[osm] buffer_km must be 0 to 100", path=where, value=buffer_km)
    return OsmSource(
        url_pattern=pattern,
        page=str(entry.get("page", "")),
        publisher=str(entry.get("publisher", "")),
        licence=str(entry.get("licence", "")),
        edition=str(entry.get("edition", "")),
        buffer_km=float(buffer_km),
        regions=regions,
    )
