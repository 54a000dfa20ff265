"""Residents browsing the portal, for locust (run by ``bench/load/run.py``).

Each simulated resident signs in through the sandbox's FranceConnect look-alike, as a
browser does (the portal's redirect to the provider, the provider's page and its form,
the redirect back), then, again and again with 1 to 3 s of thought between pages: the
dashboard shell with its stylesheet and script, its cards (the htmx URLs the shell
names), the to-do list, the trivial ``/healthz`` (the run's reference), a service page,
"Mon activité", and every third visit one write (renewing a loan from the library's
page; nothing when none is offered). Requests are named by route, not by URL, so each
line of the report is one route. Loopback only: the host is the portal's, the
provider's address comes from the portal's own redirect.
"""

from __future__ import annotations

import itertools
import re
import threading
from html import unescape
from urllib.parse import urlsplit

import requests
from locust import HttpUser, between, task

#: The sandbox's demo residents whose accounts are linked at sign-in (demo-links.toml).
IDENTITIES = ("marie-therese", "dartagnan", "amina", "lucas", "paul-antoine", "jean-baptiste")
_next_identity = itertools.cycle(IDENTITIES)
_identity_lock = threading.Lock()

TRANSACTION_RE = re.compile(r'name="transaction_id"\s+value="([^"]+)"')
CARD_RE = re.compile(r'hx-get="(/[^"]*card[^"]*)"')
SERVICE_RE = re.compile(r'href="(/services/[a-z0-9-]+)"')
FORM_RE = re.compile(r'<form[^>]*method="post"[^>]*action="([^"]+)"[^>]*>(.*?)</form>', re.S)
INPUT_RE = re.compile(r"<input([^>]*)>")
ATTR_RE = re.compile(r'(\w[\w-]*)="([^"]*)"')
STATIC = ("/static/css/portal.css", "/static/js/htmx.min.js")
HTMX = {"HX-Request": "true"}


def card_name(url: str) -> str:
    """``/services/bib-merignac/card`` → ``card bib-merignac``; a group → ``cards …``."""
    parts = urlsplit(url)
    if parts.path == "/cards":
        slugs = [v for k, v in (p.split("=", 1) for p in parts.query.split("&")) if k == "slug"]
        return "cards " + "+".join(slugs)
    return "card " + parts.path.split("/")[2]


def post_forms(html: str) -> list[tuple[str, dict[str, str]]]:
    """Each POST form of a page: its action and the values it would send."""
    found = []
    for action, body in FORM_RE.findall(html):
        fields = {}
        for attrs in INPUT_RE.findall(body):
            values = dict(ATTR_RE.findall(attrs))
            if "name" in values and values.get("type", "text") in ("hidden", "checkbox"):
                fields[values["name"]] = unescape(values.get("value", "on"))
        found.append((unescape(action), fields))
    return found


class Resident(HttpUser):
    wait_time = between(1, 3)

    def on_start(self) -> None:
        with _identity_lock:
            self.identity = next(_next_identity)
        self.visits = 0
        self.sign_in()

    def sign_in(self) -> None:
        start = self.client.get(
            "/auth/franceconnect/login", name="sign-in: start", allow_redirects=False
        )
        if start.status_code != 302:
            return
        authorize = start.headers.get("Location", "")
        # The provider is another site (the sandbox): its own cookies, and its time is
        # not the portal's, so it is left out of the report.
        with requests.Session() as provider:
            page = provider.get(authorize, timeout=10)
            match = TRANSACTION_RE.search(page.text)
            if not match:
                return
            decision = provider.post(
                authorize.split("/authorize")[0] + "/authorize/decision",
                data={"transaction_id": match.group(1), "identity": self.identity},
                allow_redirects=False,
                timeout=10,
            )
        back = urlsplit(decision.headers.get("Location", ""))
        with self.client.get(
            f"{back.path}?{back.query}",
            name="sign-in: callback",
            allow_redirects=False,
            catch_response=True,
        ) as done:
            if done.status_code != 303:
                done.failure(f"sign-in ended with {done.status_code}")

    def page(self, path: str, name: str, **kwargs: object) -> str:
        with self.client.get(path, name=name, catch_response=True, **kwargs) as r:
            if r.status_code != 200:
                r.failure(f"{r.status_code}")
            elif "/auth/login" in r.url:
                r.failure("signed out")
            return r.text

    @task
    def visit(self) -> None:
        self.visits += 1
        shell = self.page("/", "shell /")
        for path in STATIC:
            self.page(path, "static")
        for url in sorted({unescape(u) for u in CARD_RE.findall(shell)}):
            self.page(url, card_name(url), headers=HTMX)
        self.page("/account/todo", "to-do /account/todo", headers=HTMX)
        # The trivial route, measured in the same run as the reference.
        self.page("/healthz", "reference /healthz")
        self.wait()
        services = SERVICE_RE.findall(shell)
        library = next((s for s in services if "/bib-" in s), services[0] if services else "")
        service_page = self.page(library, "service page") if library else ""
        self.wait()
        self.page("/account/activity", "activity /account/activity")
        if self.visits % 3 == 1 and service_page:
            self.wait()
            self.write(service_page)

    def write(self, service_page: str) -> None:
        """Renew the first loan the library's page offers to renew (the back-end may
        refuse it: a page that says so is an answer, not an error)."""
        forms = [f for f in post_forms(service_page) if re.search(r"/loans/[^/]+/renew$", f[0])]
        if not forms:
            return
        action, fields = forms[0]
        with self.client.post(
            action,
            data=fields,
            name="write: renew a loan",
            allow_redirects=False,
            catch_response=True,
        ) as r:
            if r.status_code not in (200, 303):
                r.failure(f"{r.status_code}")
