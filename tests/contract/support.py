"""Helpers shared by the connector tests (unit and contract)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

LOGGERS = ("connectors", "connectors.http", "connectors.contract", "connectors.library.koha")


@pytest.fixture(autouse=True)
def connector_logs_enabled() -> Iterator[None]:
    """Alembic's ``fileConfig`` (run by the migrations other tests apply in this process)
    disables every logger that existed before it; the connector tests read ours."""
    loggers = [logging.getLogger(name) for name in LOGGERS]
    before = [lg.disabled for lg in loggers]
    for lg in loggers:
        lg.disabled = False
    yield
    for lg, disabled in zip(loggers, before, strict=True):
        lg.disabled = disabled
