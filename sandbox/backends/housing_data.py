"""Records of the sandbox's social-housing application file (Gironde), built relative to
*today*.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sandbox.backends.records import birthdate_of, days_from, french_date

#: Days before expiry from which a housing application can be renewed.
HOUSING_RENEWAL_NOTICE_DAYS = 30

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


def build_housing(today: date) -> dict[str, HousingTenant]:
    return {"metropole": _housing_metropole(today)}


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
            filed_on=days_from(today, filed_offset),
            expires_on=None if expires_offset is None else days_from(today, expires_offset),
            communes_wanted=wanted,
            history=[(days_from(today, offset), label) for offset, label in history],
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
                f"{french_date(days_from(today, -61))}."
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
