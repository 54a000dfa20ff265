"""Library connector for Koha's own REST API v1 (``/api/v1``), for networks that run Koha.

Koha predates the territory's standard API, so this type translates: it asks Koha
for checkouts, holds and the account, then brings the answers into the standard
library API's shapes and reads them with the same parsers (so snapshots and
dataclasses are the same for every library). Field names follow Koha's own spec
(``api/v1/swagger/``); the subset used is checked against ``specs/koha-subset.yaml``.

Two things Koha does not do for us:

- object-level authorisation: ``POST /checkouts/{id}/renewal`` and
  ``DELETE /holds/{id}`` take any id, and the portal authenticates as a staff
  account. Before acting, the connector checks the loan or hold belongs to the linked
  patron, so a resident cannot act on someone else's by editing an id in a URL;
- birth-date proof: only the card number and PIN (Koha password) prove a card.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import partial
from typing import Any, ClassVar, TypeVar, cast

import httpx

from connectors.base import (
    CallContext,
    Category,
    ConnectorError,
    Hold,
    InstanceConfig,
    LibraryAccount,
    LinkRef,
    Loan,
    PatronSummary,
    ReadResult,
    Refused,
    RenewalOutcome,
    VerifiedAccount,
)
from connectors.concurrent import gather
from connectors.contract import as_date, as_optional_date, as_str
from connectors.http import ErrorParser, Problem, ResilientHTTP
from connectors.http.problem import json_object
from connectors.library.standard import (
    HOLD_GONE_REASON,
    LOAN_GONE_REASON,
    parse_account,
    parse_holds,
    parse_loans,
    parse_patron,
    require_proof,
)

log = logging.getLogger(__name__)

V = TypeVar("V")

API = "/api/v1"

#: Koha's one-letter hold status → the standard status. ``None`` is a queued hold.
HOLD_STATUS = {None: "waiting", "P": "waiting", "T": "in_transit", "W": "ready"}

INVALID_PROOF_REASON = "Numéro de carte ou code PIN incorrect."
PIN_EXPIRED_REASON = (
    "Le code PIN de cette carte a expiré : demandez-en un nouveau à votre bibliothèque."
)
CARD_LOCKED_REASON = (
    "Cette carte est bloquée après trop d'essais : adressez-vous à votre bibliothèque."
)
BIRTHDATE_REASON = (
    "Ce réseau de bibliothèques ne permet pas de prouver sa carte avec la date de naissance : "
    "indiquez le code PIN de votre carte."
)
IN_TRANSIT_REASON = (
    "Ce document est déjà en route vers votre point de retrait : la réservation ne peut "
    "plus être annulée en ligne."
)
NOT_RENEWABLE_REASON = "Ce prêt ne peut pas être prolongé en ligne."
KOHA_REFUSED_REASON = "La bibliothèque a refusé la demande : adressez-vous à son accueil."

#: ``CanBookBeRenewed`` error codes (in ``allows_renewal.error`` and in the 403 of a
#: renewal, "Renewal not authorized (<code>)"), in words a resident understands.
RENEWAL_REASONS = {
    "too_many": "Ce prêt a déjà été prolongé le nombre de fois permis.",
    "too_unseen": "Ce document doit être présenté à la bibliothèque avant d'être prolongé.",
    "too_soon": "Il est encore trop tôt pour prolonger ce prêt.",
    "auto_too_soon": "Ce prêt sera prolongé automatiquement, le moment venu.",
    "auto_renew": "Ce prêt sera prolongé automatiquement.",
    "on_reserve": "Un autre lecteur a réservé ce document.",
    "recalled": "La bibliothèque a rappelé ce document.",
    "overdue": "Ce prêt est en retard : il ne peut plus être prolongé en ligne.",
    "auto_too_late": "La période de prolongation de ce prêt est passée.",
    "restriction": "Votre compte est suspendu : adressez-vous à votre bibliothèque.",
    "debarred": "Votre compte est suspendu : adressez-vous à votre bibliothèque.",
    "auto_account_expired": "Votre carte a expiré : renouvelez-la à votre bibliothèque.",
    "card_expired": "Votre carte a expiré : renouvelez-la à votre bibliothèque.",
    "auto_too_much_oweing": "Le montant de vos amendes empêche la prolongation.",
    "too_much_oweing": "Le montant de vos amendes empêche la prolongation.",
    "onsite_checkout": "Un prêt sur place ne se prolonge pas.",
    "item_denied_renewal": "Ce document ne peut pas être prolongé.",
    "item_issued_to_other_patron": "Ce document est prêté à un autre lecteur.",
    "lost": "Ce document est déclaré perdu.",
}

#: Koha debit types → labels for the account page.
DEBIT_LABELS = {
    "OVERDUE": "Retard",
    "LOST": "Document perdu",
    "MANUAL": "Frais",
    "RENT": "Location",
    "RENT_DAILY": "Location",
    "RENT_RENEW": "Location (prolongation)",
    "RENT_DAILY_RENEW": "Location (prolongation)",
    "ACCOUNT": "Inscription",
    "ACCOUNT_RENEW": "Renouvellement d'inscription",
    "NEW_CARD": "Nouvelle carte",
    "PROCESSING": "Frais de traitement",
    "RESERVE": "Réservation",
    "RESERVE_EXPIRED": "Réservation non retirée",
}

#: Debit types whose description names the document concerned.
ITEM_DEBITS = frozenset({"OVERDUE", "LOST", "RENT", "RENT_DAILY", "RENT_RENEW", "RENT_DAILY_RENEW"})

_CODE_IN_PARENS = re.compile(r"\(([a-z_]+)\)")


def cents(amount: Any) -> int:
    """Koha amounts are decimal euros; convert exactly (no float arithmetic)."""
    if isinstance(amount, bool) or not isinstance(amount, int | float | str):
        raise TypeError("amount expected")
    value = Decimal(str(amount)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return int(value * 100)


def _int_or_none(value: Any) -> int | None:
    """Koha renders some rule values as text ("3") or empty: read them leniently."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise TypeError("integer expected")
    return int(value)


def _overdue(due: Any, now: datetime) -> bool:
    """Koha's due dates are date-times with an offset (23:59 local on the due day)."""
    if not isinstance(due, str):
        raise TypeError("date-time expected")
    moment = datetime.fromisoformat(due)
    if moment.tzinfo is None:  # an older Koha: the server's local time
        return moment < datetime.now()
    return moment < now


def _fine_label(line: dict[str, Any]) -> str:
    """For a document's fee, Koha's description is the document: say what the fee is for
    first ("Retard : Madame Bovary"); otherwise the staff's description says it all."""
    debit_type = str(line.get("debit_type") or "")
    kind = DEBIT_LABELS.get(debit_type, "Frais")
    description = str(line.get("description") or "").strip()
    if not description:
        return kind
    if debit_type in ITEM_DEBITS and not description.lower().startswith(kind.lower()):
        return f"{kind} : {description}"
    return description


#: Koha's renewal errors that have a code of the standard (``RenewalRefusalCode``).
RENEWAL_CODES = {
    "too_many": "renewal_limit",
    "on_reserve": "on_hold",
    "overdue": "loan_overdue",
    "auto_account_expired": "card_expired",
    "card_expired": "card_expired",
}


def _renewal_reason(code: str | None) -> str:
    return RENEWAL_REASONS.get(code or "", NOT_RENEWABLE_REASON)


def _renewal_code(code: str | None) -> str:
    return RENEWAL_CODES.get(code or "", "not_renewable")


def _display_name(patron: dict[str, Any]) -> str:
    first = patron.get("preferred_name") or patron.get("firstname") or ""
    return " ".join(part for part in (first, patron.get("surname") or "") if part)


def parse_koha_error(headers: httpx.Headers, content: bytes) -> Problem:
    """Koha's own error body, ``{"error": "...", "error_code": "..."}``, read leniently.

    Koha's words are English and for staff: the connector puts its own French reason in
    front of a resident wherever one is shown; the code tells it which.
    """
    body = json_object(headers, content)
    if body is None:
        return Problem("", "", None)
    code = body.get("error_code") or ""
    detail = body.get("error") or ""
    return Problem(
        code if isinstance(code, str) else "", detail if isinstance(detail, str) else "", None
    )


class KohaLibraryConnector:
    """A Koha library system, through Koha's REST API v1 and a staff API account."""

    category: ClassVar[Category] = "library"
    #: Koha ignores Idempotency-Key: a renewal sent again after no answer could renew a
    #: second time, so the portal never asks again about a write whose outcome is unknown.
    replays_idempotency_keys: ClassVar[bool] = False
    #: The proofs of card ownership this back-end can check, for the linking form.
    proof_kinds: ClassVar[tuple[str, ...]] = ("pin",)
    spec: ClassVar[str] = "koha-subset.yaml"
    #: Koha's errors are not RFC 9457 problems: the client reads them with this.
    error_parser: ClassVar[ErrorParser] = staticmethod(parse_koha_error)
    #: A resource that does not exist: a 404 behind authentication proves health.
    probe_route: ClassVar[str] = "/api/v1/patrons/0"

    #: How long a record's title and a library's name are kept (``http.reference``:
    #: Redis when the portal has one, else this process's memory).
    TITLE_TTL_S = 6 * 3600.0
    LIBRARY_TTL_S = 12 * 3600.0
    #: What a current Koha embeds in one answer (titles, library names); an older one
    #: refuses these with a 400, and is then asked for its lists without them.
    CHECKOUT_EMBEDS = "item.biblio,library"
    HOLD_EMBEDS = "biblio,pickup_library"

    def __init__(self, instance: InstanceConfig, http: ResilientHTTP) -> None:
        self.instance = instance
        self.http = http
        embeds = instance.options.get("embeds", True)
        if not isinstance(embeds, bool):
            raise ValueError("options.embeds")
        #: False once this Koha refused the embeds (or the operator said so).
        self._embeds = embeds

    # -- proving a card --------------------------------------------------------------

    def verify_card(
        self,
        ctx: CallContext,
        card_number: str,
        *,
        pin: str | None = None,
        birthdate: date | None = None,
    ) -> VerifiedAccount:
        require_proof(pin, birthdate)
        if not pin:
            raise Refused(BIRTHDATE_REASON, "proof_not_supported")
        try:
            response = self.http.request(
                ctx,
                "POST",
                f"{API}/auth/password/validation",
                json_body={"identifier": card_number, "password": pin},
                refusals={400: None},
                not_found=INVALID_PROOF_REASON,
            )
        except Refused as exc:
            words = f"{exc.code} {exc.reason}".lower()
            if "expired" in words:
                raise Refused(PIN_EXPIRED_REASON, "pin_expired") from None
            if "lock" in words:
                raise Refused(CARD_LOCKED_REASON, "card_locked") from None
            raise Refused(INVALID_PROOF_REASON, "invalid_proof") from None
        patron_id = self.http.parse("verify", lambda b: as_str(b["patron_id"]), response.body)
        try:
            patron = self.http.get_json(
                ctx, f"{API}/patrons/{{patron_id}}", path_params={"patron_id": patron_id}
            )
            display_name = self.http.parse("verify", _display_name, patron)
        except ConnectorError as exc:  # the proof stands even if the name does not come
            log.info("instance %s: no display name after proof (%s)", self.instance.slug, exc)
            display_name = ""
        return VerifiedAccount(external_id=patron_id, display_name=display_name)

    # -- reads -----------------------------------------------------------------------

    def patron(self, ctx: CallContext, link: LinkRef) -> ReadResult[PatronSummary]:
        def fetch() -> dict[str, Any]:
            pid = link.external_id
            # The same lists as the loans and holds ask for (same embeds): read side by
            # side with them, each is sent once (``ResilientHTTP`` shares a GET on its way).
            patron, checkouts, holds, account = gather(
                ctx,
                [
                    lambda: self.http.get_json(
                        ctx, f"{API}/patrons/{{patron_id}}", path_params={"patron_id": pid}
                    ),
                    lambda: self._checkouts(ctx, pid, embedded=True),
                    lambda: self._raw_holds(ctx, pid, embedded=True),
                    lambda: self._raw_account(ctx, pid),
                ],
            )
            now = datetime.now(UTC)
            return {
                "patron_id": pid,
                "display_name": _display_name(patron),
                "card_expires_on": _iso(as_optional_date(patron.get("expiry_date"))),
                "loans_count": len(checkouts),
                "overdue_count": sum(_overdue(c["due_date"], now) for c in checkouts),
                "holds_ready_count": sum(h.get("status") == "W" for h in holds),
                "balance_cents": cents(account["balance"]),
            }

        return self.http.read(ctx, f"patron:{link.external_id}", fetch, parse_patron)

    def loans(self, ctx: CallContext, link: LinkRef) -> ReadResult[Sequence[Loan]]:
        def fetch() -> dict[str, Any]:
            checkouts = self._checkouts(ctx, link.external_id, embedded=True)
            ids = [as_str(c["checkout_id"]) for c in checkouts]
            biblio_ids = [(c.get("item") or {}).get("biblio_id") for c in checkouts]
            library_ids = [c.get("library_id") for c in checkouts]
            known = self._embedded(
                [(c.get("item") or {}).get("biblio") for c in checkouts],
                [c.get("library") for c in checkouts],
            )
            # Koha says whether a loan can be renewed one checkout at a time: those calls,
            # and whatever title or library name is not known yet, all side by side.
            found = gather(
                ctx,
                [partial(self._allows_renewal, ctx, checkout_id) for checkout_id in ids]
                + [partial(self._lookups, ctx, biblio_ids, library_ids, known)],
            )
            renewals = cast(list[dict[str, Any] | None], found[:-1])
            titles, branches = cast(tuple[dict[str, tuple[str, str]], dict[str, str]], found[-1])
            loans = []
            for checkout, checkout_id, renewal, biblio_id, library_id in zip(
                checkouts, ids, renewals, biblio_ids, library_ids, strict=True
            ):
                if renewal is None:
                    continue  # returned between the two calls
                title, author = titles[_ref(biblio_id)]
                renewable = bool(renewal.get("allows_renewal"))
                loans.append(
                    {
                        "loan_id": checkout_id,
                        "title": title,
                        "author": author,
                        "due_date": as_date(checkout["due_date"]).isoformat(),
                        "renewable": renewable,
                        "not_renewable_reason": ""
                        if renewable
                        else _renewal_reason(renewal.get("error")),
                        "not_renewable_code": ""
                        if renewable
                        else _renewal_code(renewal.get("error")),
                        "renewals_done": _int_or_none(renewal.get("current_renewals"))
                        or _int_or_none(checkout.get("renewals_count"))
                        or 0,
                        "renewals_allowed": _int_or_none(renewal.get("max_renewals")),
                        "branch": branches[_ref(library_id)],
                    }
                )
            return {"loans": loans}

        return self.http.read(ctx, f"loans:{link.external_id}", fetch, parse_loans)

    def holds(self, ctx: CallContext, link: LinkRef) -> ReadResult[Sequence[Hold]]:
        def fetch() -> dict[str, Any]:
            raw = self._raw_holds(ctx, link.external_id, embedded=True)
            known = self._embedded(
                [hold.get("biblio") for hold in raw], [hold.get("pickup_library") for hold in raw]
            )
            titles, places = self._lookups(
                ctx,
                [hold.get("biblio_id") for hold in raw],
                [hold.get("pickup_library_id") for hold in raw],
                known,
            )
            holds = []
            for hold in raw:
                status = HOLD_STATUS[hold.get("status")]
                title, author = titles[_ref(hold.get("biblio_id"))]
                priority = _int_or_none(hold.get("priority"))
                holds.append(
                    {
                        "hold_id": as_str(hold["hold_id"]),
                        "title": title,
                        "author": author,
                        "status": status,
                        "queue_position": priority
                        if status == "waiting" and priority and priority > 0
                        else None,
                        "pickup_place": places[_ref(hold.get("pickup_library_id"))],
                        "waiting_until": _iso(as_optional_date(hold.get("expiration_date")))
                        if status == "ready"
                        else None,
                        "placed_on": _iso(as_optional_date(hold.get("hold_date"))),
                        "cancellable": status != "in_transit",
                    }
                )
            return {"holds": holds}

        return self.http.read(ctx, f"holds:{link.external_id}", fetch, parse_holds)

    def account(self, ctx: CallContext, link: LinkRef) -> ReadResult[LibraryAccount]:
        def fetch() -> dict[str, Any]:
            account = self._raw_account(ctx, link.external_id)
            lines = (account.get("outstanding_debits") or {}).get("lines") or []
            fines = []
            for line in lines:
                fines.append(
                    {
                        "fine_id": as_str(line["account_line_id"]),
                        "label": _fine_label(line),
                        "amount_cents": cents(line["amount_outstanding"]),
                        "date": _iso(as_optional_date(line.get("date"))),
                    }
                )
            return {"balance_cents": cents(account["balance"]), "fines": fines}

        return self.http.read(ctx, f"account:{link.external_id}", fetch, parse_account)

    # -- writes ----------------------------------------------------------------------

    def renew(
        self, ctx: CallContext, link: LinkRef, loan_id: str, *, idempotency_key: str
    ) -> RenewalOutcome:
        checkouts = self._checkouts(ctx, link.external_id)
        owned = self.http.parse(
            "checkouts", lambda cs: {as_str(c["checkout_id"]) for c in cs}, checkouts
        )
        if loan_id not in owned:
            log.warning("instance %s: renewal of a loan not on the linked card", self.instance.slug)
            raise Refused(LOAN_GONE_REASON, "not_found")
        try:
            response = self.http.request(
                ctx,
                "POST",
                f"{API}/checkouts/{{checkout_id}}/renewal",
                path_params={"checkout_id": loan_id},
                idempotency_key=idempotency_key,
                refusals={403: None},
                not_found=LOAN_GONE_REASON,
            )
        except Refused as exc:
            if exc.code == "not_found":  # Koha's words are English: ours instead
                raise Refused(LOAN_GONE_REASON, "not_found") from None
            match = _CODE_IN_PARENS.search(exc.reason)
            code = match.group(1) if match else exc.code
            return RenewalOutcome(
                loan_id=loan_id,
                renewed=False,
                reason=_renewal_reason(code),
                reason_code=_renewal_code(code),
            )
        new_due = self.http.parse("renewal", lambda b: as_date(b["due_date"]), response.body)
        return RenewalOutcome(loan_id=loan_id, renewed=True, new_due_date=new_due)

    def cancel_hold(
        self, ctx: CallContext, link: LinkRef, hold_id: str, *, idempotency_key: str
    ) -> None:
        raw = self._raw_holds(ctx, link.external_id)
        holds = self.http.parse("holds", lambda hs: {as_str(h["hold_id"]): h for h in hs}, raw)
        hold = holds.get(hold_id)
        if hold is None:
            log.warning("instance %s: cancel of a hold not on the linked card", self.instance.slug)
            raise Refused(HOLD_GONE_REASON, "not_found")
        if hold.get("status") == "T":
            raise Refused(IN_TRANSIT_REASON, "not_cancellable")
        try:
            self.http.request(
                ctx,
                "DELETE",
                f"{API}/holds/{{hold_id}}",
                path_params={"hold_id": hold_id},
                idempotency_key=idempotency_key,
                accept="none",
                not_found=HOLD_GONE_REASON,
            )
        except Refused as exc:  # Koha's words are English: ours instead
            raise Refused(
                HOLD_GONE_REASON if exc.code == "not_found" else KOHA_REFUSED_REASON, exc.code
            ) from None

    # -- Koha calls ------------------------------------------------------------------

    def _checkouts(self, ctx: CallContext, patron_id: str, *, embedded: bool = False) -> list[Any]:
        """The patron's current checkouts; ``embedded``: with each one's item and, from a
        current Koha, the item's record and the library (else the item alone)."""

        def ask(embeds: str | None) -> Any:
            return self.http.get_json(
                ctx,
                f"{API}/checkouts",
                params={"patron_id": patron_id, "checked_in": "false", "_per_page": -1},
                headers={"x-koha-embed": embeds} if embeds else None,
                refusals={400: None} if embeds else None,
            )

        body = self._embedding(ask, self.CHECKOUT_EMBEDS, "item") if embedded else ask(None)
        return self.http.parse("checkouts", _as_list, body)

    def _raw_holds(self, ctx: CallContext, patron_id: str, *, embedded: bool = False) -> list[Any]:
        def ask(embeds: str | None) -> Any:
            return self.http.get_json(
                ctx,
                f"{API}/patrons/{{patron_id}}/holds",
                path_params={"patron_id": patron_id},
                params={"_per_page": -1},
                headers={"x-koha-embed": embeds} if embeds else None,
                refusals={400: None} if embeds else None,
            )

        body = self._embedding(ask, self.HOLD_EMBEDS, None) if embedded else ask(None)
        return self.http.parse("holds", _as_list, body)

    def _embedding(
        self, ask: Callable[[str | None], Any], embeds: str, otherwise: str | None
    ) -> Any:
        """Ask with ``embeds`` while this Koha takes them; once it refuses them (a 400,
        as a Koha older than the embeds answers), with ``otherwise`` from then on."""
        if self._embeds:
            try:
                return ask(embeds)
            except Refused:
                log.info(
                    "instance %s: Koha refused the embeds %s: asking without them",
                    self.instance.slug,
                    embeds,
                )
                self._embeds = False
        return ask(otherwise)

    @staticmethod
    def _embedded(
        biblios: Sequence[Any], libraries: Sequence[Any]
    ) -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
        """Titles and library names a list brought along (by ``_ref(id)``): these need
        no lookup."""
        titles: dict[str, tuple[str, str]] = {}
        for biblio in biblios:
            if isinstance(biblio, dict) and biblio.get("biblio_id") is not None:
                title, author = _title(biblio)
                titles[_ref(biblio["biblio_id"])] = (title, author)
        names: dict[str, str] = {}
        for library in libraries:
            if isinstance(library, dict) and library.get("library_id"):
                names[_ref(library["library_id"])] = str(library.get("name") or "")
        return titles, {ref: name for ref, name in names.items() if name}

    def _raw_account(self, ctx: CallContext, patron_id: str) -> dict[str, Any]:
        body = self.http.get_json(
            ctx, f"{API}/patrons/{{patron_id}}/account", path_params={"patron_id": patron_id}
        )
        return self.http.parse("account", _as_dict, body)

    def _allows_renewal(self, ctx: CallContext, checkout_id: str) -> dict[str, Any] | None:
        """Koha's renewal verdict on one checkout, None if it was returned meanwhile."""
        try:
            body = self.http.get_json(
                ctx,
                f"{API}/checkouts/{{checkout_id}}/allows_renewal",
                path_params={"checkout_id": checkout_id},
                not_found=LOAN_GONE_REASON,
            )
        except Refused:
            return None
        if not isinstance(body, dict):
            raise TypeError("object expected")
        return body

    def _lookups(
        self,
        ctx: CallContext,
        biblio_ids: Sequence[Any],
        library_ids: Sequence[Any],
        known: tuple[dict[str, tuple[str, str]], dict[str, str]] = ({}, {}),
    ) -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
        """Titles and library names for a list of loans or holds, by ``_ref(id)``: those
        in ``known`` (embedded in the list), the others from the reference cache or
        asked, each once and all side by side."""
        known_titles, known_names = known
        biblios: dict[str, Any] = {}
        for biblio_id in biblio_ids:
            if _ref(biblio_id) not in known_titles:
                biblios.setdefault(_ref(biblio_id), biblio_id)
        libraries: dict[str, Any] = {}
        for library_id in library_ids:
            if _ref(library_id) not in known_names:
                libraries.setdefault(_ref(library_id), library_id)
        thunks: list[Callable[[], object]] = [
            partial(self._biblio, ctx, biblio_id) for biblio_id in biblios.values()
        ]
        thunks += [partial(self._library_name, ctx, lib) for lib in libraries.values()]
        found = gather(ctx, thunks)
        titles = {
            ref: cast(tuple[str, str], value)
            for ref, value in zip(biblios, found[: len(biblios)], strict=True)
        }
        names = {
            ref: str(value) for ref, value in zip(libraries, found[len(biblios) :], strict=True)
        }
        return {**known_titles, **titles}, {**known_names, **names}

    def _biblio(self, ctx: CallContext, biblio_id: Any) -> tuple[str, str]:
        """Title and author of a record, kept for hours: every resident sees the same."""
        if biblio_id is None:
            return "", ""

        def fetch() -> list[str]:
            try:
                body = self.http.get_json(
                    ctx,
                    f"{API}/biblios/{{biblio_id}}",
                    path_params={"biblio_id": biblio_id},
                    headers={"Accept": "application/json"},
                    not_found="",
                )
            except Refused:
                return ["", ""]
            return _title(body)

        found = self.http.reference.lookup("biblio", str(biblio_id), self.TITLE_TTL_S, fetch)
        if not (isinstance(found, list) and len(found) == 2):
            return "", ""
        return str(found[0]), str(found[1])

    def _library_name(self, ctx: CallContext, library_id: Any) -> str:
        if not library_id:
            return ""

        def fetch() -> str:
            try:
                body = self.http.get_json(
                    ctx,
                    f"{API}/libraries/{{library_id}}",
                    path_params={"library_id": library_id},
                    not_found="",
                )
            except Refused:
                return str(library_id)
            return str(body.get("name") or library_id)

        return str(
            self.http.reference.lookup("library", str(library_id), self.LIBRARY_TTL_S, fetch)
        )


def _title(biblio: dict[str, Any]) -> list[str]:
    """A record's title (with its subtitle) and author, as a resident reads them."""
    title = " : ".join(str(p) for p in (biblio.get("title"), biblio.get("subtitle")) if p)
    return [title.strip(" /:"), str(biblio.get("author") or "").strip(" ,.")]


def _ref(value: Any) -> str:
    """A lookup's key: Koha ids come as numbers or strings, and may be missing."""
    return "" if value is None else str(value)


def _as_list(body: Any) -> list[Any]:
    if not isinstance(body, list):
        raise TypeError("list expected")
    return body


def _as_dict(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise TypeError("object expected")
    return body


def _iso(value: date | None) -> str | None:
    return None if value is None else value.isoformat()
