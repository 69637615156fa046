"""Issue 13, safety: host names, cross-site requests, CSRF tokens, security headers, strict and bounded
JSON, errors that never repeat the input, and pages that do not pass for an NHS service."""

from __future__ import annotations

import json
import re
import shutil
import warnings
from html.parser import HTMLParser

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

warnings.filterwarnings("ignore", message=".*httpx.*")
from fastapi.testclient import TestClient  # noqa: E402

from nearcare.web.app import create_app  # noqa: E402
from nearcare.web.guard import MAX_BODY_BYTES, MAX_JSON_ITEMS, host_name  # noqa: E402

PAGES = ["/", "/organisations/C82044", "/scenario", "/defibrillators", "/neighbourhoods"]
DOCS = ["/docs", "/redoc"]  # Swagger UI and ReDoc, served from node_modules like every other asset
REPORT = {"lat": 52.70, "lon": -0.60, "access": "public", "hours": "24/7"}


@pytest.fixture(scope="module")
def web_store(demo, tmp_path_factory):
    path = tmp_path_factory.mktemp("websafety") / "web.duckdb"
    shutil.copyfile(demo.store_path, path)
    return path


@pytest.fixture(scope="module")
def app(web_store):
    return create_app(web_store, allowed_hosts=["127.0.0.1", "localhost", "care.example.org"])


@pytest.fixture()
def client(app):
    return TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False)


def form_token(client, url: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(url).text).group(1)


def defib_count(client) -> int:
    return len(client.get("/api/defibrillators").json()["features"])


def test_host_names_are_restricted(app):
    """DNS rebinding: a request naming another host is not served."""
    assert TestClient(app, base_url="http://attacker.example").get("/api/area").status_code == 400
    assert TestClient(app, base_url="http://127.0.0.1:8000").get("/api/area").status_code == 200
    assert TestClient(app, base_url="http://care.example.org").get("/").status_code == 200
    assert TestClient(app, base_url="http://localhost:8000").get("/").status_code == 200
    assert host_name("[::1]:8000") == "::1" and host_name("Care.Example.org:80") == "care.example.org"


def test_cross_site_form_posts_are_refused(client):
    """A form on another site cannot create a defibrillator record, with or without a token."""
    before = defib_count(client)
    token = form_token(client, "/defibrillators")
    forged = client.post(
        "/defibrillators",
        data={**REPORT, "csrf_token": token},
        headers={"Origin": "http://attacker.example"},
        follow_redirects=False,
    )
    assert forged.status_code == 403
    referred = client.post(
        "/defibrillators",
        data={**REPORT, "csrf_token": token},
        headers={"Referer": "http://attacker.example/page"},
        follow_redirects=False,
    )
    assert referred.status_code == 403
    api = client.post("/api/defibrillators/reports", json=REPORT, headers={"Origin": "null"})
    assert api.status_code == 403
    assert client.post("/defibrillators", data=REPORT, follow_redirects=False).status_code == 403  # no token
    fresh = TestClient(client.app, base_url="http://127.0.0.1")  # a token without its cookie
    assert (
        fresh.post(
            "/defibrillators", data={**REPORT, "csrf_token": token}, follow_redirects=False
        ).status_code
        == 403
    )
    tampered = token[:-1] + ("0" if token[-1] != "0" else "1")
    fresh.cookies.set("nearcare_csrf", tampered)
    assert (
        fresh.post(
            "/defibrillators", data={**REPORT, "csrf_token": tampered}, follow_redirects=False
        ).status_code
        == 403
    )
    assert client.post("/scenario", data={"close": ["C82044"]}).status_code == 403
    assert defib_count(client) == before
    same_site = client.post(
        "/defibrillators",
        data={**REPORT, "csrf_token": token},
        headers={"Origin": "http://127.0.0.1"},
        follow_redirects=False,
    )
    assert same_site.status_code == 303 and defib_count(client) == before + 1


@pytest.mark.parametrize(
    "url",
    [
        *PAGES,
        *DOCS,
        "/api/area",
        "/static/map.js",
        "/vendor/leaflet/leaflet.js",
        "/nowhere",
        "/api/organisations/ZZZ99",
    ],
)
def test_security_headers_on_every_response(client, url):
    response = client.get(url)
    csp = response.headers["content-security-policy"]
    directives = dict([*d.strip().split(" ", 1), ""][:2] for d in csp.split(";"))
    assert "'unsafe-inline'" not in directives["script-src"] and "frame-ancestors" in directives
    assert directives["frame-ancestors"] == "'none'" and directives["default-src"] == "'self'"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"


class _Scripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.inline: list[dict] = []
        self.handlers: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and not attrs.get("src"):
            self.inline.append(attrs)
        self.handlers += [name for name in attrs if name.startswith("on")]


@pytest.mark.parametrize("url", [*PAGES, *DOCS])
def test_pages_need_no_inline_script(client, url):
    """Our own scripts are files; the NHS.UK template's one line carries the response's nonce."""
    response = client.get(url)
    nonce = re.search(r"'nonce-([^']+)'", response.headers["content-security-policy"]).group(1)
    parsed = _Scripts()
    parsed.feed(response.text)
    assert all(attrs.get("nonce") == nonce for attrs in parsed.inline) and len(parsed.inline) <= 1
    assert not parsed.handlers
    assert client.get(url).headers["content-security-policy"] != response.headers["content-security-policy"]


@pytest.mark.parametrize("url", DOCS)
def test_api_docs_are_served_locally(client, url):
    """/docs and /redoc name no other site (no CDN, no Google Fonts, no remote favicon) and every file
    they load is served by this app."""
    page = client.get(url)
    assert page.status_code == 200
    assert not re.findall(r"https?://(?!127\.0\.0\.1[:/])[^\s\"'<>)]+", page.text)
    loaded = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert any(path.endswith(".js") for path in loaded)
    for path in loaded:
        assert path.startswith("/") and client.get(path).status_code == 200, path


@pytest.mark.parametrize(
    "body, says",
    [
        (b'{"lat": NaN, "lon": -0.6, "access": "public", "hours": "24/7"}', "NaN is not a JSON number"),
        (
            b'{"lat": 52.7, "lon": -Infinity, "access": "public", "hours": "24/7"}',
            "-Infinity is not a JSON number",
        ),
        (b'{"lat": 1e999, "lon": -0.6, "access": "public", "hours": "24/7"}', "too large"),
        (b'{"lat": 52.7, "lon": -0.6, "access": "public", "hours": "\\ud800"}', "lone surrogate"),
        (b'{"lat": 52.7, "lon": -0.6, "access": "public", "\\udfff": 1, "hours": "24/7"}', "lone surrogate"),
        (b'{"lat": 52.7, "lon": -0.6, "access": "pub', "not valid JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
    ],
)
def test_json_that_python_accepts_but_json_does_not_is_a_422(client, body, says):
    before = defib_count(client)
    response = client.post(
        "/api/defibrillators/reports", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422 and says in response.json()["detail"][0]["msg"]
    assert defib_count(client) == before


def test_bodies_and_lists_are_bounded_and_errors_never_echo_input(client):
    huge = client.post(
        "/api/scenarios",
        content=b"[" + b"1," * MAX_BODY_BYTES + b"1]",
        headers={"Content-Type": "application/json"},
    )
    assert huge.status_code == 413
    form = client.post("/scenario", data={"close": "C" * (MAX_BODY_BYTES + 1)})
    assert form.status_code == 413
    many = client.post("/api/scenarios", json={"close": ["C82044"] * (MAX_JSON_ITEMS + 1)})
    assert many.status_code == 422 and "more than 1,000 items" in many.text and "C82044" not in many.text
    marker = "ECHO" * 20_000  # 80 kB: under the body limit, far over any field's
    for url, body in [
        ("/api/scenarios", {"close": [marker]}),
        ("/api/defibrillators/reports", {**REPORT, "hours": marker, "note": marker}),
        ("/api/scenarios", {"merge": [{"from": marker, "into": "C82010"}]}),
    ]:
        refused = client.post(url, json=body)
        assert refused.status_code == 422 and "ECHO" not in refused.text and len(refused.content) < 2_000


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.one_of(
        st.binary(max_size=300),
        st.recursive(
            st.none() | st.booleans() | st.floats() | st.text(max_size=20),
            lambda inner: st.lists(inner, max_size=4)
            | st.dictionaries(st.text(max_size=8), inner, max_size=4),
            max_leaves=20,
        ).map(lambda v: json.dumps(v).encode()),
    )
)
def test_no_request_body_gives_a_server_error(client, body):
    """Any bytes at all, and any JSON Python can write (NaN and Infinity included), get a 4xx, never a 5xx."""
    before = defib_count(client)
    response = client.post(
        "/api/defibrillators/reports", content=body, headers={"Content-Type": "application/json"}
    )
    assert 400 <= response.status_code < 500
    assert defib_count(client) == before


def test_pages_do_not_pass_for_an_nhs_service(client):
    """Issue 13, item 7: no NHS logo or NHS copyright line; nearcare and its sources are named."""
    text = client.get("/").text
    assert "nhsuk-header__logo" not in text and "© NHS England" not in text
    assert 'aria-label="NHS' not in text and "<title>NHS</title>" not in text
    assert "not an NHS service" in text and "nearcare contributors" in text
    for source in ("ONS", "MHCLG", "OpenStreetMap", "NHS England"):
        assert source in text


def test_serve_answers_to_its_allowed_hosts(web_store, monkeypatch):
    """`nearcare serve --allowed-host NAME`: that name, the bound host and loopback names are served; others are not."""
    import uvicorn
    from typer.testing import CliRunner

    from nearcare.cli import app as cli

    served = {}
    monkeypatch.setattr(uvicorn, "run", lambda application, **kw: served.update(app=application, **kw))
    result = CliRunner().invoke(
        cli,
        ["serve", "--store", str(web_store), "--host", "192.168.1.20", "--allowed-host", "care.example.org"],
    )
    assert result.exit_code == 0, result.output
    for host, status in [
        ("care.example.org", 200),
        ("192.168.1.20:8000", 200),
        ("localhost", 200),
        ("attacker.example", 400),
    ]:
        assert TestClient(served["app"], base_url=f"http://{host}").get("/api/area").status_code == status, (
            host
        )
