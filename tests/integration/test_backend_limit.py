"""One slow back-end cannot hold every thread: the portal served over real HTTP, the
sandbox's Koha answering each call in 700 ms (slow, within its deadline), many
residents' Koha cards asked at once. Once the portal has seen it is slow, the Koha
instance lets at most ``PORTAL_BACKEND_CONCURRENCY`` of them in; the others wait a
moment, then say the service is unavailable, having sent nothing;
``/healthz`` and another service's card answer meanwhile. Checked through the limit's
counters and what each page says, never through durations."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from flask import Flask

from tests.support import Sandbox, ServerThread, sign_in

HX = {"HX-Request": "true"}
UNAVAILABLE = "Ce service est temporairement indisponible."
LIMIT = 2
KOHA, OTHER = "bib-bordeaux", "bib-merignac"


@pytest.fixture
def served(services_app: Flask) -> Iterator[tuple[Flask, str]]:
    server = ServerThread(services_app).start()
    yield services_app, server.url
    server.stop()


def resident(app: Flask, url: str) -> httpx.Client:
    """Marie-Thérèse signed in (through the sandbox's provider), her cookie carried over
    real HTTP to the served portal."""
    client = app.test_client()
    sign_in(client, "marie-therese")
    cookie = client.get_cookie("session")
    assert cookie is not None
    return httpx.Client(base_url=url, cookies={"session": cookie.value}, timeout=15)


@pytest.mark.deadlines(card_deadline_s=4.0, page_deadline_s=4.0)
@pytest.mark.backend_concurrency(LIMIT)
def test_a_slow_back_end_holds_no_more_than_its_places(served, fc_sandbox: Sandbox) -> None:
    app, url = served
    registry = app.extensions["connectors"]
    browser = resident(app, url)
    assert browser.get("/").status_code == 200
    fc_sandbox.fault("koha", "bordeaux", latency_ms=700)
    # One card at that pace, and the portal knows the back-end is slow: the limit applies.
    assert browser.get(f"/services/{KOHA}/card", headers=HX).status_code == 200
    assert registry.admission(KOHA).slow
    with ThreadPoolExecutor(max_workers=10) as pool:
        koha_cards = [
            pool.submit(browser.get, f"/services/{KOHA}/card", headers=HX) for _ in range(8)
        ]
        # Once the slow back-end's places are all taken (counters, not a clock)…
        for _ in range(200):
            if registry.admission(KOHA).in_use == LIMIT:
                break
            time.sleep(0.02)
        assert registry.admission(KOHA).in_use == LIMIT
        # … the other routes still answer, and in full.
        health = browser.get("/healthz")
        other = browser.get(f"/services/{OTHER}/card", headers=HX)
        answers = [future.result() for future in koha_cards]
    assert health.status_code == 200
    assert other.status_code == 200 and UNAVAILABLE not in other.text
    assert all(answer.status_code == 200 for answer in answers)
    said_unavailable = sum(UNAVAILABLE in answer.text for answer in answers)
    koha = registry.admission(KOHA)
    assert koha.peak == LIMIT and koha.in_use == 0 and koha.slow
    assert koha.refused >= 1 and said_unavailable >= 1
    assert koha.admitted + koha.refused >= len(answers)
    assert registry.admission(OTHER).refused == 0 and not registry.admission(OTHER).slow
    browser.close()
