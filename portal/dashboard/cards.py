"""Which card comes in which request, and what the shell shows before the cards come."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask import current_app, url_for

from portal.services.core import Panel, Service, read_panel

#: Requests the dashboard may make for its cards: the page budget (10 requests) less
#: the page itself, its stylesheet, htmx, the session timer, the icon and the to-do list.
MAX_CARD_REQUESTS = 4
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
            url = url_for("dashboard.card", slug=first)
        else:
            url = url_for("dashboard.cards", slug=[svc.slug for svc in group])
        indicator = ", ".join(f"#card-link-{svc.slug}" for svc in group)
        loaders[first] = {"url": url, "indicator": indicator}
    return loaders


def last_known(services: Sequence[Service]) -> dict[str, Panel[Any]]:
    """Each service's last known facts, from its snapshots and without calling any
    back-end: what the dashboard shows before htmx brings the cards, and all it shows
    without JavaScript ("overdue", "to pay" and their time)."""
    known = {}
    store = current_app.extensions["snapshot_store"]
    with store.prefetched(str(svc.link.id) for svc in services):
        for svc in services:
            panel = read_panel(svc, svc.kind.card_reader(), 1.0, offline=True)
            if panel.has_data:
                known[svc.slug] = panel
    return known
