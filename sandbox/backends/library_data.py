"""Records of the sandbox's standard-API libraries (Mérignac, Pessac), built relative to *today*."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sandbox.backends.records import MAX_FAILED_PROOFS, birthdate_of, days_from

#: Days added to a loan's due date by one renewal.
LOAN_PERIOD_DAYS = 21

# Plain-French reasons a resident reads when the back-end says no.
REASON_RESERVED = "Ce document est réservé par un autre lecteur."
REASON_TOO_MANY = "Vous avez déjà prolongé ce document le nombre de fois autorisé."
REASON_OVERDUE = (
    "Le retour de ce document est en retard : il ne peut plus être prolongé. "
    "Merci de le rapporter à la bibliothèque."
)
REASON_CARD_EXPIRED = (
    "Votre carte de lecteur a expiré : renouvelez-la à l'accueil de la bibliothèque "
    "pour prolonger vos emprunts."
)
#: The standard's stable code of each reason (``RenewalRefusalCode`` in the spec).
REASON_CODES = {
    REASON_RESERVED: "on_hold",
    REASON_TOO_MANY: "renewal_limit",
    REASON_OVERDUE: "loan_overdue",
    REASON_CARD_EXPIRED: "card_expired",
}
REASON_IN_TRANSIT = (
    "Ce document est déjà en route vers votre bibliothèque : la réservation ne peut plus "
    "être annulée en ligne."
)

# -- library (standard API) ----------------------------------------------------------------


@dataclass
class LibraryLoan:
    loan_id: str
    title: str
    author: str
    due_date: date
    branch: str
    renewals_done: int = 0
    renewals_allowed: int | None = 2
    #: Another reader holds a reservation on this document.
    reserved_by_other: bool = False


@dataclass
class LibraryHold:
    hold_id: str
    title: str
    author: str
    status: str  # waiting | in_transit | ready
    pickup_place: str
    placed_on: date
    queue_position: int | None = None
    waiting_until: date | None = None

    @property
    def cancellable(self) -> bool:
        return self.status != "in_transit"


@dataclass
class LibraryFine:
    fine_id: str
    label: str
    amount_cents: int
    on: date


@dataclass
class LibraryPatron:
    owner: str
    patron_id: str
    card_number: str
    pin: str
    birthdate: str
    display_name: str
    card_expires_on: date | None
    loans: list[LibraryLoan] = field(default_factory=list)
    holds: list[LibraryHold] = field(default_factory=list)
    fines: list[LibraryFine] = field(default_factory=list)
    locked: bool = False
    failed_attempts: int = 0

    def card_expired(self, today: date) -> bool:
        return self.card_expires_on is not None and self.card_expires_on < today

    def renewal_refusal(self, loan: LibraryLoan, today: date) -> str:
        """Why ``loan`` cannot be renewed today, in plain French, or ``""`` if it can."""
        if self.card_expired(today):
            return REASON_CARD_EXPIRED
        if loan.due_date < today:
            return REASON_OVERDUE
        if loan.reserved_by_other:
            return REASON_RESERVED
        if loan.renewals_allowed is not None and loan.renewals_done >= loan.renewals_allowed:
            return REASON_TOO_MANY
        return ""

    @property
    def balance_cents(self) -> int:
        return sum(fine.amount_cents for fine in self.fines)


@dataclass
class LibraryTenant:
    title: str
    patrons: dict[str, LibraryPatron]


def build_library(today: date) -> dict[str, LibraryTenant]:
    return {"merignac": _merignac(today), "pessac": _pessac(today)}


def _merignac(today: date) -> LibraryTenant:
    central = "Médiathèque centrale de Mérignac"
    arlac = "Bibliothèque d'Arlac"
    marie = LibraryPatron(
        owner="marie-therese",
        patron_id="mer-p-0417",
        card_number="33281000041721",
        pin="2408",
        birthdate=birthdate_of("marie-therese"),
        display_name="Marie-Thérèse Dubois",
        card_expires_on=days_from(today, 240),
        loans=[
            LibraryLoan(
                "mer-l-0417-1",
                "Au revoir là-haut",
                "Pierre Lemaitre",
                days_from(today, -4),
                central,
            ),
            LibraryLoan(
                "mer-l-0417-2",
                "L'Anomalie",
                "Hervé Le Tellier",
                days_from(today, 2),
                central,
                renewals_done=1,
            ),
            LibraryLoan(
                "mer-l-0417-3",
                "Veiller sur elle",
                "Jean-Baptiste Andrea",
                days_from(today, 9),
                arlac,
                reserved_by_other=True,
            ),
            LibraryLoan(
                "mer-l-0417-4",
                "Les Années",
                "Annie Ernaux",
                days_from(today, 16),
                central,
                renewals_done=2,
            ),
            LibraryLoan(
                "mer-l-0417-5",
                "Astérix chez les Pictes",
                "Jean-Yves Ferri, Didier Conrad",
                days_from(today, 19),
                arlac,
            ),
        ],
        holds=[
            LibraryHold(
                "mer-h-0417-1",
                "Le Mage du Kremlin",
                "Giuliano da Empoli",
                "ready",
                central,
                placed_on=days_from(today, -21),
                waiting_until=days_from(today, 5),
            ),
            LibraryHold(
                "mer-h-0417-2",
                "Petit Pays",
                "Gaël Faye",
                "waiting",
                arlac,
                placed_on=days_from(today, -10),
                queue_position=3,
            ),
        ],
        fines=[
            LibraryFine(
                "mer-f-0417-1",
                "Retard de retour : « Chanson douce »",
                150,
                days_from(today, -35),
            )
        ],
    )
    amina = LibraryPatron(
        owner="amina",
        patron_id="mer-p-0958",
        card_number="33281000095804",
        pin="1102",
        birthdate=birthdate_of("amina"),
        display_name="Amina Benali",
        card_expires_on=days_from(today, 400),
        loans=[
            LibraryLoan(
                "mer-l-0958-1", "Chanson douce", "Leïla Slimani", days_from(today, 11), central
            ),
            LibraryLoan(
                "mer-l-0958-2",
                "La Tresse",
                "Laetitia Colombani",
                days_from(today, 11),
                central,
                renewals_allowed=None,
            ),
        ],
        holds=[
            LibraryHold(
                "mer-h-0958-1",
                "Intouchables (DVD)",
                "Olivier Nakache, Éric Toledano",
                "in_transit",
                central,
                placed_on=days_from(today, -6),
            )
        ],
    )
    eloise = LibraryPatron(
        owner="eloise",
        patron_id="mer-p-1290",
        card_number="33281000129033",
        pin="2902",
        birthdate=birthdate_of("eloise"),
        display_name="Éloïse Nguyen",
        card_expires_on=days_from(today, -12),
        loans=[
            LibraryLoan(
                "mer-l-1290-1",
                "Le Petit Prince",
                "Antoine de Saint-Exupéry",
                days_from(today, 6),
                arlac,
            )
        ],
    )
    patrons = [marie, amina, eloise]
    return LibraryTenant("Médiathèques de Mérignac", {p.patron_id: p for p in patrons})


def _pessac(today: date) -> LibraryTenant:
    centre = "Médiathèque de Pessac-centre"
    saige = "Bibliothèque de Saige"
    charles = LibraryPatron(
        owner="dartagnan",
        patron_id="pes-p-2207",
        card_number="33318000220719",
        pin="1503",
        birthdate=birthdate_of("dartagnan"),
        display_name="Charles d'Artagnan-Lévêque",
        card_expires_on=days_from(today, 180),
        loans=[
            LibraryLoan(
                "pes-l-2207-1",
                "Les Misérables, tome 1",
                "Victor Hugo",
                days_from(today, 1),
                centre,
            ),
            LibraryLoan(
                "pes-l-2207-2",
                "La Vérité sur l'affaire Harry Quebert",
                "Joël Dicker",
                days_from(today, 13),
                saige,
            ),
        ],
        holds=[
            LibraryHold(
                "pes-h-2207-1",
                "Vernon Subutex, tome 1",
                "Virginie Despentes",
                "waiting",
                centre,
                placed_on=days_from(today, -3),
                queue_position=1,
            )
        ],
    )
    paul = LibraryPatron(
        owner="paul-antoine",
        patron_id="pes-p-3112",
        card_number="33318000311260",
        pin="3112",
        birthdate=birthdate_of("paul-antoine"),
        display_name="Paul-Antoine Casanova",
        card_expires_on=days_from(today, 60),
        locked=True,
        failed_attempts=MAX_FAILED_PROOFS,
    )
    jean = LibraryPatron(
        owner="jean-baptiste",
        patron_id="pes-p-0101",
        card_number="33318000010147",
        pin="1951",
        birthdate=birthdate_of("jean-baptiste"),
        display_name="Jean-Baptiste de La Tour d'Auvergne-Lauraguais",
        card_expires_on=None,
        loans=[
            LibraryLoan(
                "pes-l-0101-1",
                "Ensemble, c'est tout",
                "Anna Gavalda",
                days_from(today, -15),
                saige,
                renewals_done=2,
            )
        ],
        fines=[
            LibraryFine(
                "pes-f-0101-1",
                "Retard de retour : « L'Élégance du hérisson »",
                320,
                days_from(today, -50),
            ),
            LibraryFine("pes-f-0101-2", "Carte perdue : duplicata", 250, days_from(today, -20)),
        ],
    )
    patrons = [charles, paul, jean]
    return LibraryTenant("Médiathèques de Pessac", {p.patron_id: p for p in patrons})
