"""Who acts (``portal.actor``): one value, said the same way to the journal and to the
back-ends, and nobody else building it by hand."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask, g

from portal.actor import Actor, current_actor
from portal.config import PROJECT_ROOT
from portal.services import core


def test_a_citizen_acts_for_themselves() -> None:
    actor = Actor.citizen(42)
    assert actor == Actor("citizen", "42", 42)
    assert (actor.journal_kind, actor.journal_id) == ("citizen", "42")
    assert actor.context_actor == "citizen:42"
    assert actor.on_behalf_of == 42
    assert actor.mandate_id is None
    assert actor.channel == "web"


def test_the_system_acts_on_no_one() -> None:
    assert Actor.system() == Actor("system", "", None)
    notification = Actor.system("notification")
    assert (notification.journal_kind, notification.journal_id) == ("system", "notification")
    assert notification.context_actor == "system:notification"
    assert notification.on_behalf_of is None


def test_an_adviser_under_a_mandate_says_both_who_and_for_whom() -> None:
    adviser = Actor("adviser", "7", on_behalf_of=42, mandate_id=3)
    assert (adviser.journal_kind, adviser.journal_id) == ("adviser", "7")
    assert adviser.context_actor == "adviser:7"
    assert (adviser.on_behalf_of, adviser.mandate_id) == (42, 3)


def test_an_actor_cannot_be_changed() -> None:
    actor = Actor.citizen(42)
    with pytest.raises(dataclasses.FrozenInstanceError):
        actor.id = "43"  # type: ignore[misc]


def test_the_current_actor_is_the_requests_or_the_system() -> None:
    assert current_actor() == Actor.system()  # no app, no request
    app = Flask(__name__)
    with app.test_request_context("/"):
        assert current_actor() == Actor.system()  # no one signed in
        g.actor = None
        assert current_actor() == Actor.system()
        g.actor = Actor.citizen(42)
        assert current_actor() == Actor.citizen(42)
    with app.app_context():  # a command: nobody signed in
        assert current_actor() == Actor.system()


def test_concurrent_reads_hand_the_requests_actor_to_their_workers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker has its own app context, where ``g`` is not the request's: the actor is
    taken in the request and passed in."""
    seen: list[Actor] = []

    def worker(
        app: Flask, link_id: int, reader: Any, deadline_s: float, actor: Actor, max_age_s: float
    ) -> Any:
        seen.append(actor)
        return core.Panel("unavailable")

    monkeypatch.setattr(core, "_read_in_worker", worker)
    services = [
        SimpleNamespace(slug=slug, link=SimpleNamespace(id=n)) for n, slug in enumerate("ab")
    ]
    readers: dict[str, Any] = {"a": None, "b": None}
    app = Flask(__name__)
    with app.test_request_context("/"):
        g.actor = Actor.citizen(42)
        core.read_concurrently(services, readers, 1.0)  # type: ignore[arg-type]
        assert seen == [Actor.citizen(42)] * 2
        seen.clear()
        feed = Actor.citizen(42, channel="calendar")
        core.read_concurrently(services, readers, 1.0, actor=feed)  # type: ignore[arg-type]
        assert seen == [feed] * 2


# -- nobody builds an actor by hand ------------------------------------------------------

PORTAL = PROJECT_ROOT / "portal"
#: The one module that turns an actor into its strings.
ACTOR_MODULE = PORTAL / "actor.py"
HAND_BUILT = re.compile(
    "|".join(
        (
            r"""["']citizen:""",  # a CallContext actor written out
            r"""\bactor\s*=\s*f["']""",  # ... or formatted
            r"""\b(actor|linked_by)_kind\s*=\s*["']""",  # a kind for the journal or a link
            r"""\b(actor|linked_by)_id\s*=\s*(str\(|["'])""",  # ... and its id
        )
    )
)


def _checked_files() -> Iterator[Path]:
    for path in sorted(PORTAL.rglob("*.py")):
        if path != ACTOR_MODULE:
            yield path


def offences(files: Iterator[Path]) -> list[str]:
    found = []
    for path in files:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if HAND_BUILT.search(line):
                shown = (
                    path.relative_to(PROJECT_ROOT) if path.is_relative_to(PROJECT_ROOT) else path
                )
                found.append(f"{shown}:{number}: {line.strip()}")
    return found


def test_no_module_builds_an_actor_by_hand() -> None:
    found = offences(_checked_files())
    assert not found, "an actor built by hand (use portal.actor):\n" + "\n".join(found)


def test_the_guard_finds_an_actor_built_by_hand(tmp_path: Path) -> None:
    module = tmp_path / "portal" / "views.py"
    module.parent.mkdir()
    module.write_text(
        "\n".join(
            (
                "ok = current_actor()",
                'ctx = CallContext.with_timeout(1.0, actor=f"citizen:{g.citizen.id}")',
                'ctx = CallContext.with_timeout(1.0, actor=f"{kind}:{actor_id}")',
                'JournalEntry.record(1, "x", actor_kind="system", actor_id="demo")',
                "JournalEntry.record(1, 'x', actor_id=str(g.citizen.id))",
                'link.linked_by_kind = "citizen"',
                'probe = CallContext.with_timeout(3.0, actor="probe")',
            )
        ),
        encoding="utf-8",
    )
    lines = [found.removeprefix(f"{module}:").split(":")[0] for found in offences(iter([module]))]
    assert lines == ["2", "3", "4", "5", "6"]
