"""Request ids and JSON log lines, in one process: what the integration test over
gunicorn (tests/integration/test_request_ids.py) relies on."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from connectors.base import CallContext, current_request_id
from portal import create_app
from portal.logformat import JsonFormatter, RequestIdFilter
from portal.logmask import scrub
from portal.requestid import RequestInfo, carry_request, current_request
from tests.support import portal_settings


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    entry = logging.LogRecord("portal.test", logging.INFO, __file__, 1, message, args, None)
    entry.__dict__.update(extra)
    return entry


def portal(tmp_path: Path, **overrides: object):
    url = "sqlite:///" + str(tmp_path / "portal.sqlite3")
    return create_app(portal_settings(url, "http://127.0.0.1:1/api/v2", **overrides)).test_client()


def test_an_incoming_id_is_ignored_unless_a_proxy_is_trusted(tmp_path: Path) -> None:
    direct = portal(tmp_path).get("/healthz", headers={"X-Request-Id": "chosen-by-a-client"})
    assert direct.headers["X-Request-Id"] != "chosen-by-a-client"
    assert len(direct.headers["X-Request-Id"]) == 32
    proxied = portal(tmp_path, trusted_proxies=1).get(
        "/healthz", headers={"X-Request-Id": "set-by-the-proxy"}
    )
    assert proxied.headers["X-Request-Id"] == "set-by-the-proxy"
    # Even the host check's plain 400, before Flask routes anything, carries one.
    bad_host = portal(tmp_path).get("/", headers={"Host": "a" * 70 + ".example"})
    assert bad_host.status_code == 400 and len(bad_host.headers["X-Request-Id"]) == 32


def test_a_call_context_made_during_a_request_carries_its_id() -> None:
    assert CallContext.with_timeout(1).request_id != CallContext.with_timeout(1).request_id
    token = current_request_id.set("the-request-id")
    try:
        assert CallContext.with_timeout(1).request_id == "the-request-id"
        in_a_thread = carry_request(lambda: CallContext.with_timeout(1).request_id)
    finally:
        current_request_id.reset(token)
    assert in_a_thread() == "the-request-id"  # called where the id is not set


def test_a_json_line_has_the_requests_fields_and_no_personal_data() -> None:
    token = current_request.set(RequestInfo("rid-123456", "POST", "/calendar/***.ics"))
    try:
        line = JsonFormatter().format(
            record("sent to %s with Bearer abc.def-ghi", "lou.feed@example.org")
        )
    finally:
        current_request.reset(token)
    entry = json.loads(line)
    assert entry["request_id"] == "rid-123456"
    assert (entry["method"], entry["path"], entry["level"]) == ("POST", "/calendar/***.ics", "INFO")
    assert "example.org" not in line and "abc.def" not in line
    assert entry["time"].endswith("+00:00")


def test_outside_a_request_the_text_format_says_so() -> None:
    entry = record("purged")
    RequestIdFilter().filter(entry)
    assert entry.request_id == "-"


def test_scrub_masks_feed_tokens_addresses_and_bearer_tokens() -> None:
    assert scrub("GET /calendar/abcdef0123.ics") == "GET /calendar/***.ics"
    assert scrub("to a.b+c@mail.example.fr.") == "to ***@***."
    assert scrub("Authorization: bearer xyz/123=") == "Authorization: bearer ***"
    assert scrub("nothing to hide") == "nothing to hide"
