"""The one vocabulary of what stops a write, or leaves it unsaid, each worded here once.

A write raises these wherever it finds out (looking the item up, checking the form, the
answer of ``portal.writes.perform``), and the errors blueprint (``portal.errors``)
answers them all the same way, through the answer the write declared
(``answering``): for htmx, the section re-read with the words in its status region (htmx
swaps only 2xx answers); otherwise the words flashed and a 303 back to the page, except
an unusable form, a plain 400 page. An item that is not on the resident's account is a
404, whether it is someone else's or does not exist.

Every failure but ``OutcomeUnknown`` means nothing was done. ``OutcomeUnknown`` never
says that: the write was sent and may have been done.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import g, url_for
from flask_babel import gettext as _
from markupsafe import Markup

from portal.refusals import reason_text


@dataclass(frozen=True)
class Message:
    """The result of an action: said in the section (htmx) or flashed (page)."""

    text: str
    kind: str = "success"  # success | error | info
    #: One line per loan or day, with its own kind.
    items: tuple[tuple[str, str], ...] = ()
    relink_url: str = ""
    #: The form itself was unusable: nothing was done, answered 400 without htmx.
    invalid: bool = False


class WriteFailure(Exception):
    """Why a write was not done, or what is not known of it; ``message()`` says it."""

    def message(self) -> Message:
        raise NotImplementedError

    def __str__(self) -> str:
        return str(self.message().text)


class InvalidForm(WriteFailure):
    """The form cannot be used (no key, a key of someone else's or of another write, a
    field no form of ours sends): nothing was done."""

    def message(self) -> Message:
        return Message(
            _(
                "Ce formulaire n'est pas valide ou a déjà servi : rien n'a été fait. "
                "Rechargez la page et réessayez."
            ),
            "error",
            invalid=True,
        )


class NeedsRelink(WriteFailure):
    """The back-end no longer accepts the resident's link: nothing was done."""

    def __init__(self, slug: str) -> None:
        super().__init__(slug)
        self.slug = slug

    def message(self) -> Message:
        return Message(
            _(
                "Ce service ne reconnaît plus votre compte (carte renouvelée ou code changé, "
                "par exemple) : rien n'a été fait. Il faut le relier à nouveau."
            ),
            "error",
            relink_url=url_for("linking.link", slug=self.slug),
        )


class ServiceUnavailable(WriteFailure):
    """Nothing was done: the back-end did not answer, or (``stale``) only a copy of the
    account kept from earlier could be read, and the item may have changed since. A
    kind may say it in its own words (``text``)."""

    def __init__(self, *, stale: bool = False, text: str = "") -> None:
        super().__init__(stale, text)
        self.stale = stale
        self.text = text

    def message(self) -> Message:
        if self.text:
            return Message(self.text, "error")
        if self.stale:
            return Message(
                _(
                    "Ce service est temporairement indisponible : rien n'a été fait. Vous "
                    "pourrez de nouveau agir quand il répondra."
                ),
                "error",
            )
        return Message(
            _("Le service n'a pas répondu : rien n'a été fait. Vous pouvez réessayer."), "error"
        )


class InProgress(WriteFailure):
    """The same form is being answered at this moment (a double click, another tab)."""

    def message(self) -> Message:
        return Message(
            _(
                "Cette demande est déjà en cours de traitement. Rechargez la page dans un "
                "instant pour voir son résultat."
            ),
            "info",
        )


class WriteRefused(WriteFailure):
    """The back-end, or the portal before it, said no: nothing was done. ``reason`` is
    the back-end's own words, ``code`` its stable code (``portal.refusals`` words it);
    ``said`` the kind's sentence around it, when it has one."""

    def __init__(self, reason: str, code: str = "", said: str = "") -> None:
        super().__init__(reason, code)
        self.reason = reason
        self.code = code
        self.said = said

    def message(self) -> Message:
        return Message(self.said or reason_text(self.code, self.reason), "error")


class OutcomeUnknown(WriteFailure):
    """The write was sent and no answer came back: it may have been done. ``first`` says
    what is not known, in the kind's words; what comes next depends on whether the
    back-end answers a repeated key with its first answer (``replays``), and the portal
    asks it again. ``replays=None``: ``first`` says it all."""

    def __init__(self, first: str, replays: bool | None = True) -> None:
        super().__init__(first)
        self.first = first
        self.replays = replays

    def message(self) -> Message:
        if self.replays is None:
            return Message(self.first, "info")
        if self.replays:
            then = _(
                "Le service n'a pas répondu à temps. Cette page le lui redemandera à votre "
                "prochaine visite, sans rien faire deux fois : vous n'avez rien à refaire."
            )
        else:
            then = _(
                "Le service n'a pas répondu à temps. Vérifiez ce que montre votre compte "
                "ci-dessous avant de réessayer."
            )
        return Message(f"{self.first} {then}", "info")


class ItemGone(WriteFailure):
    """The item is not on the resident's account: answered 404, with the same words
    whether it is someone else's or does not exist (those of the 404 page, ``portal.errors``)."""

    #: Answered as this HTTP error's page, never as a message.
    code = 404

    def message(self) -> Message:
        return Message("", "error")


# -- where a write's failure is answered -------------------------------------------------

#: How a write answers a message: its section for htmx, or its page (``answers.answer``).
Respond = Callable[[Message], Any]


def answering(respond: Respond) -> None:
    """Declare, for this request, how a failure raised from now on is answered."""
    g._write_respond = respond


def responder() -> Respond | None:
    """How this request's write answers its failures, if it declared it."""
    respond: Respond | None = g.get("_write_respond")
    return respond


def flash_text(message: Message) -> str | Markup:
    """A message as flashed, with the link to relink the account when it needs one."""
    if message.relink_url:
        return Markup('{} <a href="{}">{}</a>').format(
            message.text, message.relink_url, _("Relier à nouveau mon compte")
        )
    return message.text
