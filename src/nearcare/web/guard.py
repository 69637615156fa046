"""Request guards for ``nearcare serve``: Host and Origin checks, body and JSON limits, CSRF tokens and
security headers. A pure ASGI middleware, so it sees every request (pages, API, static files) before
FastAPI parses anything, and adds its headers to every response, errors included."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import secrets
from collections.abc import Iterable
from urllib.parse import urlsplit

MAX_BODY_BYTES = 1_000_000
MAX_JSON_ITEMS = 1_000  # elements in any one JSON array (the API's own lists are far shorter)
MAX_JSON_DEPTH = 20
DEFAULT_HOSTS = ("127.0.0.1", "localhost", "::1")
CSRF_COOKIE = "nearcare_csrf"
CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}

# Scripts only from this server (plus one per-request nonce for the NHS.UK template's js-enabled line and
# the Swagger UI start-up script on /docs);
# styles may be inline because Leaflet and the report's figures set style attributes.
CSP = (
    "default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# ReDoc (/redoc) builds its search index in a Web Worker made from a blob: URL of its own bundle's code;
# the one addition to the policy, and no other site.
REDOC_CSP = CSP + "; worker-src blob:"


def tile_source(url: str) -> str:
    """The CSP source for a tile URL template such as ``https://{s}.tile.example.org/{z}/{x}/{y}.png``
    (``https://*.tile.example.org``); ValueError unless it is an http(s) template with {z}, {x} and {y}."""
    parts = urlsplit(url)
    host = parts.netloc
    if parts.scheme not in ("http", "https") or not host or any(f"{{{k}}}" not in url for k in "zxy"):
        raise ValueError(
            "a tile URL is http(s) with {z}, {x} and {y}, e.g. https://tile.example.org/{z}/{x}/{y}.png"
        )
    if host.startswith("{s}."):
        host = "*." + host[4:]
    if not re.fullmatch(r"(\*\.)?[A-Za-z0-9.-]+(:\d+)?", host) or "@" in host:
        raise ValueError("a tile URL's host is a plain name (only a leading {s}. subdomain is allowed)")
    return f"{parts.scheme}://{host.lower()}"


def host_name(host: str) -> str:
    """The name part of a Host header or netloc, lower case: 'Example.org:8000' -> 'example.org', '[::1]:80' -> '::1'."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class CsrfTokens:
    """Signed double-submit tokens: a random value and its HMAC under a per-process secret, set as a
    SameSite=Strict cookie and repeated in a hidden form field; a POST must carry both, equal and signed."""

    def __init__(self) -> None:
        self._secret = secrets.token_bytes(32)

    def _sign(self, value: str) -> str:
        return hmac.new(self._secret, value.encode("ascii"), hashlib.sha256).hexdigest()

    def new(self) -> str:
        value = secrets.token_hex(16)
        return f"{value}.{self._sign(value)}"

    def valid(self, token: str | None) -> bool:
        if not token or token.count(".") != 1 or not token.isascii():
            return False
        value, signature = token.split(".")
        return hmac.compare_digest(signature, self._sign(value))

    def check(self, cookie: str | None, field: str | None) -> bool:
        return (
            cookie is not None
            and self.valid(cookie)
            and field is not None
            and field.isascii()
            and hmac.compare_digest(cookie, field)
        )


class JsonProblem(ValueError):
    pass


def _reject_constant(name: str):
    raise JsonProblem(f"{name} is not a JSON number; send a finite number or null")


def check_json(body: bytes) -> None:
    """Raise JsonProblem (a message that never repeats the input) unless ``body`` is strict JSON within limits."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise JsonProblem("the body is not UTF-8") from None
    try:
        parsed = json.loads(text, parse_constant=_reject_constant)
    except JsonProblem:
        raise
    except (ValueError, RecursionError):
        raise JsonProblem("the body is not valid JSON") from None
    stack = [(parsed, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise JsonProblem(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, float) and not math.isfinite(item):  # 1e999 parses to inf
            raise JsonProblem("a number is too large; send a finite number")
        elif isinstance(item, list):
            if len(item) > MAX_JSON_ITEMS:
                raise JsonProblem(f"a JSON list has more than {MAX_JSON_ITEMS:,} items")
            stack.extend((x, depth + 1) for x in item)
        elif isinstance(item, dict):
            for key, value in item.items():
                _check_text(key)
                stack.append((value, depth + 1))


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise JsonProblem(
            "a string holds a lone surrogate (\\ud800-\\udfff escape); send valid Unicode text"
        ) from None


class Guard:
    """ASGI middleware: allowed Host, same-origin state changes, bounded bodies, strict JSON, security headers."""

    def __init__(self, app, allowed_hosts: Iterable[str], tile_source: str | None = None) -> None:
        self.app = app
        self.allowed_hosts = {host_name(h) for h in allowed_hosts}
        # With --tiles, map images may come from that one host too (CSP img-src), and nothing else does.
        self.images = f"img-src 'self' data: {tile_source}" if tile_source else "img-src 'self' data:"

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        nonce = secrets.token_urlsafe(16)
        scope.setdefault("state", {})["csp_nonce"] = nonce
        csp = (
            (REDOC_CSP if scope["path"] == "/redoc" else CSP)
            .format(nonce=nonce)
            .replace("img-src 'self' data:", self.images)
        )

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"content-security-policy"
                ]
                headers += [
                    (b"content-security-policy", csp.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),
                    (b"x-frame-options", b"DENY"),
                ]
                message = {**message, "headers": headers}
            await send(message)

        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        if host_name(host) not in self.allowed_hosts:
            return await _plain(
                send_with_headers,
                400,
                "This server does not answer to that host name "
                "(start it with --allowed-host NAME to add one).",
            )
        if scope["method"] in UNSAFE_METHODS:
            origin = headers.get("origin") or headers.get("referer")
            if origin is not None:
                parts = urlsplit(origin)
                if origin == "null" or parts.netloc.lower() != host.lower():
                    return await _plain(
                        send_with_headers,
                        403,
                        "Cross-site request refused: changes must come from this site's own pages.",
                    )
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            return await _plain(send_with_headers, 413, f"The request body is over {MAX_BODY_BYTES:,} bytes.")
        if scope["method"] not in UNSAFE_METHODS:
            return await self.app(scope, receive, send_with_headers)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > MAX_BODY_BYTES:
                return await _plain(
                    send_with_headers, 413, f"The request body is over {MAX_BODY_BYTES:,} bytes."
                )
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        content_type = headers.get("content-type", "").lower()
        if body and (
            not content_type or "json" in content_type
        ):  # FastAPI reads a body without a type as JSON
            try:
                check_json(body)
            except JsonProblem as exc:
                return await _json(
                    send_with_headers,
                    422,
                    {"detail": [{"loc": ["body"], "msg": str(exc), "type": "json_invalid"}]},
                )
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send_with_headers)


async def _plain(send, status: int, text: str) -> None:
    await _respond(send, status, text.encode(), b"text/plain; charset=utf-8")


async def _json(send, status: int, payload: dict) -> None:
    await _respond(send, status, json.dumps(payload).encode(), b"application/json")


async def _respond(send, status: int, body: bytes, media_type: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", media_type), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
