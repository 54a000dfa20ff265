"""Whatever an anonymous client sends, over real HTTP, the portal answers without a 500:
hostile ``Host`` headers, bodies too large, too deep, binary or of the wrong type, on
every route of the URL map."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator

import pytest
from flask import Flask

from portal.hardening import MAX_CONTENT_LENGTH
from tests.support import ServerThread, sign_in

HOSTILE_HOSTS: list[bytes | None] = [
    b"a" * 64 + b".example.org",  # a label over 63 characters
    b"x" * 300,
    "é.example".encode(),  # raw UTF-8
    "\u0130".encode() * 40,
    b"xn--" + b"a" * 70,  # an invalid punycode label
    b"a..b",
    b"",
    None,  # no Host header at all
    b"localhost:abc",
    b"localhost:99999999",
    b"localhost:80:80",
    b"[::1",
    b"local\xffhost",
]

DEEP_JSON = b"[" * 100_000 + b"]" * 100_000
BODIES: list[tuple[str, bytes, str]] = [
    ("deep json", DEEP_JSON[:200_000], "application/json"),
    ("deep object", b'{"a":' * 20_000 + b"1" + b"}" * 20_000, "application/json"),
    ("huge", b"x" * (MAX_CONTENT_LENGTH + 1), "application/x-www-form-urlencoded"),
    ("binary", bytes(range(256)) * 16, "application/octet-stream"),
    ("binary as form", b"\xff\xfe\x00=\x00&%ff=%00" * 64, "application/x-www-form-urlencoded"),
    ("json as form", b'{"payment_id": "x"}', "application/x-www-form-urlencoded"),
    ("form as json", b"payment_id=x&csrf_token=y", "application/json"),
    ("broken multipart", b"--zz\r\nContent-Disposition: form-data\r\n", "multipart/form-data"),
    ("multipart without boundary", b"xx", "multipart/form-data; boundary="),
]

CONVERTER_VALUES = {
    "slug": "bib-merignac",
    "child_id": "enf-0001",
    "hold_id": "1",
    "invoice_id": "fac-4521-2612",
    "loan_id": "1",
    "payment_id": "pay-1",
    "token": "A" * 43,
    "filename": "css/portal.css",
}


def send(
    port: int,
    method: str,
    path: str,
    host: bytes | None = b"localhost",
    body: bytes = b"",
    content_type: str | None = None,
    cookie: str | None = None,
) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        if host is not None:
            conn.putheader("Host", host)
        if content_type:
            conn.putheader("Content-Type", content_type)
        if cookie:
            conn.putheader("Cookie", cookie)
        if body or method == "POST":
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        try:
            if body:
                conn.send(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered (413) before reading everything
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def paths(app: Flask) -> list[tuple[str, list[str]]]:
    """Every rule with its converters filled, and the methods it answers."""
    out = []
    for rule in app.url_map.iter_rules():
        path = rule.rule
        for name in rule.arguments:
            path = path.replace(f"<{name}>", CONVERTER_VALUES.get(name, "x"))
            path = path.replace(f"<path:{name}>", CONVERTER_VALUES.get(name, "x/y"))
        assert "<" not in path, path
        # GET and POST everywhere: a method a route does not take must be a 405, not a 500.
        methods = sorted(((rule.methods or set()) | {"GET", "POST"}) - {"HEAD", "OPTIONS"})
        out.append((path, methods))
    return out


@pytest.fixture
def served(services_app: Flask) -> Iterator[int]:
    services_app.config["PROPAGATE_EXCEPTIONS"] = False
    server = ServerThread(services_app).start()
    yield server.port
    server.stop()


def test_a_host_label_over_63_characters_is_a_plain_400(served: int) -> None:
    assert send(served, "GET", "/", host=b"a" * 64 + b".example.org") == 400
    assert send(served, "GET", "/healthz", host=b"xn--" + b"a" * 70) == 400
    # An ordinary host is served as ever.
    assert send(served, "GET", "/healthz") == 200


def test_deeply_nested_json_on_the_payment_notification_is_a_400(served: int) -> None:
    assert (
        send(served, "POST", "/payments/notify", body=DEEP_JSON, content_type="application/json")
        == 400
    )
    assert (
        send(
            served, "POST", "/payments/notify", body=b"[" * 50_000, content_type="application/json"
        )
        == 400
    )
    nested = b'{"payment_id":' * 10_000 + b'"x"' + b"}" * 10_000
    assert (
        send(served, "POST", "/payments/notify", body=nested, content_type="application/json")
        == 400
    )
    # A well-formed notification naming no known payment is still a 404.
    ok = json.dumps({"payment_id": "pay-unknown"}).encode()
    assert send(served, "POST", "/payments/notify", body=ok, content_type="application/json") == 404


def test_a_body_over_the_cap_is_refused_with_413(served: int) -> None:
    big = b"x" * (MAX_CONTENT_LENGTH + 1)
    assert (
        send(served, "POST", "/payments/notify", body=big, content_type="application/json") == 413
    )
    assert send(served, "POST", "/auth/logout", body=big, content_type="text/plain") == 413
    # Just under the cap is read as usual (and names no payment).
    assert (
        send(
            served,
            "POST",
            "/payments/notify",
            body=b" " * (MAX_CONTENT_LENGTH - 100) + b"{}",
            content_type="application/json",
        )
        == 400
    )


def test_no_route_answers_500_to_hostile_hosts_or_bodies(
    served: int, services_app: Flask, services_client
) -> None:
    sign_in(services_client, "marie-therese")
    cookie = "; ".join(
        f"{name}={services_client.get_cookie(name).value}"
        for name in ("session",)
        if services_client.get_cookie(name) is not None
    )
    routes = paths(services_app)
    assert len(routes) > 30
    failures = []
    sent = 0
    for path, methods in routes:
        for method in methods:
            for host in HOSTILE_HOSTS:
                status = send(served, method, path, host=host)
                sent += 1
                if status >= 500 and status != 503:
                    failures.append((method, path, host, status))
            for name, body, ctype in BODIES:
                for who in (None, cookie):
                    status = send(served, method, path, body=body, content_type=ctype, cookie=who)
                    sent += 1
                    if status >= 500 and status != 503:
                        failures.append((method, path, name, bool(who), status))
            # Both at once: a hostile host carrying a hostile body.
            status = send(
                served,
                method,
                path,
                host=HOSTILE_HOSTS[0],
                body=DEEP_JSON[:1000],
                content_type="application/json",
            )
            sent += 1
            if status >= 500:
                failures.append((method, path, "host+body", status))
    assert sent > 2000
    assert failures == []
