"""Who may read the indicators: the check every owners' page and the API make.

In the spirit of ``portal.agents.access.agent_required``: the agent must be signed in
(otherwise the agents' sign-in page), must hold ``service_owner`` or ``territory_admin``
(otherwise a 403 page saying so), and a service's page exists only for a service the
agent owns (otherwise the same 404 as an unknown page, so that a slug typed in the
address tells nothing about services the agent does not own).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import TypeVar

from flask import abort, g
from flask_babel import gettext as _

from portal.agents.access import roles_of
from portal.agents.session import agent_login_required
from portal.errors import render_error
from portal.integrations import registry
from portal.models import Agent

F = TypeVar("F", bound=Callable[..., object])


@dataclass(frozen=True)
class Scope:
    """The instances an agent may read: every one (``everything``: a territory
    administrator, who also sees the portal's own pages) or those they own."""

    everything: bool
    slugs: tuple[str, ...]

    @property
    def instances(self) -> list[str] | None:
        """What the queries filter on: None for the whole portal."""
        return None if self.everything else list(self.slugs)

    def allows(self, slug: str) -> bool:
        return slug in self.slugs


def configured() -> dict[str, str]:
    """Slug → title of every configured instance, in the file's order."""
    return {slug: instance.title for slug, instance in registry().instances.items()}


def categories() -> dict[str, str]:
    """Slug → kind of service (its connector's category) of every configured instance."""
    reg = registry()
    return {slug: reg.category(slug) for slug in reg.instances}


def scope_of(agent: Agent) -> Scope | None:
    """None: the agent is neither a service owner nor a territory administrator."""
    known = configured()
    held = roles_of(agent)
    if any(role.role == "territory_admin" for role in held):
        return Scope(True, tuple(known))
    owners = [role for role in held if role.role == "service_owner"]
    if not owners:
        return None
    owned = {slug for role in owners for slug in role.instances or []}
    return Scope(False, tuple(slug for slug in known if slug in owned))


def refused() -> tuple[str, int]:
    return render_error(
        403,
        _(
            "Les indicateurs des services sont réservés à leurs responsables et à "
            "l'administration du territoire. Si vous en avez besoin, demandez ce rôle à la "
            "personne qui administre le Compte territorial."
        ),
    )


def owner_required(slug_param: str | None = None) -> Callable[[F], F]:
    """Signed in as an agent holding an owner's role; with ``slug_param``, the service
    named in the URL must be one of theirs (404 otherwise). The view finds the scope on
    ``g.owner_scope``."""

    def decorator(view: F) -> F:
        @wraps(view)
        def checked(*args: object, **kwargs: object) -> object:
            scope = scope_of(g.agent)
            if scope is None:
                return refused()
            if slug_param is not None and not scope.allows(str(kwargs.get(slug_param))):
                abort(404)
            g.owner_scope = scope
            return view(*args, **kwargs)

        return agent_login_required(checked)  # type: ignore[return-value]

    return decorator
