"""Who acts: one value per request, said the same way to the journal and to back-ends.

The signed-in resident is loaded once per request (``portal.auth.session``), and the
request's actor is set there, next to ``g.citizen``: ``Actor.citizen(g.citizen.id)``.
Everything that needs to say who acts asks ``current_actor()`` instead of building a
kind and an id by hand: the journal (``JournalEntry.record(..., actor=...)``), the call
context given to a back-end (``actor.context_actor``), who made a link. Outside a
request, or when no one is signed in (a command, a provider's notification, the demo
links made at sign-in), the actor is the system.

An ORM object never crosses threads, and neither does ``g``: code run in a worker (the
concurrent reads of ``portal.services.core``) is given the actor by the request that
started it.

An adviser acting under a mandate (``portal.mandates.assisted``) is an actor too: their
own id, the resident whose data they act on (``on_behalf_of``), the mandate, the channel
and the mandate's live scopes at the start of the request. Scope filtering asks the
actor (``may_use``, ``may_pay``), where the request's actor is known, rather than each
view deciding for itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from flask import g, has_app_context

ActorKind = Literal["citizen", "adviser", "system"]


@dataclass(frozen=True)
class Actor:
    """Who acts (``kind`` and ``id``), on whose data (``on_behalf_of``, a citizen id;
    None for the system), under which mandate if any, and through which channel."""

    kind: ActorKind
    id: str
    on_behalf_of: int | None
    mandate_id: int | None = None
    channel: str = "web"
    #: An adviser's live scopes (``portal.mandates``); None: no limit (the resident).
    scopes: frozenset[str] | None = None

    @classmethod
    def citizen(cls, citizen_id: int, *, channel: str = "web") -> Actor:
        """A resident acting for themselves."""
        return cls("citizen", str(citizen_id), citizen_id, channel=channel)

    @classmethod
    def adviser(
        cls,
        agent_id: int,
        citizen_id: int,
        *,
        mandate_id: int,
        channel: str,
        scopes: frozenset[str],
    ) -> Actor:
        """An adviser acting for a resident under a mandate, within its scopes."""
        return cls(
            "adviser",
            str(agent_id),
            citizen_id,
            mandate_id=mandate_id,
            channel=channel,
            scopes=scopes,
        )

    @property
    def assisted(self) -> bool:
        return self.kind == "adviser"

    def may_use(self, instance_slug: str) -> bool:
        """Whether this actor may see and use the service at ``instance_slug``."""
        return self.scopes is None or instance_slug in self.scopes

    def may_pay(self, instance_slug: str) -> bool:
        """Whether this actor may pay the invoices of ``instance_slug`` (money moves)."""
        return self.scopes is None or f"{instance_slug}:payments" in self.scopes

    @classmethod
    def system(cls, name: str = "") -> Actor:
        """The portal itself; ``name`` says which part of it (``"demo"``,
        ``"notification"``), as the journal records it."""
        return cls("system", name, None)

    @property
    def journal_kind(self) -> str:
        """``JournalEntry.actor_kind``."""
        return self.kind

    @property
    def journal_id(self) -> str:
        """``JournalEntry.actor_id``."""
        return self.id

    @property
    def context_actor(self) -> str:
        """``CallContext.actor``: pseudonymous, such as ``"citizen:42"``."""
        return f"{self.kind}:{self.id}"


def current_actor() -> Actor:
    """The request's actor; the system outside a request or when no one is signed in."""
    if has_app_context():
        actor = g.get("actor")
        if isinstance(actor, Actor):
            return actor
    return Actor.system()
