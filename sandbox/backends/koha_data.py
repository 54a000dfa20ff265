"""Records of the sandbox's Koha library (Bordeaux), built relative to *today*."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sandbox.backends.records import birthdate_of, days_from, local_datetime

#: Koha's ``FailedLoginAttempts`` system preference, as the sandbox Koha sets it.
KOHA_FAILED_LOGIN_ATTEMPTS = 5

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


def build_koha(today: date) -> dict[str, KohaTenant]:
    return {"bordeaux": _koha_bordeaux(today)}


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
        due = local_datetime(days_from(today, due_offset), 23, 59)
        return KohaCheckout(
            checkout_id=checkout_id,
            patron_id=patron_id,
            item_id=item_id,
            library_id=items_by_id[item_id].home_library_id,
            checkout_date=local_datetime(days_from(today, due_offset - 28), 15, 12),
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
            expiry_date=days_from(today, 300),
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
            expiry_date=days_from(today, 90),
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
            expiry_date=days_from(today, 30),
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
            hold_date=days_from(today, -12),
            priority=0,
            status="W",
            waiting_date=days_from(today, -2),
            expiration_date=days_from(today, 6),
        ),
        KohaHold(
            hold_id=702,
            patron_id=51,
            biblio_id=108,
            pickup_library_id="BASTIDE",
            hold_date=days_from(today, -5),
            priority=2,
        ),
        KohaHold(
            hold_id=703,
            patron_id=77,
            biblio_id=104,
            item_id=5004,
            pickup_library_id="BASTIDE",
            hold_date=days_from(today, -8),
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
            date=local_datetime(days_from(today, -40), 10, 5),
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
            date=local_datetime(days_from(today, -9), 16, 40),
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
