"""Fixtures for the sandbox's own tests (the sandbox is the external system, so its
tests may use the Flask test client)."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from sandbox import create_app
from sandbox.config import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, default_clients


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
