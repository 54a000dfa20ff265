"""Fixtures for the sandbox's own tests (the sandbox is the external system, so its
tests may use the Flask test client)."""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask import Flask
from flask.testing import FlaskClient
from openapi_core import Config, OpenAPI

from sandbox import create_app
from sandbox.config import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, default_clients
from tests.support import ServerThread


@pytest.fixture
def sandbox_config() -> dict:
    """Overrides passed to ``create_app``; tests override this fixture to change them.

    Every setting is explicit so that ``SANDBOX_*`` variables in the environment of a
    developer or CI runner cannot change the outcome.
    """
    return {
        "TESTING": True,
        "SANDBOX_ISSUER": None,
        "SANDBOX_CLIENTS": default_clients(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET),
        "SANDBOX_LOOPBACK_ANY_PORT": True,
        "SANDBOX_CODE_TTL_S": 30,
        "SANDBOX_SIGNING_ALG": "ES256",
        "SANDBOX_ADMIN": True,
    }


@pytest.fixture
def sandbox_app(sandbox_config: dict) -> Flask:
    """A fresh sandbox app, with fresh keys and state, for each test."""
    return create_app(sandbox_config)


@pytest.fixture
def sandbox_client(sandbox_app: Flask) -> FlaskClient:
    """Test client of the sandbox app."""
    return sandbox_app.test_client()


# -- fake back-ends ----------------------------------------------------------------------------

SPECS_DIR = Path(__file__).resolve().parents[2] / "connectors" / "specs"
#: Spec file -> the sandbox's base URL template for it (tenant as a server variable).
SPEC_SERVERS = {
    "library": ("library.yaml", "http://localhost/library/{tenant}/v1", ["merignac", "pessac"]),
    "canteen": ("canteen.yaml", "http://localhost/canteen/{tenant}/v1", ["bordeaux"]),
    "housing": ("housing.yaml", "http://localhost/housing/{tenant}/v1", ["metropole"]),
    "water": ("water.yaml", "http://localhost/water/{tenant}/v1", ["bordeaux", "pessac"]),
    "koha": ("koha-subset.yaml", "http://localhost/koha/{tenant}/api/v1", ["bordeaux"]),
}


def load_spec(file_name: str) -> dict[str, Any]:
    with (SPECS_DIR / file_name).open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


@pytest.fixture(scope="session")
def openapi_specs() -> dict[str, OpenAPI]:
    """Each spec, with its server pointed at the sandbox's tenants, ready to validate
    Flask test-client responses (problem+json is JSON to the validator)."""
    config = Config(extra_media_type_deserializers={"application/problem+json": json.loads})
    specs = {}
    for kind, (file_name, url, tenants) in SPEC_SERVERS.items():
        document = copy.deepcopy(load_spec(file_name))
        document["servers"] = [
            {"url": url, "variables": {"tenant": {"default": tenants[0], "enum": tenants}}}
        ]
        specs[kind] = OpenAPI.from_dict(document, config=config)
    return specs


@dataclass
class NotificationReceiver:
    """A tiny HTTP server on loopback that records the JSON bodies POSTed to it."""

    url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)

    def wait(self, count: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            self.arrived.wait(0.05)
        return list(self.received)


@pytest.fixture
def notify_receiver() -> Iterator[NotificationReceiver]:
    receiver = NotificationReceiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            receiver.received.append(json.loads(self.rfile.read(length) or b"null"))
            receiver.arrived.set()
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_port}/notifications/payfip"
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": ServerThread.POLL_INTERVAL_S},  # see ServerThread
        daemon=True,
    )
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()


@pytest.fixture
def live_sandbox(sandbox_app: Flask) -> Iterator[str]:
    """The sandbox served on a free loopback port (for faults a test client cannot show:
    a dropped connection, a hang released from another thread)."""
    server = ServerThread(sandbox_app).start()
    yield server.url
    server.stop()
