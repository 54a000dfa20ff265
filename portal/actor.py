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

Later, an adviser acting under a mandate will be an actor too: their own id, the
resident whose data they act on (``on_behalf_of``) and the mandate. Scope filtering (what
a mandate lets its adviser see and do) hooks in here, where the request's actor is
known, rather than in each view.
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

    @classmethod
    def citizen(cls, citizen_id: int, *, channel: str = "web") -> Actor:
        """A resident acting for themselves."""
        return cls("citizen", str(citizen_id), citizen_id, channel=channel)

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
