"""``nearcare fetch`` against a local server on 127.0.0.1 (no internet): downloads, failures, the cache.

The server serves copies of the real files in ../shared/data under publisher-like paths, plus a
404, a reply slower than the timeout, a connection cut mid-file and a web page instead of a file.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import osmium
import pytest
from tests.conftest import shared_file

from nearcare._errors import InputError
from nearcare.fetch import fetch_area, load_manifest, plan
from nearcare.fetch._http import FetchError, download, partial_path, verify
from nearcare.fetch.extracts import buffered, cut_extract, regions_meeting
from nearcare.sources import importers

BUNDLED_PBF = (
    Path(__file__).resolve().parents[1] / "src" / "nearcare" / "data" / "llr" / "rutland-latest.osm.pbf"
)


class Server:
    """Files by path; ``cut`` paths drop the connection half-way on their first request."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut: set[str] = set()
        self.slow_s: dict[str, float] = {}
        self.stall_s: dict[str, float] = {}  # path -> seconds of silence half-way through its first reply
        self.html: set[str] = set()
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.url = ""

    def add(self, path: str, data: bytes) -> str:
        self.files[path] = data
        return self.url + path


def _handler(server: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # quiet test output
            pass

        def do_GET(self) -> None:
            path = self.path
            server.requests.append((path, self.headers.get("Range")))
            if path in server.slow_s:
                time.sleep(server.slow_s[path])
            if path in server.html:
                body = b"<!DOCTYPE html><html><body>This page has moved</body></html>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            data = server.files.get(path)
            if data is None:
                self.send_error(404, "Not Found")
                return
            start = 0
            ranged = self.headers.get("Range")
            if ranged and ranged.startswith("bytes="):
                start = int(ranged[6:].split("-")[0])
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(data) - start))
            self.end_headers()
            if path in server.stall_s and not ranged:
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                time.sleep(server.stall_s.pop(path))
                self.close_connection = True
                return
            if path in server.cut and not ranged:
                server.cut.discard(path)  # cut once: the resumed request gets the rest
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return
            self.wfile.write(data[start:])

    return Handler


@contextmanager
def serving() -> Iterator[Server]:
    """A server on 127.0.0.1 at an ephemeral port, in a thread, for the ``with`` block."""
    state = Server()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture()
def server() -> Iterator[Server]:
    with serving() as state:
        yield state


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def cache_files(cache: Path) -> list[str]:
    """Every file in the cache proper (not the .partial folder), relative to it."""
    return sorted(
        str(p.relative_to(cache)) for p in cache.rglob("*") if p.is_file() and ".partial" not in p.parts
    )


# --- downloads ------------------------------------------------------------------------------------


def test_download_resumes_a_cut_connection_with_a_range_request(server, tmp_path):
    data = shared_file("ods_gp_practices_epraccur/epraccur.csv").read_bytes()
    url = server.add("/api/getReport?report=epraccur", data)
    server.cut.add("/api/getReport?report=epraccur")
    dest = tmp_path / "cache" / "ods-gp-practices" / "epraccur.csv"
    download(url, dest, cache=tmp_path / "cache", fmt="csv", retries=2, backoff_s=0)
    assert sha(dest.read_bytes()) == sha(data)
    assert server.requests == [
        ("/api/getReport?report=epraccur", None),
        ("/api/getReport?report=epraccur", f"bytes={len(data) // 2}-"),
    ]
    assert not partial_path(dest, tmp_path / "cache").exists()


def test_a_cut_connection_without_retries_is_one_clear_line_and_leaves_the_cache_clean(server, tmp_path):
    data = shared_file("ods_pharmacies_edispensary/edispensary.csv").read_bytes()
    url = server.add("/edispensary.csv", data)
    server.cut.add("/edispensary.csv")
    cache = tmp_path / "cache"
    dest = cache / "ods-pharmacies" / "edispensary.csv"
    with pytest.raises(FetchError) as failed:
        download(url, dest, cache=cache, fmt="csv", retries=0)
    message = str(failed.value)
    assert "edispensary.csv" in message and url in message and "\n" not in message
    assert f"truncated download: {len(data) // 2:,} of {len(data):,} bytes" in message
    assert cache_files(cache) == []  # nothing half-written in the cache proper
    assert partial_path(dest, cache).stat().st_size == len(data) // 2  # kept to resume
    download(url, dest, cache=cache, fmt="csv", retries=0)  # the next run resumes and completes
    assert dest.read_bytes() == data and server.requests[-1][1] == f"bytes={len(data) // 2}-"


def test_404_names_the_file_and_url(server, tmp_path):
    url = server.url + "/media/moved/File_7.csv"
    with pytest.raises(
        FetchError,
        match=r"File_7\.csv: HTTP 404 Not Found \[http://127\.0\.0\.1:\d+/media/moved/File_7\.csv\]",
    ):
        download(url, tmp_path / "cache" / "imd2025" / "File_7.csv", cache=tmp_path / "cache", retries=3)
    assert len(server.requests) == 1  # a 404 is not retried
    assert cache_files(tmp_path / "cache") == []


def test_a_reply_slower_than_the_timeout_is_retried_then_reported(server, tmp_path):
    url = server.add("/slow.csv", b"a,b\n1,2\n")
    server.slow_s["/slow.csv"] = 1.5
    with pytest.raises(FetchError, match=r"slow\.csv: no reply within 0\.3 s after 2 attempts \[http"):
        download(
            url,
            tmp_path / "c" / "x" / "slow.csv",
            cache=tmp_path / "c",
            timeout_s=0.3,
            retries=1,
            backoff_s=0,
        )
    assert len(server.requests) == 2
    assert cache_files(tmp_path / "c") == []


def test_a_download_that_stalls_mid_file_is_resumed(server, tmp_path):
    data = shared_file("ons_lookups_via_geographr/ruc21_lsoa21.csv").read_bytes()
    url = server.add("/ruc21.csv", data)
    server.stall_s["/ruc21.csv"] = 1.5
    dest = tmp_path / "c" / "rural-urban" / "ruc21.csv"
    download(url, dest, cache=tmp_path / "c", fmt="csv", timeout_s=0.3, retries=1, backoff_s=0)
    assert dest.read_bytes() == data
    (_, first), (_, resumed) = server.requests
    assert first is None and resumed is not None
    assert 0 < int(resumed.removeprefix("bytes=").rstrip("-")) <= len(data) // 2  # what had arrived


def test_a_wrong_checksum_keeps_nothing(server, tmp_path):
    data = shared_file("ods_dental_practices_egdpprac/egdpprac.csv").read_bytes()
    url = server.add("/egdpprac.csv", data)
    cache = tmp_path / "cache"
    dest = cache / "ods-dental-practices" / "egdpprac.csv"
    with pytest.raises(
        FetchError, match=f"checksum mismatch: SHA-256 {sha(data)}, the manifest says 0{{64}}"
    ):
        download(url, dest, cache=cache, sha256="0" * 64, fmt="csv")
    assert cache_files(cache) == [] and not partial_path(dest, cache).exists()
    download(url, dest, cache=cache, sha256=sha(data), fmt="csv")  # the right checksum passes
    assert dest.read_bytes() == data


def test_a_web_page_instead_of_the_file_is_refused(server, tmp_path):
    server.html.add("/epraccur.zip")
    with pytest.raises(FetchError, match="sent a web page, not the file"):
        download(
            server.url + "/epraccur.zip",
            tmp_path / "c" / "k" / "epraccur.zip",
            cache=tmp_path / "c",
            fmt="zip",
        )
    assert cache_files(tmp_path / "c") == []


def test_format_sniffing_on_real_files(tmp_path):
    csv = shared_file("ods_gp_practices_epraccur/epraccur.csv")
    verify(csv, fmt="csv")
    verify(BUNDLED_PBF, fmt="pbf")
    with pytest.raises(ValueError, match="not an OpenStreetMap PBF"):
        verify(csv, fmt="pbf")
    with pytest.raises(ValueError, match="not a CSV"):
        verify(BUNDLED_PBF, fmt="csv")
    archive = tmp_path / "epraccur.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(csv, "epraccur.csv")
    verify(archive, fmt="zip")
    damaged = tmp_path / "damaged.zip"
    raw = bytearray(archive.read_bytes())
    raw[len(raw) // 3] ^= 0xFF  # one flipped byte inside the compressed member
    damaged.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="damaged zip"):
        verify(damaged, fmt="zip")
    with pytest.raises(ValueError, match="size"):
        verify(csv, size_bytes=csv.stat().st_size + 1)


# --- the manifest ------------------------------------------------------------------------------------


def test_the_bundled_manifest_covers_every_kind_with_a_publisher_page():
    manifest = load_manifest()
    kinds = {s.kind for s in manifest.sources} | {"osm"}
    assert kinds == set(importers())
    for source in manifest.sources:
        assert source.page.startswith("https://") and source.licence and source.publisher and source.edition
        assert source.url == "" or source.url.startswith("https://")
    assert manifest.osm is not None and "{region}" in manifest.osm.url_pattern
    assert len(manifest.osm.regions) == 47  # Geofabrik's English county extracts


def test_fetch_list_prints_every_url_and_page():
    from typer.testing import CliRunner

    from nearcare.cli import app

    run = CliRunner().invoke(app, ["fetch", "--list"])
    assert run.exit_code == 0, run.output
    for source in plan(load_manifest()):
        assert f"{source.kind}: {source.name}" in run.output and source.page in run.output
        assert (source.url or "none known") in run.output


def test_a_bad_manifest_is_one_line(tmp_path):
    from typer.testing import CliRunner

    from nearcare.cli import app

    bad = tmp_path / "m.toml"
    bad.write_text('[[source]]\nkind = "imd2025"\nname = "x.csv"\nurl = "ftp://x"\nformat = "csv"\n')
    run = CliRunner().invoke(app, ["fetch", "--list", "--manifest", str(bad)])
    assert run.exit_code == 2 and "url must be http(s)" in run.output and str(bad) in run.output


def test_offline_uses_only_the_cache_and_names_what_is_missing(tmp_path):
    manifest = load_manifest()
    result = fetch_area(
        "QK1", into=tmp_path / "area", cache=tmp_path / "cache", offline=True, log=lambda _: None
    )
    assert result.files == {}
    for source in plan(manifest):
        assert any(
            line.startswith(f"{source.kind}: {source.name} is not in the cache") for line in result.missing
        )
    assert any(line.startswith("osm: the area's box needs") for line in result.missing)


# --- OpenStreetMap -------------------------------------------------------------------------------------


def test_region_boxes_choose_the_counties_an_area_meets():
    regions = load_manifest().osm.regions
    # The real rutland-latest.osm.pbf header box sits inside the manifest's Rutland box.
    header = osmium.io.Reader(str(BUNDLED_PBF), osmium.osm.osm_entity_bits.NOTHING).header().box()
    west, south, east, north = regions["rutland"]
    assert west <= header.bottom_left.lon and south <= header.bottom_left.lat
    assert header.top_right.lon <= east and header.top_right.lat <= north
    # Boxes over-cover (counties are not rectangles): a point may meet a neighbour's box too, which
    # costs a download, never a missing road.
    oakham = (-0.73, 52.67, -0.72, 52.68)
    assert regions_meeting(oakham, regions) == ["leicestershire", "lincolnshire", "rutland"]
    westminster = (-0.14, 51.49, -0.12, 51.51)
    assert regions_meeting(westminster, regions) == ["greater-london"]
    assert regions_meeting(buffered(westminster, 25), regions) == [
        "berkshire",
        "buckinghamshire",
        "essex",
        "greater-london",
        "hertfordshire",
        "kent",
        "surrey",
    ]


def _ids(path: Path) -> tuple[set[int], set[int], list[list[int]]]:
    nodes, ways, refs = set(), set(), []
    for obj in osmium.FileProcessor(str(path)):
        if obj.is_node():
            nodes.add(obj.id)
        elif obj.is_way():
            ways.add(obj.id)
            refs.append([n.ref for n in obj.nodes])
    return nodes, ways, refs


def test_cut_keeps_whole_ways_and_merging_two_overlapping_extracts_equals_one_cut(tmp_path):
    box = (-0.75, 52.55, -0.50, 52.70)
    direct = cut_extract([BUNDLED_PBF], box, tmp_path / "direct.osm.pbf")
    west = cut_extract([BUNDLED_PBF], (-0.83, 52.52, -0.60, 52.77), tmp_path / "west.osm.pbf")
    east = cut_extract([BUNDLED_PBF], (-0.68, 52.52, -0.42, 52.77), tmp_path / "east.osm.pbf")
    merged = cut_extract([west, east], box, tmp_path / "merged.osm.pbf")
    whole_nodes, whole_ways, _ = _ids(BUNDLED_PBF)
    nodes, ways, refs = _ids(direct)
    assert (nodes, ways) == _ids(merged)[:2]
    assert 0 < len(ways) < len(whole_ways) and nodes < whole_nodes
    assert all(set(r) <= nodes for r in refs)  # every kept way has all its nodes
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "direct.osm.pbf",
        "east.osm.pbf",
        "merged.osm.pbf",
        "west.osm.pbf",
    ]  # no temporary file left beside the cut


# --- the commands ----------------------------------------------------------------------------------


def _one_source_manifest(
    tmp_path: Path, url: str, *, sha256: str = "", member: str = "", fmt: str = "csv"
) -> Path:
    manifest = tmp_path / "m.toml"
    manifest.write_text(
        f'[[source]]\nkind = "imd2025"\nname = "File_7.{"zip" if member else "csv"}"\nurl = "{url}"\n'
        f'format = "{fmt}"\nsha256 = "{sha256}"\nmember = "{member}"\npage = "https://www.gov.uk/"\n',
        encoding="utf-8",
    )
    return manifest


def test_fetch_command_fails_in_one_line_and_the_cache_stays_clean(server, tmp_path):
    from typer.testing import CliRunner

    from nearcare.cli import app

    data = shared_file("imd_mhclg_via_humaniverse/imd2025_england_lsoa21.csv").read_bytes()
    url = server.add("/media/abc/File_7.csv", data)
    cache = tmp_path / "cache"
    args = ["fetch", "--area", "QK1", "--into", str(tmp_path / "area"), "--cache", str(cache)]
    runner = CliRunner()
    wrong = _one_source_manifest(tmp_path, url, sha256="f" * 64)
    run = runner.invoke(app, [*args, "--manifest", str(wrong), "--kind", "imd2025"])
    assert run.exit_code == 2
    error = run.output[run.output.index("error:") :].strip()
    assert "\n" not in error and "File_7.csv: checksum mismatch" in error and url in error
    assert cache_files(cache) == [] and not (tmp_path / "area" / "fetched.json").exists()
    moved = _one_source_manifest(tmp_path, server.url + "/media/old/File_7.csv")
    run = runner.invoke(app, [*args, "--manifest", str(moved), "--kind", "imd2025"])
    assert run.exit_code == 2 and "File_7.csv: HTTP 404 Not Found" in run.output
    right = _one_source_manifest(tmp_path, url, sha256=sha(data))
    run = runner.invoke(app, [*args, "--manifest", str(right), "--kind", "imd2025"])
    assert run.exit_code == 0, run.output
    assert cache_files(cache) == ["imd2025/File_7.csv"]
    record = json.loads((tmp_path / "area" / "fetched.json").read_text())
    assert record["files"] == [{"kind": "imd2025", "paths": ["imd2025/File_7.csv"], "options": {}}]


def test_a_zip_without_the_named_member_is_refused(server, tmp_path):
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(shared_file("ods_gp_practices_epraccur/epraccur.csv"), "epraccur.csv")
    url = server.add("/a.zip", archive.read_bytes())
    manifest = load_manifest(_one_source_manifest(tmp_path, url, member="Data/*.csv", fmt="zip"))
    with pytest.raises(InputError, match=r"the zip holds no file matching 'Data/\*\.csv'"):
        fetch_area("QK1", into=tmp_path / "area", cache=tmp_path / "c", manifest=manifest, kinds=["imd2025"])


def test_build_from_a_folder_fetch_never_wrote_is_one_line(tmp_path):
    from typer.testing import CliRunner

    from nearcare.cli import app

    run = CliRunner().invoke(
        app, ["build", "--area", "QK1", "--from", str(tmp_path), "--store", str(tmp_path / "s.duckdb")]
    )
    assert run.exit_code == 2 and "no fetched.json here: run `nearcare fetch" in run.output
