"""Demo accounts linked at sign-in, so a sandbox dashboard is full from the first visit.

Only for the sandbox: the file maps a FranceConnect ``sub`` (pairwise, so specific to
the sandbox's client id) to accounts in the sandbox's back-ends. Production refuses the
setting. Linking by the resident, with proof of ownership, is the real path.
"""

from __future__ import annotations

import logging
import tomllib
from dataclasses import dataclass
from pathlib import Path

from portal.actor import Actor
from portal.extensions import db
from portal.models import Citizen, JournalEntry, ServiceLink

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DemoLink:
    sub: str
    instance: str
    external_id: str
    display_name: str = ""
    account_number: str = ""


def load_demo_links(path: str) -> list[DemoLink]:
    if not path or not Path(path).is_file():
        return []
    with open(path, "rb") as fh:
        doc = tomllib.load(fh)
    return [
        DemoLink(
            sub=str(item["sub"]),
            instance=str(item["instance"]),
            external_id=str(item["external_id"]),
            display_name=str(item.get("display_name", "")),
            account_number=str(item.get("account_number", "")),
        )
        for item in doc.get("links", [])
    ]


def link_demo_accounts(citizen: Citizen, links: list[DemoLink], known: set[str]) -> int:
    """Create the missing demo links of ``citizen`` for instances that are configured.

    An account the resident unlinked stays unlinked: the journal keeps the unlinking, and
    a demo account is never linked again over the resident's own choice.
    """
    existing = {
        link.instance_slug
        for link in db.session.execute(
            db.select(ServiceLink).filter_by(citizen_id=citizen.id)
        ).scalars()
    }
    existing |= set(
        db.session.execute(
            db.select(JournalEntry.connector_instance).filter_by(
                citizen_id=citizen.id, action="unlink"
            )
        ).scalars()
    )
    created = 0
    system = Actor.system("demo")
    for demo in links:
        if demo.sub != citizen.sub or demo.instance not in known or demo.instance in existing:
            continue
        db.session.add(
            ServiceLink(
                citizen_id=citizen.id,
                instance_slug=demo.instance,
                external_id=demo.external_id,
                display_name=demo.display_name,
                account_number=demo.account_number,
                linked_by_kind=system.journal_kind,
                linked_by_id=system.journal_id,
            )
        )
        JournalEntry.record(
            citizen.id,
            "link",
            actor=system,
            connector_instance=demo.instance,
            code="link_demo",
        )
        existing.add(demo.instance)
        created += 1
    return created
