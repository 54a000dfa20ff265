"""Test identities offered by the sandbox identity provider.

Each record mirrors what FranceConnect v2 sends for a real person, and each one exists to
exercise a case the portal must handle correctly (compound given names, apostrophes and
accents, people born abroad, unknown birth day, usage name...). Keys are stable so that
automated tests and demo scripts can pick an identity by name.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

BirthdatePrecision = Literal["day", "month", "year"]

_MONTHS_FR = (
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


@dataclass(frozen=True)
class SandboxIdentity:
    """A fictitious person, with the claims exactly as FranceConnect would format them.

    ``birthdate_precision`` records what the civil registry really knows: FranceConnect
    sends "01" for an unknown day or month, so the claim alone cannot tell the portal.
    """

    key: str
    given_name: str
    family_name: str
    preferred_username: str
    gender: Literal["female", "male"]
    birthdate: str
    birthplace: str
    birthcountry: str
    email: str
    birthplace_label: str
    test_case: str
    birthdate_precision: BirthdatePrecision = "day"

    @property
    def given_name_array(self) -> list[str]:
        """Given names as a list, as FranceConnect also sends them (``given_name_array``)."""
        return self.given_name.split(" ")

    @property
    def display_name(self) -> str:
        """Name used on the chooser: usage name when there is one, as people introduce
        themselves."""
        return f"{self.given_name} {self.preferred_username or self.family_name}"

    @property
    def gender_label(self) -> str:
        """French label for the chooser page."""
        return "Femme" if self.gender == "female" else "Homme"

    @property
    def birthdate_label(self) -> str:
        """Human-readable French birth date that makes an unknown day or month explicit."""
        year, month, day = self.birthdate.split("-")
        month_name = _MONTHS_FR[int(month) - 1]
        if self.birthdate_precision == "year":
            return f"{year} (jour et mois inconnus)"
        if self.birthdate_precision == "month":
            return f"{month_name} {year} (jour inconnu)"
        day_label = "1er" if day == "01" else str(int(day))
        return f"{day_label} {month_name} {year}"

    def claims(self) -> dict[str, str | list[str]]:
        """All identity claims this person can release, before scope filtering."""
        return {
            "given_name": self.given_name,
            "given_name_array": self.given_name_array,
            "family_name": self.family_name,
            "birthdate": self.birthdate,
            "gender": self.gender,
            "birthplace": self.birthplace,
            "birthcountry": self.birthcountry,
            "email": self.email,
            "preferred_username": self.preferred_username,
        }

    def pairwise_sub(self, client_id: str) -> str:
        """Subject identifier for one client.

        FranceConnect gives each service provider a different, stable ``sub`` of 66
        characters (SHA-256 hex plus "v1"); reproducing the shape catches portals that
        assume a shorter column or a global identifier.
        """
        return pairwise_sub(client_id, self.key)


def pairwise_sub(client_id: str, identity_key: str) -> str:
    """Pairwise subject for ``identity_key`` as seen by ``client_id``."""
    digest = hashlib.sha256(f"{client_id}:{identity_key}".encode()).hexdigest()
    return digest + "v1"


IDENTITIES: tuple[SandboxIdentity, ...] = (
    SandboxIdentity(
        key="marie-therese",
        given_name="Marie-Thérèse Anne",
        family_name="MARTIN",
        preferred_username="DUBOIS",
        gender="female",
        birthdate="1962-08-24",
        birthplace="75107",
        birthcountry="99100",
        email="marie-therese.dubois@example.org",
        birthplace_label="Paris 7e arrondissement (75107), France",
        test_case="Prénoms composés ; nom d'usage (DUBOIS) différent du nom de naissance.",
    ),
    SandboxIdentity(
        key="dartagnan",
        given_name="Charles Ogier",
        family_name="D'ARTAGNAN-LÉVÊQUE",
        preferred_username="",
        gender="male",
        birthdate="1985-03-15",
        birthplace="64445",
        birthcountry="99100",
        email="charles.dartagnan-leveque@example.org",
        birthplace_label="Pau (64445), France",
        test_case="Apostrophe, trait d'union et lettres accentuées dans le nom de famille.",
    ),
    SandboxIdentity(
        key="amina",
        given_name="Amina",
        family_name="BENALI",
        preferred_username="",
        gender="female",
        birthdate="1990-11-02",
        birthplace="",
        birthcountry="99350",
        email="amina.benali@example.org",
        birthplace_label="Née à l'étranger : Maroc (pays 99350), commune non transmise",
        test_case="Personne née à l'étranger : le lieu de naissance est une chaîne vide.",
    ),
    SandboxIdentity(
        key="lucas",
        given_name="Lucas Pierre",
        family_name="ROUSSEAU",
        preferred_username="",
        gender="male",
        birthdate="1978-06-01",
        birthplace="69123",
        birthcountry="99100",
        email="lucas.rousseau@example.org",
        birthplace_label="Lyon (69123), France",
        test_case="Jour de naissance inconnu : la date est transmise au 1er du mois.",
        birthdate_precision="month",
    ),
    SandboxIdentity(
        key="paul-antoine",
        given_name="Paul-Antoine",
        family_name="CASANOVA",
        preferred_username="",
        gender="male",
        birthdate="1969-12-31",
        birthplace="2A004",
        birthcountry="99100",
        email="paul-antoine.casanova@example.org",
        birthplace_label="Ajaccio (2A004), France",
        test_case="Né en Corse : code INSEE de la commune avec une lettre (2A004).",
    ),
    SandboxIdentity(
        key="eloise",
        given_name="Éloïse",
        family_name="NGUYEN",
        preferred_username="",
        gender="female",
        birthdate="2004-02-29",
        birthplace="97411",
        birthcountry="99100",
        email="eloise.nguyen@example.org",
        birthplace_label="Saint-Denis, La Réunion (97411), France",
        test_case="Prénom accentué ; née un 29 février, dans un département d'outre-mer.",
    ),
    SandboxIdentity(
        key="jean-baptiste",
        given_name="Jean-Baptiste Marie Joseph Xavier",
        family_name="DE LA TOUR D'AUVERGNE-LAURAGUAIS",
        preferred_username="LAURAGUAIS",
        gender="male",
        birthdate="1951-01-01",
        birthplace="63113",
        birthcountry="99100",
        email="jean-baptiste.lauraguais@example.org",
        birthplace_label="Clermont-Ferrand (63113), France",
        test_case="Noms très longs avec espaces ; jour et mois de naissance inconnus.",
        birthdate_precision="year",
    ),
)

IDENTITIES_BY_KEY: dict[str, SandboxIdentity] = {identity.key: identity for identity in IDENTITIES}


def get_identity(key: str) -> SandboxIdentity | None:
    """Look an identity up by its stable key."""
    return IDENTITIES_BY_KEY.get(key)
