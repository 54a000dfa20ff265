"""Deterministic synthetic records of the sandbox back-ends, built relative to *today*.

Every date is an offset from the day the data set is built for, so due dates, meal
deadlines and renewal windows always mean something in a demo or a test, whatever the
calendar says. Nothing is random: two sandboxes built for the same day hold exactly the
same records, which is what lets tests compare them and demo scripts rely on them.

Each record belongs to one of the identity provider's test identities (``owner``) and
carries the proof its back-end asks for (card number and PIN, family number and invoice
code, housing "numéro unique"), always with that identity's birth date, so the portal can
link accounts the way a resident would.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sandbox.idp.identities import IDENTITIES_BY_KEY

if TYPE_CHECKING:
    from sandbox.backends.water_data import WaterTenant

PARIS = ZoneInfo("Europe/Paris")

#: Consecutive wrong proofs after which a card or family account is locked.
MAX_FAILED_PROOFS = 5
#: Koha's ``FailedLoginAttempts`` system preference, as the sandbox Koha sets it.
KOHA_FAILED_LOGIN_ATTEMPTS = 5
#: Days added to a loan's due date by one renewal.
LOAN_PERIOD_DAYS = 21
#: Days before expiry from which a housing application can be renewed.
HOUSING_RENEWAL_NOTICE_DAYS = 30

MONTHS_FR = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)
WEEKDAYS_FR = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")

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


# -- time --------------------------------------------------------------------------------


def paris_now() -> datetime:
    """Now, in the territory's time zone (deadlines are local times)."""
    return datetime.now(PARIS)


def sandbox_now(configured: str | None = None) -> datetime:
    """The sandbox's clock: now in Paris, moved to the pinned day if there is one.

    ``configured`` (or the ``SANDBOX_TODAY`` environment variable), an ISO date, pins the
    day so a test or a recorded demo can replay exactly the same records; the time of day
    stays real, so deadlines such as "10:00 two working days before" keep their meaning.
    """
    now = paris_now()
    value = configured or os.environ.get("SANDBOX_TODAY")
    if value:
        return datetime.combine(date.fromisoformat(value), now.timetz())
    return now


def sandbox_today(configured: str | None = None) -> date:
    """The day the data set is built for (see ``sandbox_now``)."""
    return sandbox_now(configured).date()


def local_datetime(day: date, hour: int = 0, minute: int = 0) -> datetime:
    """A wall-clock time in Paris, with its UTC offset (RFC 3339 needs one)."""
    return datetime.combine(day, time(hour, minute), tzinfo=PARIS)


def french_date(day: date) -> str:
    """``jeudi 14 mai 2026``: how dates are written in reasons a resident reads."""
    label = "1er" if day.day == 1 else str(day.day)
    return f"{WEEKDAYS_FR[day.weekday()]} {label} {MONTHS_FR[day.month - 1]} {day.year}"


def month_label(day: date) -> str:
    """``octobre 2026``."""
    return f"{MONTHS_FR[day.month - 1]} {day.year}"


def add_months(day: date, months: int) -> date:
    """The first day of the month ``months`` away from ``day``'s month."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def easter_sunday(year: int) -> date:
    """Gregorian Easter (anonymous Gregorian algorithm): three holidays hang on it."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    el = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * el) // 451
    month, day = divmod(h + el - 7 * m + 114, 31)
    return date(year, month, day + 1)


def public_holidays(year: int) -> dict[date, str]:
    """French public holidays (jours fériés) of ``year``, with their names."""
    easter = easter_sunday(year)
    return {
        date(year, 1, 1): "Jour de l'An",
        easter + timedelta(days=1): "Lundi de Pâques",
        date(year, 5, 1): "Fête du Travail",
        date(year, 5, 8): "Victoire 1945",
        easter + timedelta(days=39): "Ascension",
        easter + timedelta(days=50): "Lundi de Pentecôte",
        date(year, 7, 14): "Fête nationale",
        date(year, 8, 15): "Assomption",
        date(year, 11, 1): "Toussaint",
        date(year, 11, 11): "Armistice 1918",
        date(year, 12, 25): "Noël",
    }


def holiday_name(day: date) -> str:
    return public_holidays(day.year).get(day, "")


def is_working_day(day: date) -> bool:
    """Monday to Friday, not a public holiday: when the canteen office handles changes."""
    return day.weekday() < 5 and not holiday_name(day)


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


# -- Koha ----------------------------------------------------------------------------------


@dataclass
class KohaBiblio:
    biblio_id: int
    title: str
    author: str
    publisher: str
    copyright_date: int


@dataclass
class KohaItem:
    item_id: int
    biblio_id: int
    external_id: str
    home_library_id: str
    callnumber: str
    item_type_id: str = "LIVRE"


@dataclass
class KohaCheckout:
    checkout_id: int
    patron_id: int
    item_id: int
    library_id: str
    checkout_date: datetime
    due_date: datetime
    renewals_count: int = 0
    max_renewals: int = 2
    last_renewed_date: datetime | None = None
    #: Another patron holds a reservation on the record: Koha's ``on_reserve``.
    on_reserve: bool = False


@dataclass
class KohaHold:
    hold_id: int
    patron_id: int
    biblio_id: int
    pickup_library_id: str
    hold_date: date
    priority: int
    #: Koha's one-letter status: W waiting at the desk, T in transit, None still queued.
    status: str | None = None
    item_id: int | None = None
    waiting_date: date | None = None
    expiration_date: date | None = None


@dataclass
class KohaDebit:
    account_line_id: int
    patron_id: int
    debit_type: str
    description: str
    amount: Decimal
    amount_outstanding: Decimal
    date: datetime
    library_id: str
    item_id: int | None = None
    checkout_id: int | None = None


@dataclass
class KohaPatron:
    owner: str
    patron_id: int
    cardnumber: str
    userid: str
    password: str
    firstname: str
    surname: str
    date_of_birth: str
    library_id: str
    expiry_date: date | None
    category_id: str = "ADULTE"
    login_attempts: int = 0


@dataclass
class KohaTenant:
    title: str
    libraries: dict[str, str]
    patrons: dict[int, KohaPatron]
    biblios: dict[int, KohaBiblio]
    items: dict[int, KohaItem]
    checkouts: dict[int, KohaCheckout]
    holds: dict[int, KohaHold]
    debits: dict[int, KohaDebit]


# -- canteen -------------------------------------------------------------------------------


@dataclass
class CanteenChild:
    child_id: str
    first_name: str
    school: str
    grade: str
    #: Weekdays (0 = Monday) booked by default, as in the family's yearly registration.
    weekdays: frozenset[int]
    #: Day-by-day changes made since registration: date -> booked.
    overrides: dict[date, bool] = field(default_factory=dict)

    def booked(self, day: date) -> bool:
        if not serves_meals(day):
            return False
        return self.overrides.get(day, day.weekday() in self.weekdays)


@dataclass
class CanteenInvoice:
    invoice_id: str
    label: str
    amount_cents: int
    issued_on: date
    due_date: date
    paid_on: date | None = None
    pdf_available: bool = True

    @property
    def paid(self) -> bool:
        return self.paid_on is not None


@dataclass
class CanteenFamily:
    owner: str
    family_id: str
    family_number: str
    invoice_code: str
    display_name: str
    payer_name: str
    quotient_tier: str
    meal_price_cents: int
    children: dict[str, CanteenChild]
    invoices: dict[str, CanteenInvoice]
    locked: bool = False
    failed_attempts: int = 0


@dataclass
class CanteenTenant:
    title: str
    families: dict[str, CanteenFamily]


def serves_meals(day: date) -> bool:
    """School canteens serve Monday, Tuesday, Thursday and Friday, except public holidays.

    (No school on Wednesdays in most French primary schools; school holidays are left out
    so that a demo always has days to book.)
    """
    return day.weekday() in (0, 1, 3, 4) and not holiday_name(day)


def no_service_note(day: date) -> str:
    """Why there is no meal on ``day``, for the resident."""
    holiday = holiday_name(day)
    if holiday:
        return f"Jour férié ({holiday}) : pas de restauration scolaire."
    if day.weekday() == 2:
        return "Pas de restauration scolaire le mercredi."
    if day.weekday() >= 5:
        return "Pas de restauration scolaire le week-end."
    return ""


def change_deadline(day: date) -> datetime:
    """Bookings for ``day`` can change until 10:00 two working days before."""
    cursor = day
    working_days = 0
    while working_days < 2:
        cursor -= timedelta(days=1)
        if is_working_day(cursor):
            working_days += 1
    return local_datetime(cursor, 10, 0)


# -- housing -------------------------------------------------------------------------------


@dataclass
class HousingApplication:
    owner: str
    application_id: str
    number: str
    birthdate: str
    display_name: str
    filed_on: date
    expires_on: date | None
    communes_wanted: list[str]
    history: list[tuple[date, str]]
    closed_reason: str = ""

    @property
    def renewal_opens_on(self) -> date | None:
        if self.expires_on is None or self.closed_reason:
            return None
        return self.expires_on - timedelta(days=HOUSING_RENEWAL_NOTICE_DAYS)

    @property
    def renewal_closes_on(self) -> date | None:
        if self.expires_on is None or self.closed_reason:
            return None
        return self.expires_on

    def status(self, today: date) -> str:
        """Derived from the dates, so it is right whatever day the sandbox runs."""
        if self.closed_reason:
            return "closed"
        if self.expires_on is None:
            return "filed"
        if today > self.expires_on:
            return "expired"
        opens = self.renewal_opens_on
        if opens is not None and today >= opens:
            return "renewal_due"
        return "active"


@dataclass
class HousingTenant:
    title: str
    applications: dict[str, HousingApplication]


# -- the data set ----------------------------------------------------------------------------


@dataclass
class Dataset:
    today: date
    library: dict[str, LibraryTenant]
    koha: dict[str, KohaTenant]
    canteen: dict[str, CanteenTenant]
    housing: dict[str, HousingTenant]
    #: Water operators (``water_data.py``), by tenant.
    water: dict[str, WaterTenant] = field(default_factory=dict)


def birthdate_of(identity_key: str) -> str:
    identity = IDENTITIES_BY_KEY[identity_key]
    return identity.birthdate


def build_dataset(today: date) -> Dataset:
    """Every record of every tenant, for ``today``. Pure: same day, same records."""
    # Imported here: the water records use this module's date helpers.
    from sandbox.backends.water_data import build_water

    return Dataset(
        today=today,
        library={
            "merignac": _merignac(today),
            "pessac": _pessac(today),
        },
        koha={"bordeaux": _koha_bordeaux(today)},
        canteen={"bordeaux": _canteen_bordeaux(today)},
        housing={"metropole": _housing_metropole(today)},
        water=build_water(today),
    )


def _days(today: date, offset: int) -> date:
    return today + timedelta(days=offset)


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
        card_expires_on=_days(today, 240),
        loans=[
            LibraryLoan(
                "mer-l-0417-1", "Au revoir là-haut", "Pierre Lemaitre", _days(today, -4), central
            ),
            LibraryLoan(
                "mer-l-0417-2",
                "L'Anomalie",
                "Hervé Le Tellier",
                _days(today, 2),
                central,
                renewals_done=1,
            ),
            LibraryLoan(
                "mer-l-0417-3",
                "Veiller sur elle",
                "Jean-Baptiste Andrea",
                _days(today, 9),
                arlac,
                reserved_by_other=True,
            ),
            LibraryLoan(
                "mer-l-0417-4",
                "Les Années",
                "Annie Ernaux",
                _days(today, 16),
                central,
                renewals_done=2,
            ),
            LibraryLoan(
                "mer-l-0417-5",
                "Astérix chez les Pictes",
                "Jean-Yves Ferri, Didier Conrad",
                _days(today, 19),
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
                placed_on=_days(today, -21),
                waiting_until=_days(today, 5),
            ),
            LibraryHold(
                "mer-h-0417-2",
                "Petit Pays",
                "Gaël Faye",
                "waiting",
                arlac,
                placed_on=_days(today, -10),
                queue_position=3,
            ),
        ],
        fines=[
            LibraryFine(
                "mer-f-0417-1",
                "Retard de retour : « Chanson douce »",
                150,
                _days(today, -35),
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
        card_expires_on=_days(today, 400),
        loans=[
            LibraryLoan(
                "mer-l-0958-1", "Chanson douce", "Leïla Slimani", _days(today, 11), central
            ),
            LibraryLoan(
                "mer-l-0958-2",
                "La Tresse",
                "Laetitia Colombani",
                _days(today, 11),
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
                placed_on=_days(today, -6),
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
        card_expires_on=_days(today, -12),
        loans=[
            LibraryLoan(
                "mer-l-1290-1",
                "Le Petit Prince",
                "Antoine de Saint-Exupéry",
                _days(today, 6),
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
        card_expires_on=_days(today, 180),
        loans=[
            LibraryLoan(
                "pes-l-2207-1",
                "Les Misérables, tome 1",
                "Victor Hugo",
                _days(today, 1),
                centre,
            ),
            LibraryLoan(
                "pes-l-2207-2",
                "La Vérité sur l'affaire Harry Quebert",
                "Joël Dicker",
                _days(today, 13),
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
                placed_on=_days(today, -3),
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
        card_expires_on=_days(today, 60),
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
                _days(today, -15),
                saige,
                renewals_done=2,
            )
        ],
        fines=[
            LibraryFine(
                "pes-f-0101-1",
                "Retard de retour : « L'Élégance du hérisson »",
                320,
                _days(today, -50),
            ),
            LibraryFine("pes-f-0101-2", "Carte perdue : duplicata", 250, _days(today, -20)),
        ],
    )
    patrons = [charles, paul, jean]
    return LibraryTenant("Médiathèques de Pessac", {p.patron_id: p for p in patrons})


def _koha_bordeaux(today: date) -> KohaTenant:
    libraries = {
        "MERIADECK": "Bibliothèque Mériadeck",
        "BASTIDE": "Bibliothèque de la Bastide",
        "CAPUCINS": "Bibliothèque Capucins/Saint-Michel",
    }
    biblios = [
        KohaBiblio(101, "Les Bienveillantes", "Littell, Jonathan", "Gallimard", 2006),
        KohaBiblio(102, "L'Élégance du hérisson", "Barbery, Muriel", "Gallimard", 2006),
        KohaBiblio(103, "Le Consentement", "Springora, Vanessa", "Grasset", 2020),
        KohaBiblio(104, "Vingt mille lieues sous les mers", "Verne, Jules", "Hetzel", 1870),
        KohaBiblio(105, "Le Cuisinier gascon", "Dupont, Hélène", "Sud Ouest", 2019),
        KohaBiblio(106, "Madame Bovary", "Flaubert, Gustave", "Michel Lévy", 1857),
        KohaBiblio(107, "L'Étranger", "Camus, Albert", "Gallimard", 1942),
        KohaBiblio(108, "Bordeaux, histoire d'une ville", "Martin, Sylvie", "Mollat", 2018),
    ]
    items = [
        KohaItem(5001, 101, "BDX0005001", "MERIADECK", "R LIT"),
        KohaItem(5002, 102, "BDX0005002", "MERIADECK", "R BAR"),
        KohaItem(5003, 103, "BDX0005003", "BASTIDE", "R SPR"),
        KohaItem(5004, 104, "BDX0005004", "CAPUCINS", "R VER"),
        KohaItem(5005, 105, "BDX0005005", "MERIADECK", "641.5 DUP", "DOC"),
        KohaItem(5006, 106, "BDX0005006", "BASTIDE", "R FLA"),
        KohaItem(5007, 107, "BDX0005007", "MERIADECK", "R CAM"),
    ]

    def checkout(
        checkout_id: int, patron_id: int, item_id: int, due_offset: int, **extra: object
    ) -> KohaCheckout:
        due = local_datetime(_days(today, due_offset), 23, 59)
        return KohaCheckout(
            checkout_id=checkout_id,
            patron_id=patron_id,
            item_id=item_id,
            library_id=items_by_id[item_id].home_library_id,
            checkout_date=local_datetime(_days(today, due_offset - 28), 15, 12),
            due_date=due,
            **extra,  # type: ignore[arg-type]
        )

    items_by_id = {item.item_id: item for item in items}
    patrons = [
        KohaPatron(
            owner="marie-therese",
            patron_id=51,
            cardnumber="23300000051",
            userid="mtdubois",
            password="mtd-bdx-2408",
            firstname="Marie-Thérèse",
            surname="Dubois",
            date_of_birth=birthdate_of("marie-therese"),
            library_id="MERIADECK",
            expiry_date=_days(today, 300),
        ),
        KohaPatron(
            owner="lucas",
            patron_id=77,
            cardnumber="23300000077",
            userid="lrousseau",
            password="lr-bdx-0678",
            firstname="Lucas",
            surname="Rousseau",
            date_of_birth=birthdate_of("lucas"),
            library_id="BASTIDE",
            expiry_date=_days(today, 90),
        ),
        KohaPatron(
            owner="paul-antoine",
            patron_id=88,
            cardnumber="23300000088",
            userid="pacasanova",
            password="pac-bdx-3112",
            firstname="Paul-Antoine",
            surname="Casanova",
            date_of_birth=birthdate_of("paul-antoine"),
            library_id="CAPUCINS",
            expiry_date=_days(today, 30),
            login_attempts=KOHA_FAILED_LOGIN_ATTEMPTS,
        ),
    ]
    checkouts = [
        checkout(9001, 51, 5001, -2),
        checkout(9002, 51, 5002, 3, renewals_count=1),
        checkout(9003, 51, 5003, 10, on_reserve=True),
        checkout(9004, 51, 5004, 17),
        checkout(9005, 77, 5005, 8),
        checkout(9006, 77, 5006, 14, renewals_count=2),
    ]
    holds = [
        KohaHold(
            hold_id=701,
            patron_id=51,
            biblio_id=107,
            item_id=5007,
            pickup_library_id="MERIADECK",
            hold_date=_days(today, -12),
            priority=0,
            status="W",
            waiting_date=_days(today, -2),
            expiration_date=_days(today, 6),
        ),
        KohaHold(
            hold_id=702,
            patron_id=51,
            biblio_id=108,
            pickup_library_id="BASTIDE",
            hold_date=_days(today, -5),
            priority=2,
        ),
        KohaHold(
            hold_id=703,
            patron_id=77,
            biblio_id=104,
            item_id=5004,
            pickup_library_id="BASTIDE",
            hold_date=_days(today, -8),
            priority=0,
            status="T",
        ),
    ]
    debits = [
        KohaDebit(
            account_line_id=3301,
            patron_id=51,
            debit_type="OVERDUE",
            description="Retard : Madame Bovary",
            amount=Decimal("1.20"),
            amount_outstanding=Decimal("1.20"),
            date=local_datetime(_days(today, -40), 10, 5),
            library_id="MERIADECK",
            item_id=5006,
        ),
        KohaDebit(
            account_line_id=3302,
            patron_id=77,
            debit_type="MANUAL",
            description="Frais de réservation",
            amount=Decimal("0.50"),
            amount_outstanding=Decimal("0.50"),
            date=local_datetime(_days(today, -9), 16, 40),
            library_id="BASTIDE",
        ),
    ]
    return KohaTenant(
        title="Bibliothèques de Bordeaux",
        libraries=libraries,
        patrons={p.patron_id: p for p in patrons},
        biblios={b.biblio_id: b for b in biblios},
        items=items_by_id,
        checkouts={c.checkout_id: c for c in checkouts},
        holds={h.hold_id: h for h in holds},
        debits={d.account_line_id: d for d in debits},
    )


def _canteen_bordeaux(today: date) -> CanteenTenant:
    last_month = add_months(today, -1)
    two_months_ago = add_months(today, -2)
    three_months_ago = add_months(today, -3)
    dubois = CanteenFamily(
        owner="marie-therese",
        family_id="fam-4521",
        family_number="0045217",
        invoice_code="KX4M7P",
        display_name="Famille Dubois",
        payer_name="Marie-Thérèse Dubois",
        quotient_tier="B",
        meal_price_cents=285,
        children={
            "enf-4521-1": CanteenChild(
                "enf-4521-1",
                "Chloé",
                "École élémentaire Albert-Thomas",
                "CM1",
                frozenset({0, 1, 3, 4}),
            ),
            "enf-4521-2": CanteenChild(
                "enf-4521-2",
                "Hugo",
                "École maternelle Albert-Thomas",
                "Grande section",
                frozenset({0, 1, 3}),
            ),
        },
        invoices={
            "fac-4521-2611": CanteenInvoice(
                "fac-4521-2611",
                f"Restauration scolaire — {month_label(last_month)}",
                8835,
                issued_on=_days(today, -9),
                due_date=_days(today, 21),
            ),
            "fac-4521-2612": CanteenInvoice(
                "fac-4521-2612",
                f"Accueil périscolaire du matin — {month_label(last_month)}",
                2460,
                issued_on=_days(today, -9),
                due_date=_days(today, 5),
            ),
            "fac-4521-2610": CanteenInvoice(
                "fac-4521-2610",
                f"Restauration scolaire — {month_label(two_months_ago)}",
                9405,
                issued_on=_days(today, -39),
                due_date=_days(today, -9),
                paid_on=_days(today, -30),
            ),
            "fac-4521-2609": CanteenInvoice(
                "fac-4521-2609",
                f"Restauration scolaire — {month_label(three_months_ago)}",
                7980,
                issued_on=_days(today, -69),
                due_date=_days(today, -39),
                paid_on=_days(today, -62),
                pdf_available=False,
            ),
        },
    )
    artagnan = CanteenFamily(
        owner="dartagnan",
        family_id="fam-6630",
        family_number="0066302",
        invoice_code="PT9R2D",
        display_name="Famille d'Artagnan-Lévêque",
        payer_name="Charles d'Artagnan-Lévêque",
        quotient_tier="D",
        meal_price_cents=410,
        children={
            "enf-6630-1": CanteenChild(
                "enf-6630-1",
                "Léa",
                "École élémentaire Paul-Bert",
                "CE2",
                frozenset({0, 1, 3, 4}),
            )
        },
        invoices={
            "fac-6630-2611": CanteenInvoice(
                "fac-6630-2611",
                f"Restauration scolaire — {month_label(last_month)}",
                6560,
                issued_on=_days(today, -9),
                due_date=_days(today, 21),
            )
        },
    )
    families = [dubois, artagnan]
    return CanteenTenant("Restauration scolaire de Bordeaux", {f.family_id: f for f in families})


def _housing_metropole(today: date) -> HousingTenant:
    communes = ["Bordeaux", "Mérignac", "Pessac", "Talence"]

    def application(
        owner: str,
        application_id: str,
        number: str,
        display_name: str,
        filed_offset: int,
        expires_offset: int | None,
        history: list[tuple[int, str]],
        wanted: list[str],
        closed_reason: str = "",
    ) -> HousingApplication:
        return HousingApplication(
            owner=owner,
            application_id=application_id,
            number=number,
            birthdate=birthdate_of(owner),
            display_name=display_name,
            filed_on=_days(today, filed_offset),
            expires_on=None if expires_offset is None else _days(today, expires_offset),
            communes_wanted=wanted,
            history=[(_days(today, offset), label) for offset, label in history],
            closed_reason=closed_reason,
        )

    applications = [
        application(
            "marie-therese",
            "dem-0871",
            "0332511008712",
            "Marie-Thérèse DUBOIS",
            -353,
            12,
            [
                (-353, "Dépôt de la demande au guichet de Mérignac"),
                (-346, "Enregistrement de la demande : numéro unique attribué"),
                (-120, "Mise à jour des pièces justificatives (avis d'imposition)"),
                (-18, "Courrier : votre demande arrive à échéance, pensez à la renouveler"),
            ],
            communes[:3],
        ),
        application(
            "dartagnan",
            "dem-1544",
            "0332602015447",
            "Charles D'ARTAGNAN-LÉVÊQUE",
            -215,
            150,
            [
                (-215, "Dépôt de la demande en ligne"),
                (-210, "Enregistrement de la demande : numéro unique attribué"),
            ],
            ["Pessac", "Talence"],
        ),
        application(
            "amina",
            "dem-0932",
            "0332409009323",
            "Amina BENALI",
            -385,
            -20,
            [
                (-385, "Dépôt de la demande au guichet de Bordeaux"),
                (-380, "Enregistrement de la demande : numéro unique attribué"),
                (-50, "Courrier : votre demande arrive à échéance, pensez à la renouveler"),
                (-20, "Demande expirée faute de renouvellement"),
            ],
            ["Bordeaux"],
        ),
        application(
            "lucas",
            "dem-0415",
            "0332403004151",
            "Lucas ROUSSEAU",
            -600,
            130,
            [
                (-600, "Dépôt de la demande en ligne"),
                (-596, "Enregistrement de la demande : numéro unique attribué"),
                (-240, "Renouvellement de la demande"),
                (-75, "Passage en commission d'attribution : logement proposé"),
                (-61, "Bail signé : demande satisfaite"),
            ],
            ["Bordeaux", "Mérignac"],
            closed_reason=(
                f"Demande satisfaite : logement attribué à Bordeaux, bail signé le "
                f"{french_date(_days(today, -61))}."
            ),
        ),
        application(
            "eloise",
            "dem-2290",
            "0332611022904",
            "Éloïse NGUYEN",
            -3,
            None,
            [(-3, "Dépôt de la demande en ligne : en attente d'enregistrement")],
            ["Talence", "Pessac"],
        ),
    ]
    return HousingTenant(
        "Demande de logement social — Gironde", {a.application_id: a for a in applications}
    )
