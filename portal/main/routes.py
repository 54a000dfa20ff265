"""Home (the dashboard shell) and the site's information pages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask import abort, g, render_template, request, url_for
from werkzeug.wrappers import Response

from portal.auth.session import login_required, see_other
from portal.config import current_settings
from portal.htmx import is_partial
from portal.journeys import journey
from portal.main import bp
from portal.services.reading import (
    Panel,
    Service,
    linked_services,
    own_service,
    read_concurrently,
    read_panel,
    reader_for,
)

#: Requests the dashboard may make for its cards: the page budget (10 requests) less
#: the page itself, its stylesheet, htmx, the icon and the to-do list.
MAX_CARD_REQUESTS = 5
#: More cards than any resident has: the request was not the dashboard's.
MAX_CARDS_PER_REQUEST = 50


def card_groups(
    services: Sequence[Service], requests: int = MAX_CARD_REQUESTS
) -> list[list[Service]]:
    """The services split between at most ``requests`` card requests.

    Up to ``requests`` services, one each. Past that, services on the same back-end
    (the same ``base_url``) share a request, since one answers as late as its slowest
    card and they would be slow together anyway. With more back-ends than requests, the
    back-ends are dealt out, largest first, each to the request with the fewest cards so
    far. Groups, and the services in each, keep the dashboard's order.
    """
    if len(services) <= requests:
        return [[svc] for svc in services]
    by_backend: dict[str, list[int]] = {}
    for index, svc in enumerate(services):
        by_backend.setdefault(svc.instance.base_url, []).append(index)
    backends = sorted(by_backend.values(), key=lambda b: (-len(b), b[0]))
    groups: list[list[int]] = [[] for _ in range(min(requests, len(backends)))]
    for backend in backends:
        smallest = min(groups, key=lambda g: (len(g), g[0] if g else -1))
        smallest.extend(backend)
    ordered = sorted((sorted(group) for group in groups), key=lambda g: g[0])
    return [[services[i] for i in group] for group in ordered]


def card_loaders(services: Sequence[Service]) -> dict[str, dict[str, str]]:
    """Which placeholder loads what: the first of each group asks for its group's cards
    (its own alone if it is alone), marking every link of the group as loading; the
    others are replaced by that answer."""
    loaders = {}
    for group in card_groups(services):
        first = group[0].slug
        if len(group) == 1:
            url = url_for("services.card", slug=first)
        else:
            url = url_for("main.cards", slug=[svc.slug for svc in group])
        indicator = ", ".join(f"#card-link-{svc.slug}" for svc in group)
        loaders[first] = {"url": url, "indicator": indicator}
    return loaders


@bp.get("/")
@login_required
@journey("dashboard", "view")
def home() -> str:
    """The shell renders at once: one placeholder per linked service, each a plain link
    to the service's page that htmx replaces by its card. No back-end is called here,
    so a hanging one cannot delay the page: what it shows of each is its last snapshot.
    Past ``MAX_CARD_REQUESTS`` services, cards come in groups, so the page stays within
    its request budget."""
    services = linked_services(g.citizen.id)
    return render_template(
        "main/home.html",
        services=services,
        loaders=card_loaders(services),
        known=last_known(services),
    )


def last_known(services: Sequence[Service]) -> dict[str, Panel[Any]]:
    """Each service's last known facts, from its snapshots and without calling any
    back-end: what the dashboard shows before htmx brings the cards, and all it shows
    without JavaScript ("overdue", "to pay" and their time)."""
    known = {}
    for svc in services:
        panel = read_panel(svc, reader_for(svc.category, page=False), 1.0, offline=True)
        if panel.has_data:
            known[svc.slug] = panel
    return known


@bp.get("/cards")
@login_required
@journey("dashboard", "cards")
def cards() -> str | Response:
    """Several cards in one answer, read at once under the card deadline: the first
    replaces its placeholder, the others theirs, out of band. Only htmx asks for this;
    a browser that comes here is sent to the dashboard."""
    if not is_partial():
        return see_other(url_for("main.home"))
    slugs = request.args.getlist("slug")
    if not slugs or len(slugs) > MAX_CARDS_PER_REQUEST or len(set(slugs)) != len(slugs):
        abort(404)
    services = [own_service(slug) for slug in slugs]
    panels = read_concurrently(
        services,
        {svc.slug: reader_for(svc.category, page=False) for svc in services},
        current_settings().card_deadline_s,
    )
    return "".join(
        render_template(
            "dashboard/_card.html",
            service=svc,
            panel=panels[svc.slug],
            oob_status=True,
            oob_card=i > 0,
        )
        for i, svc in enumerate(services)
    )


@bp.get("/accessibilite")
@journey("site", "accessibility")
def accessibility() -> str:
    return render_template("main/accessibility.html")


@bp.get("/mentions-legales")
@journey("site", "legal")
def legal() -> str:
    return render_template("main/legal.html")


@bp.get("/donnees-personnelles")
@journey("site", "privacy")
def privacy() -> str:
    return render_template("main/privacy.html")
