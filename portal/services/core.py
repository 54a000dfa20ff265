"""The core every kind of service uses: a resident's linked account as a ``Service``, and
reading it through their link without ever failing the page.

Every read goes through ``read_panel``: it builds the call context with the deadline,
turns the four connector errors into a state the template knows how to say, and marks a
link the back-end no longer accepts. Nothing here raises to a view. Nothing here names a
kind: what a service is comes from ``portal.services.kinds``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

import sqlalchemy as sa
from flask import Flask, abort, current_app, g
from sqlalchemy.orm.attributes import set_committed_value

from connectors.base import (
    BillingConnector,
    CallContext,
    ContractBroken,
    InstanceConfig,
    LinkInvalid,
    LinkRef,
    ReadResult,
    Refused,
    Unavailable,
)
from portal.actor import Actor, current_actor
from portal.extensions import db
from portal.integrations import registry
from portal.measure.events import bind, set_instance
from portal.models import ServiceLink
from portal.requestid import carry_request
from portal.services import kinds

if TYPE_CHECKING:
    from portal.services.kinds import ServiceKind

log = logging.getLogger(__name__)

T = TypeVar("T")
State = Literal["ok", "stale", "unavailable", "relink"]

#: Threads reading at the same time for one request; more services simply queue.
MAX_WORKERS = 8
#: Time given to a worker past the connectors' own deadline (building the context,
#: loading the link) before its service is counted as unreadable.
GRACE_S = 0.5


@dataclass
class Panel(Generic[T]):
    """What a card or a page section shows: the data, how fresh, and what went wrong."""

    state: State
    data: T | None = None
    fetched_at: datetime | None = None
    reason: str = ""

    @property
    def has_data(self) -> bool:
        return self.data is not None

    @property
    def writable(self) -> bool:
        """Whether the service can be acted on: only what the back-end has just said
        may be acted on. While it is unavailable (a stale copy, or nothing), every write
        of the service is disabled, on every page, with the reason."""
        return self.state == "ok" and self.data is not None


@dataclass
class Service:
    """A resident's linked account at one instance, with what the registry knows."""

    link: ServiceLink
    instance: InstanceConfig
    category: str
    connector: Any

    @property
    def slug(self) -> str:
        return self.instance.slug

    @property
    def ref(self) -> LinkRef:
        return LinkRef(external_id=self.link.external_id)

    @property
    def kind(self) -> ServiceKind:
        return kinds.kind(self.category)


def service_for(link: ServiceLink) -> Service | None:
    """The one way a ``Service`` is built from a link: None when its instance is no
    longer configured, or no installed kind serves its category (it is then shown
    nowhere, rather than as another kind)."""
    reg = registry()
    instance = reg.instances.get(link.instance_slug)
    if instance is None:
        return None
    connector = reg.connector(link.instance_slug)
    if not kinds.known(connector.category):
        return None
    return Service(link, instance, connector.category, connector)


def linked_services(citizen_id: int) -> list[Service]:
    """The resident's services an installed kind serves, in the registry's order."""
    links = {
        link.instance_slug: link
        for link in db.session.execute(
            db.select(ServiceLink).filter_by(citizen_id=citizen_id)
        ).scalars()
    }
    services = []
    actor = current_actor()
    for slug in registry().instances:
        link = links.get(slug)
        if not actor.may_use(slug):
            continue  # outside an adviser's mandate: absent, not greyed
        if link is not None and (service := service_for(link)) is not None:
            services.append(service)
    return services


def own_service(slug: str, *, bills: bool = False) -> Service:
    """The current resident's service at ``slug``, or 404 — whether the instance exists,
    or someone else has a link there, is not revealed. ``bills``: only a service whose
    kind has invoices (``ServiceKind.bills``)."""
    if slug not in registry().instances or not current_actor().may_use(slug):
        abort(404)
    link = db.session.execute(
        db.select(ServiceLink).filter_by(citizen_id=g.citizen.id, instance_slug=slug)
    ).scalar_one_or_none()
    service = service_for(link) if link is not None else None
    if service is None or (bills and not bills_through_portal(service)):
        abort(404)
    # The page counts in this service's journey, for this instance (``portal.measure``).
    journey = g.get("journey")
    g.journey = (service.category, journey[1] if journey else "page")
    set_instance(slug)
    return service


def bills_through_portal(service: Service) -> bool:
    """Whether ``service``'s invoices are paid through ``portal.payments``: its kind
    bills, and its connector implements the billing capability."""
    return service.kind.bills and isinstance(service.connector, BillingConnector)


def kind_service(slug: str, category: str) -> Service:
    """``own_service`` for a kind's own views: another kind's service is a 404 too."""
    service = own_service(slug)
    if service.category != category:
        abort(404)
    return service


Reader = Callable[[Any, CallContext, LinkRef], tuple[T, datetime, bool]]


def read_panel(
    service: Service,
    reader: Reader[T],
    deadline_s: float,
    *,
    offline: bool = False,
    max_age_s: float = 0.0,
    actor: Actor | None = None,
    for_write: bool = False,
) -> Panel[T]:
    """``offline``: from the last good snapshots only, calling no back-end.
    ``max_age_s``: what was read for this account less than that many seconds ago (and
    not written since) answers without asking again (``CallContext.max_age_s``).
    ``actor``: who reads, the request's actor (``current_actor()``) unless given.
    ``for_write``: what a write reads first, never held back by the per-back-end
    concurrency limit (``PORTAL_BACKEND_CONCURRENCY``), as the write itself is not."""
    ctx = CallContext.with_timeout(
        deadline_s,
        actor=(actor or current_actor()).context_actor,
        subject=str(service.link.id),
        offline=offline,
        max_age_s=max_age_s,
        held_back=not for_write,
    )
    try:
        data, fetched_at, stale = reader(service.connector, ctx, service.ref)
    except LinkInvalid:
        _mark_needs_relink(service.link)
        return Panel("relink")
    except Refused as exc:
        return Panel("unavailable", reason=exc.reason)
    except (Unavailable, ContractBroken) as exc:
        if not offline:
            log.info("read on %s failed: %s", service.slug, type(exc).__name__)
        return Panel("unavailable")
    except Exception:
        # A connector bug must cost one card, not the page.
        log.exception("read on %s crashed", service.slug)
        return Panel("unavailable")
    if not offline:  # a snapshot says nothing of whether the back-end still knows the link
        _set_link_status(service.link, "active")
    return Panel("stale" if stale else "ok", data, fetched_at)


def _read_in_worker(
    app: Flask,
    link_id: int,
    reader: Reader[Any],
    deadline_s: float,
    actor: Actor,
    max_age_s: float = 0.0,
) -> Panel[Any]:
    """One service, in a worker: its own app context, its own session, its own link row
    (an ORM object never crosses threads), and the actor of the request that asked (its
    ``g`` is not this context's)."""
    with app.app_context():
        link = db.session.get(ServiceLink, link_id)
        if link is None:  # unlinked meanwhile
            return Panel("unavailable")
        # Give the connection back before calling the back-end: a worker waiting on a
        # slow service must not hold one of the pool's few connections all that time
        # (the snapshot store takes its own, briefly, for each call).
        db.session.expunge(link)
        db.session.close()
        service = service_for(link)
        if service is None:  # unconfigured meanwhile
            return Panel("unavailable")
        return read_panel(service, reader, deadline_s, max_age_s=max_age_s, actor=actor)


def read_concurrently(
    services: Sequence[Service],
    readers: dict[str, Reader[Any]],
    deadline_s: float,
    *,
    max_age_s: float = 0.0,
    actor: Actor | None = None,
) -> dict[str, Panel[Any]]:
    """Each service read with its reader, all at once; never raises, never waits past the
    deadline (plus a small grace) for a slow one, which is then "unavailable". ``actor``
    as for ``read_panel``: taken here, in the request, for the workers."""
    if not services:
        return {}
    actor = actor or current_actor()
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    panels: dict[str, Panel[Any]] = {}
    pool = ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(services)))
    try:
        futures = {
            pool.submit(
                # A muted request's reads stay unmeasured; they carry its request id.
                carry_request(bind(_read_in_worker)),
                app,
                svc.link.id,
                readers[svc.slug],
                deadline_s,
                actor,
                max_age_s,
            ): svc
            for svc in services
        }
        done, _pending = wait(futures, timeout=deadline_s + GRACE_S)
        for future, svc in futures.items():
            if future not in done:
                log.info("read on %s went past its deadline", svc.slug)
                panels[svc.slug] = Panel("unavailable")
            elif future.exception() is not None:
                log.error("read on %s crashed", svc.slug, exc_info=future.exception())
                panels[svc.slug] = Panel("unavailable")
            else:
                panels[svc.slug] = future.result()
    finally:
        # A worker still waiting on a back-end ends at its own deadline; nobody waits for it.
        pool.shutdown(wait=False, cancel_futures=True)
    return panels


def _mark_needs_relink(link: ServiceLink) -> None:
    _set_link_status(link, "needs_relink")


def _set_link_status(link: ServiceLink, status: str) -> None:
    """Record what the back-end said of the link, with a statement of its own: the link
    may be detached (read in a worker that gave its connection back during the call)."""
    if link.status == status:
        return
    db.session.execute(
        sa.update(ServiceLink).where(ServiceLink.id == link.id).values(status=status)
    )
    db.session.commit()
    set_committed_value(link, "status", status)


def combine(*results: ReadResult[Any]) -> tuple[datetime, bool]:
    """Oldest fetch time and whether any part is stale: a card is as fresh as its
    stalest part."""
    return min(r.fetched_at for r in results), any(r.stale for r in results)
