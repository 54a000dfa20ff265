"""One write pipeline for every kind: a kind declares its writes (``Write``), and ``Run``
does once, for each of them, what every write does.

The steps, in order: the form's key is checked (``InvalidForm`` otherwise); whether this
resident's form with that key was already answered (``is_settled``: then it is replayed,
and its item is not looked up again); the item is looked up in the resident's own
account from the kind's read (``owned``: ``ItemGone``, ``ServiceUnavailable`` or
``NeedsRelink`` when nothing can be tried); the write goes through
``portal.writes.perform`` (once per key, journaled); its outcome becomes a failure of
``portal.services.failures`` or the kind's own words; and the answer is the kind's
section for htmx, or a flash and a 303 back to its page.

Every failure is raised, from wherever it is found, and answered by the errors blueprint
through the answer the run declared: a kind's view never builds an error answer itself.

The same declaration asks an unknown write again (``Write.resend``, the kind's
``RESENDS``) from what ``perform`` stored of it (``Write.request``, ``Write.asked``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from connectors.base import CallContext
from portal.measure.events import write_started
from portal.services.answers import (
    Answer,
    Budget,
    answer,
    failure,
    form_key,
    is_settled,
    owned,
    replays,
    said,
)
from portal.services.core import Panel, Reader, Service, read_panel
from portal.services.failures import InvalidForm, Message, answering
from portal.writes import KEY_RE, WriteOutcome, perform

A = TypeVar("A")


def _as_is(_asked: Any, value: Any) -> Any:
    return value


def _nothing(_asked: Any, _value: Any) -> dict[str, Any]:
    return {}


def _no_params(_asked: Any) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Write(Generic[A]):
    """What a kind declares for one of its writes. ``A`` is what the write asks (a loan
    and its title, an index and a day…)."""

    #: The write's name: its ``WriteRecord`` and journal entries (``words.py``).
    action: str
    #: The connector call, given the key to send as its Idempotency-Key.
    call: Callable[[Service, CallContext, str, A], Any]
    #: What a done, refused or unknown write came to, in the kind's words.
    say: Callable[[Service, WriteOutcome, A], Message]
    #: What the write asked, JSON-able and non-secret: kept while its outcome is unknown.
    request: Callable[[A], dict[str, Any]]
    #: The call's result as kept for replays, and a success's journal parameters.
    encode: Callable[[A, Any], Any] = _as_is
    summary: Callable[[A, Any], dict[str, Any]] = _nothing
    #: The journal entry's non-secret parameters.
    params: Callable[[A], dict[str, Any]] = _no_params
    #: What to ask again from what ``request`` kept (None if it cannot be). A write
    #: without it is never asked again (its request cannot be sent a second time).
    asked: Callable[[dict[str, Any]], A | None] | None = None

    def perform(self, svc: Service, key: str, asked: A, deadline_s: float) -> WriteOutcome:
        """This write, once for ``key`` (``portal.writes.perform``)."""
        return perform(
            link=svc.link,
            action=self.action,
            key=key,
            deadline_s=deadline_s,
            call=lambda ctx, k: self.call(svc, ctx, k, asked),
            encode=lambda value: self.encode(asked, value),
            summary=lambda value: self.summary(asked, value),
            params=self.params(asked),
            request=self.request(asked),
            ask_again=self.asked is not None and replays(svc),
        )

    def resend(self, svc: Service, key: str, stored: dict[str, Any], left: float) -> Message | None:
        """Ask again about this write, whose outcome is not known, with its own key."""
        asked = self.asked(stored) if self.asked is not None else None
        if asked is None:
            return None
        outcome = self.perform(svc, key, asked, left)
        return said(outcome, svc, lambda o: self.say(svc, o, asked))


def resends(*writes: Write[Any]) -> dict[str, Callable[..., Message | None]]:
    """A kind's ``RESENDS``: each of these writes that can be asked again."""
    return {w.action: w.resend for w in writes if w.asked is not None}


#: A kind's section after a write, for htmx: given the run (what it read, what came of
#: the write) and the message to say in it.
Section = Callable[["Run[Any]", Message], str]


class Run(Generic[A]):
    """One write of one request. Creating it declares how its failures are answered:
    ``section`` for htmx (None: the page only), else a flash and a 303 to ``back``."""

    def __init__(
        self, write: Write[A], svc: Service, *, section: Section | None, back: str
    ) -> None:
        self.write = write
        self.svc = svc
        self.budget = Budget()
        self.section = section
        self.back = back
        self.key = ""
        self.settled = False
        #: What the run read of the account, to find the item (or check it is fresh).
        self.panel: Panel[Any] | None = None
        #: What came of the write, once sent.
        self.outcome: WriteOutcome | None = None
        answering(self.answer)

    def answer(self, message: Message) -> Answer:
        section = self.section
        fragment = (lambda m: section(self, m)) if section is not None else None
        return answer(message, fragment, self.back)

    def check_key(self) -> str:
        """The form's key, or ``InvalidForm``; and whether it was answered already.

        A write's journey starts with its submission (``portal.measure``)."""
        write_started(self.write.action, category=self.svc.category, instance=self.svc.slug)
        key = form_key()
        if not KEY_RE.match(key):
            raise InvalidForm
        self.key = key
        self.settled = is_settled(key, self.write.action)
        return key

    def read(self, reader: Reader[Any], max_age_s: float = 0.0) -> Panel[Any]:
        self.panel = read_panel(
            self.svc, reader, self.budget.left(), max_age_s=max_age_s, for_write=True
        )
        return self.panel

    def owned(
        self,
        reader: Reader[Any],
        items: Callable[[Any], Sequence[Any]],
        item_id: str,
        *,
        max_age_s: float = 0.0,
    ) -> Any:
        """The resident's item ``item_id`` in what ``reader`` reads (None when the form
        was answered already and the item left since), or the failure raised.
        ``max_age_s``: the page the form was on may have just read it (the read cache,
        which a write about the account or a failed read rules out)."""
        panel = self.read(reader, max_age_s)
        found = items(panel.data) if panel.data is not None else ()
        return owned(self.svc, panel, found, item_id, self.settled)

    def perform(self, asked: A) -> Answer:
        """Send the write and answer what came of it."""
        self.outcome = self.write.perform(self.svc, self.key, asked, self.budget.left())
        trouble = failure(self.outcome, self.svc)
        if trouble is not None:
            raise trouble
        return self.answer(self.write.say(self.svc, self.outcome, asked))

    def unchanged(self) -> bool:
        """Whether the account is as the run read it: nothing was sent, or the back-end
        refused, or did not answer; or the answer is an earlier sending's, done before
        the read. After a write done now, or one whose outcome is not known, or a link
        the back-end no longer accepts, the section is read again."""
        if self.panel is None:
            return False
        outcome = self.outcome
        if outcome is None:
            return True
        if outcome.status == "done":
            return outcome.replayed
        return outcome.status in ("refused", "failed", "invalid", "in_progress")
