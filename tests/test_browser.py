"""The web app in Debian's Chromium through Playwright: the map draws, a practice opens, a closure
returns results, a defibrillator report round-trips, controls are reachable by keyboard, imported
names cannot run script, the API docs draw offline, and no page breaks its Content-Security-Policy.
Screenshots go to test-output/."""

from __future__ import annotations

import os
import re
import shutil
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest
from tests.test_web_use import PAGES as WEB_PAGES
from tests.web_server import serve_app

from nearcare import defib
from nearcare.store import Store

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[1] / "test-output"
PAGES = [*(p for p in WEB_PAGES if p != "/search"), "/search?q=oakham"]  # every page, with results
# Imported strings that would run script if a map label were built as HTML.
XSS_DEFIB = "<img src=x onerror=window.__xss=1>"
XSS_NAME = "<img src=y onerror=window.__xss=2>"

if not CHROMIUM.exists():
    if os.environ.get("CI"):
        pytest.fail("CI must have Debian's chromium (.ci/run installs it)", pytrace=False)
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def server(demo, tmp_path_factory):
    from nearcare.web.app import create_app

    folder = tmp_path_factory.mktemp("browser")
    path = folder / "web.duckdb"
    shutil.copyfile(demo.store_path, path)
    csv = folder / "defibrillators.csv"  # through the real importer, as a user's CSV would arrive
    csv.write_text(f'id,lat,lon,access,hours\n"{XSS_DEFIB}",52.75,-0.80,public,24/7\n', encoding="utf-8")
    with Store(path) as store:
        defib.import_defibrillator_csv(store, csv)
        store.con.execute(
            "INSERT INTO sites (code, name, kind, status, source_id, lat, lon) VALUES "
            "('XSS02', ?, 'dentist', 'active', 1, 52.66, -0.72)",
            [XSS_NAME],
        )
    with serve_app(create_app(path)) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield launched
        launched.close()


@contextmanager
def _checked_page(browser, **context_options):
    """A page that fails the test if it asks for anything outside 127.0.0.1 or breaks its CSP."""
    SHOTS.mkdir(exist_ok=True)
    context = browser.new_context(**context_options)
    opened = context.new_page()
    remote, blocked = [], []
    local = (
        "http://127.0.0.1",
        "data:",
        "blob:http://127.0.0.1",
    )  # a blob: URL holds what the page itself made
    opened.on("request", lambda r: remote.append(r.url) if not r.url.startswith(local) else None)
    opened.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
    yield opened
    context.close()
    assert not remote, f"the page asked for remote resources: {remote[:3]}"
    assert not blocked, f"the page broke its Content-Security-Policy: {blocked[:3]}"


@pytest.fixture()
def page(browser):
    with _checked_page(browser, viewport={"width": 1200, "height": 1000}) as opened:
        yield opened


@pytest.fixture()
def phone(browser):
    """A phone-sized page (390 x 844 CSS pixels, touch), as issue 13 measured."""
    with _checked_page(
        browser, viewport={"width": 390, "height": 844}, device_scale_factor=3, is_mobile=True, has_touch=True
    ) as opened:
        yield opened


def test_overview_map_draws_polygons_and_switches_measure(server, page):
    page.goto(server + "/")
    page.wait_for_function("() => document.querySelectorAll('path.leaflet-interactive').length >= 634")
    legend = page.locator("#legend").inner_text()
    assert "IMD 2025 decile" in legend and all(f"\n{d}" in "\n" + legend for d in range(1, 11))
    page.select_option("#measure", "gp:drive:crowfly:e2sfca_need")
    page.wait_for_function("() => document.querySelector('#legend').innerText.includes('access per need')")
    assert "e+" not in page.locator("#legend").inner_text()
    page.screenshot(path=str(SHOTS / "overview.png"), full_page=True)


def test_clicking_a_practice_opens_its_page(server, page):
    page.goto(server + "/")
    # Wait until the polygons are drawn (the map has zoomed to them), then click a marker; the event
    # goes to the marker itself, so a zoom animation still running cannot move it from under a mouse.
    page.wait_for_function("() => document.querySelectorAll('path.leaflet-interactive').length >= 634")
    page.wait_for_selector("path.nearcare-site")
    with page.expect_navigation(url="**/organisations/*"):
        page.locator("path.nearcare-site").first.dispatch_event("click")
    assert page.locator("h1").inner_text()
    assert "Registered patients" in page.content()
    page.wait_for_selector("path.leaflet-interactive")
    page.screenshot(path=str(SHOTS / "organisation.png"), full_page=True)


def test_a_closure_scenario_returns_results(server, page):
    page.goto(server + "/scenario")
    assert not page.locator("#close").is_visible()  # the multi-select gives way to a search box
    page.fill("#close-search", "empingham")
    page.click("#close-suggestions li[data-code='C82044']")
    assert "EMPINGHAM" in page.locator("#close-chosen").inner_text()
    page.click("#run-scenario")
    page.wait_for_selector("text=Scenario: Close C82044")
    assert "Where the patients go" in page.content()
    page.screenshot(path=str(SHOTS / "scenario.png"), full_page=True)


def test_search_as_you_type_leads_to_the_practice_and_its_map(server, page):
    """Issue 13, items 8 and 9: type in the header's search, follow a suggestion; the practice's page
    marks the practice and titles its legend with units (no request leaves 127.0.0.1: the fixture)."""
    page.goto(server + "/equity")
    page.fill("#search-field", "empingham")
    page.wait_for_selector("#search-suggestions a.nearcare-suggestion")
    with page.expect_navigation(url="**/organisations/C82044"):
        page.click("#search-suggestions a.nearcare-suggestion >> nth=0")
    page.wait_for_selector("path.nearcare-practice")
    assert "(patients)" in page.locator("#legend").inner_text()
    page.screenshot(path=str(SHOTS / "search-to-practice.png"), full_page=True)
    page.goto(server + "/search?q=LE158PR")  # the results page, without its script's help
    assert page.locator("#search-results a[href='/organisations/C82044']").count() >= 1


def test_the_map_zooms_to_where_a_measure_exists(server, page):
    """A measure for part of the area (road-network access, computed for Rutland) fills the map and
    says in the legend that the rest has no data."""
    page.goto(server + "/")
    page.wait_for_function("() => document.querySelectorAll('path.leaflet-interactive').length >= 634")
    whole = page.evaluate("nearcare.map().getZoom()")
    page.select_option("#measure", "gp:drive:drive:e2sfca_need")
    page.wait_for_function("() => document.querySelector('#legend').innerText.includes('no data')")
    page.wait_for_function(f"() => nearcare.map().getZoom() > {whole}")
    link = page.locator("a.nearcare-download").first.get_attribute("href")
    assert link.endswith("measure=gp%3Adrive%3Adrive%3Ae2sfca_need")


def test_a_measure_picked_while_the_map_zooms_still_zooms_to_it(server, page):
    """Leaflet drops a view asked for during a zoom animation: the measure's data is held back until an
    animated zoom has started, and the map must still end up on Rutland (east of the area's middle)."""
    page.goto(server + "/")
    page.wait_for_function("() => document.querySelectorAll('path.leaflet-interactive').length >= 634")
    page.evaluate(
        """() => {
        const map = nearcare.map(), plain = window.fetch;
        window.fetch = (url, ...rest) => plain(url, ...rest).then((response) => {
          if (!String(url).includes("measure=gp%3Adrive")) { return response; }
          return new Promise((resolve) => {
            const zoomOut = () => {
              map.once("zoomanim", () => resolve(response));
              map.setZoom(map.getZoom() - 0.5);
            };
            // Leaflet's own flag: a zoom asked for during another's animation would be dropped here too.
            if (map._animatingZoom) { map.once("zoomend", zoomOut); } else { zoomOut(); }
          });
        });
      }"""
    )
    page.select_option("#measure", "gp:drive:drive:e2sfca_need")
    page.wait_for_function("() => document.querySelector('#legend').innerText.includes('no data')")
    page.wait_for_function("() => nearcare.map().getCenter().lng > -0.8", timeout=10_000)


def test_a_defibrillator_report_round_trips(server, page):
    page.goto(server + "/defibrillators")
    page.check("#access")
    page.check("#hours")  # the first choice: always (24/7)
    page.fill("#postcode", "LE15 8PR")  # a postcode instead of a place on the map
    page.click("#send-report")
    page.wait_for_selector("text=your report was added to defibrillator")
    page.goto(server + "/defibrillators")
    page.click("#send-report")  # empty form: errors, nothing stored
    # The form posts and the answer is a new page: wait for it (a loaded machine answers late).
    page.locator(".nhsuk-error-summary").wait_for(state="visible")
    problems = page.locator(".nhsuk-error-summary").inner_text()
    assert (
        "Tap the map where it is, or enter its postcode" in problems
        and "Choose when it is available" in problems
    )


def test_controls_are_reachable_by_keyboard(server, page):
    page.goto(server + "/")
    reached = set()
    for _ in range(40):
        page.keyboard.press("Tab")
        reached.add(page.evaluate("document.activeElement && document.activeElement.id"))
        if {"measure", "services"} <= reached:
            break
    assert {"measure", "services"} <= reached


def _hover_label(page, selector: str, label: str, last_first: bool = False) -> str:
    """Hover (mouseover) the markers matching ``selector`` until a tooltip contains ``label``; its text.
    Markers are drawn in code order, so the search starts from the end where the code sorts late."""
    markers = page.locator(selector).all()
    for marker in reversed(markers) if last_first else markers:
        marker.dispatch_event("mouseover")
        tooltip = page.locator(".leaflet-tooltip:not(.nearcare-la-label)").last
        if tooltip.count() and label in tooltip.inner_text():
            return tooltip.inner_text()
        marker.dispatch_event("mouseout")
    raise AssertionError(f"no marker has a tooltip with {label!r}")


def test_imported_names_in_map_labels_are_text_not_html(server, page):
    """Issue 13, item 1: a defibrillator id or organisation name is shown as text and never runs."""
    page.goto(server + "/defibrillators")
    page.wait_for_selector("path.leaflet-interactive")
    page.wait_for_selector("path.nearcare-defib")
    shown = _hover_label(page, "path.nearcare-defib", "csv-<img")
    assert XSS_DEFIB in shown
    assert page.locator(".leaflet-tooltip img").count() == 0
    page.goto(server + "/")
    page.wait_for_function("() => document.querySelectorAll('path.leaflet-interactive').length >= 634")
    page.select_option("#services", "")
    page.wait_for_function("() => !document.querySelector('path.nearcare-site')")
    page.select_option("#services", "dentist")
    page.wait_for_selector("path.nearcare-site")
    assert XSS_NAME in _hover_label(page, "path.nearcare-site", "<img src=y", last_first=True)
    assert page.locator(".leaflet-tooltip img").count() == 0
    page.wait_for_timeout(300)  # an <img src=y> would have failed to load by now
    assert page.evaluate("window.__xss") is None


def test_api_docs_render_from_this_server(server, page):
    """Issue 13, item 5: Swagger UI (/docs) and ReDoc (/redoc) draw the API offline, under the same
    Content-Security-Policy as every page (the page fixture fails on any remote request or violation)."""
    operations = len(page.request.get(server + "/openapi.json").json()["paths"])
    page.goto(server + "/docs")
    page.wait_for_function(f"() => document.querySelectorAll('.opblock').length >= {operations}")
    assert "/api/area" in page.locator("#swagger-ui").inner_text()
    page.screenshot(path=str(SHOTS / "docs.png"))
    page.goto(server + "/redoc")
    page.wait_for_selector("[data-section-id^='operation/']")
    assert "/api/area" in page.locator("redoc").inner_text()
    page.wait_for_timeout(500)  # ReDoc starts its search index after drawing
    page.screenshot(path=str(SHOTS / "redoc.png"))


def _no_sideways_scroll(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"the page is {width} px wide"


def test_sites_are_picked_on_the_map(server, page):
    """Issue 13, item 8: click a practice on the scenario map to add it, click again to take it off."""
    page.goto(server + "/scenario")
    page.wait_for_function("() => document.querySelectorAll('path.nearcare-site--gp').length >= 100")
    marker = page.locator("path.nearcare-site--gp").first
    marker.dispatch_event("click")
    chosen = page.evaluate("Array.from(document.querySelector('#close').selectedOptions).map(o => o.value)")
    assert len(chosen) == 1 and chosen[0] in page.locator("#close-chosen").inner_text()
    marker.dispatch_event("click")
    assert page.evaluate("document.querySelector('#close').selectedOptions.length") == 0
    assert page.locator("#close-chosen li").count() == 0
    marker.dispatch_event("click")
    page.locator("path.nearcare-site--pharmacy").first.dispatch_event("click")
    assert page.locator("#close-chosen li").count() == 2
    page.click("#run-scenario")
    page.wait_for_selector("text=Scenario: Close")
    assert chosen[0] in page.locator("h2", has_text="Scenario: Close").inner_text()  # picked on the map


def test_the_defibrillator_map_shows_coverage_deserts_and_proposed_sites(server, page):
    page.goto(server + "/defibrillators")
    proposed = len(page.request.get(server + "/api/defibrillators/proposed.geojson").json()["features"])
    page.wait_for_function(f"() => document.querySelectorAll('path.nearcare-proposed').length === {proposed}")
    page.wait_for_function("() => document.querySelector('#legend').innerText.includes('at night')")
    deserts = page.evaluate("document.querySelectorAll('path[stroke=\"#d5281b\"]').length")
    assert deserts >= 1
    page.select_option("#defib-time", "day")
    page.wait_for_function("() => document.querySelector('#legend').innerText.includes('by day')")
    assert page.locator(".nearcare-la-label").count() >= 1  # local authority names for context
    page.screenshot(path=str(SHOTS / "defibrillators.png"), full_page=True)


def test_a_defibrillator_is_reported_on_a_phone_by_tapping_the_map(server, phone):
    """Issue 13, item 10: at 390 px nothing scrolls sideways; a tap places the report; hours are a choice."""
    phone.goto(server + "/defibrillators")
    _no_sideways_scroll(phone)
    phone.wait_for_function("() => document.querySelector('#report-map').picker !== undefined")
    phone.locator("#report-map").scroll_into_view_if_needed()
    phone.wait_for_timeout(500)  # the map has fitted the known defibrillators
    phone.locator("#report-map").tap(position={"x": 200, "y": 150})
    phone.wait_for_function("() => document.querySelector('#lat').value !== ''")
    lat, lon = float(phone.input_value("#lat")), float(phone.input_value("#lon"))
    assert (
        52 < lat < 53
        and -1.5 < lon < 0
        and "Place marked on the map" in phone.inner_text("#report-place-status")
    )
    phone.check("#access")
    phone.check("#hours-3")  # weekdays, 8am to 6pm
    phone.click("#send-report")
    phone.wait_for_selector("text=your report was added to defibrillator")
    reported = phone.url.split("reported=")[1]
    register = phone.request.get(server + "/api/defibrillators").json()["features"]
    hours = {f["properties"]["defib_id"]: f["properties"]["hours"] for f in register}
    assert hours[reported] in ("Mo-Fr 08:00-18:00", "24/7") or reported.startswith("osm-")  # new, or matched
    _no_sideways_scroll(phone)
    phone.screenshot(path=str(SHOTS / "defibrillators-phone.png"), full_page=True)


@pytest.mark.parametrize("url", PAGES)
def test_no_page_scrolls_sideways_on_a_phone(server, phone, url):
    """Wide tables scroll inside their own (focusable) box; the page itself fits 390 px."""
    phone.goto(server + url)
    phone.wait_for_load_state("networkidle")
    _no_sideways_scroll(phone)


AXE = Path(__file__).resolve().parents[1] / "node_modules" / "axe-core" / "axe.min.js"
AXE_PAGES = [*PAGES, "/organisations/NOPE"]  # and the error page


@pytest.mark.parametrize("url", AXE_PAGES)
def test_axe_finds_no_accessibility_violations(server, page, url):
    """Issue 13: axe-core (npm, pinned in package.json) on every page, after its maps have drawn. The
    script is evaluated through the browser's debugging protocol, so the page's CSP is untouched."""
    if not AXE.exists():
        pytest.skip("axe-core is not installed (npm ci)")
    page.goto(server + url)
    page.wait_for_load_state("networkidle")
    page.evaluate(AXE.read_text(encoding="utf-8") + "; 0")
    violations = page.evaluate(
        "axe.run(document, {resultTypes: ['violations']}).then(r => r.violations.map("
        "v => ({id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))})))"
    )
    assert violations == [], f"{url}: {violations}"


def test_the_report_reads_on_a_phone_and_prints_compactly(demo, browser, tmp_path):
    """Issue 13, item 12: at 390 px the report was 1,107 px wide and printed as 17 A4 pages."""
    from nearcare.project import Project

    path = tmp_path / "store.duckdb"
    shutil.copyfile(demo.store_path, path)
    with Project(path, read_only=True) as project:
        report = project.report(tmp_path / "report.html")
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    opened = context.new_page()
    opened.goto(report.as_uri())
    _no_sideways_scroll(opened)
    assert opened.locator("section").first.get_attribute("id") == "summary"
    assert opened.locator("#summary").bounding_box()["y"] < 844  # the summary starts on the first screen
    opened.screenshot(path=str(SHOTS / "report-phone.png"))
    printed = _pdf_pages(opened.pdf(format="A4"))
    # The same report without its print styles, for comparison (issue 13 measured 17 A4 pages).
    html = report.read_text(encoding="utf-8")
    plain = tmp_path / "plain.html"
    plain.write_text(re.sub(r"@media print \{.*?\n  \}\n", "", html, flags=re.S), encoding="utf-8")
    assert "@media print" in html and "@media print" not in plain.read_text(encoding="utf-8")
    opened.goto(plain.as_uri())
    unstyled = _pdf_pages(opened.pdf(format="A4"))
    context.close()
    assert 1 < printed < unstyled


def _pdf_pages(pdf: bytes) -> int:
    return pdf.count(b"/Type /Page") - pdf.count(b"/Type /Pages")


@pytest.fixture(scope="module")
def tile_server():
    """A stand-in tile server on loopback: one grey PNG for every tile, and the paths asked for."""
    import base64
    import http.server

    png = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mN4+/btfwAJhAPk9vbbqwAAAABJRU5ErkJggg=="
    )
    asked: list[str] = []

    class Tiles(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            asked.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(png)))
            self.end_headers()
            self.wfile.write(png)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Tiles)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", asked
    httpd.shutdown()


def test_a_tile_layer_is_drawn_only_when_given(demo, tmp_path, tile_server, page):
    """Issue 13, item 9: `--tiles URL` draws tiles from that host, which the CSP then allows (the page
    fixture fails on any CSP violation); without it no tile is asked for."""
    from nearcare.web.app import create_app

    tiles, asked = tile_server
    path = tmp_path / "tiles.duckdb"
    shutil.copyfile(demo.store_path, path)
    with serve_app(create_app(path, tiles=tiles + "/{z}/{x}/{y}.png")) as url:
        page.goto(url + "/defibrillators")
        page.wait_for_function("() => document.querySelectorAll('img.leaflet-tile-loaded').length >= 4")
        assert "Tiles: 127.0.0.1" in page.locator(".leaflet-control-attribution").first.inner_text()
    assert asked and all(re.fullmatch(r"/\d+/\d+/\d+\.png", p) for p in asked)
    with serve_app(create_app(path)) as url:
        page.goto(url + "/defibrillators")
        page.wait_for_selector("path.nearcare-proposed")
        before = len(asked)  # the first page's last tiles may still have been on their way
        page.wait_for_timeout(1000)
        assert page.locator("img.leaflet-tile").count() == 0 and len(asked) == before
