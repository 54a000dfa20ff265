"""Which sandbox accounts belong to which test identity, with the proofs that link them.

Other code (demo scripts, seeding, the portal's tests, a demo page) reads
``DEMO_ACCOUNTS`` to pre-link accounts or to show a visitor what to type in a
proof-of-ownership form. It is derived from the data set itself, so it can never drift
from what the back-ends accept; identifiers and proofs do not depend on the day.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Literal, NamedTuple

from sandbox.backends.data import Dataset, build_dataset, sandbox_today
from sandbox.idp.identities import IDENTITIES

Kind = Literal["library", "koha", "canteen", "housing", "water"]


class DemoAccount(NamedTuple):
    """One account in one sandbox tenant.

    ``kind`` is the sandbox back-end (``koha`` is a library too, reached through Koha's own
    API); ``external_id`` is what the portal keeps as the link once the proof is accepted;
    ``proof`` holds the fields of the back-end's verify call, named as in its API.
    """

    kind: Kind
    tenant: str
    external_id: str
    proof: dict[str, str]


#: Base path of each tenant in the sandbox, to build a connector's ``base_url``.
TENANT_PATHS: dict[tuple[Kind, str], str] = {
    ("library", "merignac"): "/library/merignac",
    ("library", "pessac"): "/library/pessac",
    ("koha", "bordeaux"): "/koha/bordeaux",
    ("canteen", "bordeaux"): "/canteen/bordeaux",
    ("housing", "metropole"): "/housing/metropole",
    ("water", "bordeaux"): "/water/bordeaux",
    ("water", "pessac"): "/water/pessac",
}


def demo_accounts(dataset: Dataset) -> dict[str, list[DemoAccount]]:
    """Every account of ``dataset``, grouped by the identity key of its owner."""
    accounts: dict[str, list[DemoAccount]] = {}

    def add(owner: str, account: DemoAccount) -> None:
        accounts.setdefault(owner, []).append(account)

    for tenant, library in sorted(dataset.library.items()):
        for patron in library.patrons.values():
            add(
                patron.owner,
                DemoAccount(
                    "library",
                    tenant,
                    patron.patron_id,
                    {
                        "card_number": patron.card_number,
                        "pin": patron.pin,
                        "birthdate": patron.birthdate,
                    },
                ),
            )
    for tenant, koha in sorted(dataset.koha.items()):
        for koha_patron in koha.patrons.values():
            add(
                koha_patron.owner,
                DemoAccount(
                    "koha",
                    tenant,
                    str(koha_patron.patron_id),
                    {"identifier": koha_patron.cardnumber, "password": koha_patron.password},
                ),
            )
    for tenant, canteen in sorted(dataset.canteen.items()):
        for family in canteen.families.values():
            add(
                family.owner,
                DemoAccount(
                    "canteen",
                    tenant,
                    family.family_id,
                    {"family_number": family.family_number, "invoice_code": family.invoice_code},
                ),
            )
    for tenant, housing in sorted(dataset.housing.items()):
        for application in housing.applications.values():
            add(
                application.owner,
                DemoAccount(
                    "housing",
                    tenant,
                    application.application_id,
                    {"number": application.number, "birthdate": application.birthdate},
                ),
            )
    for tenant, water in sorted(dataset.water.items()):
        for contract in water.contracts.values():
            add(
                contract.owner,
                DemoAccount(
                    "water",
                    tenant,
                    contract.contract_id,
                    {
                        "contract_number": contract.contract_number,
                        "customer_reference": contract.customer_reference,
                    },
                ),
            )
    # In the identity provider's order, so listings read like its chooser page.
    return {
        identity.key: accounts[identity.key] for identity in IDENTITIES if identity.key in accounts
    }


#: identity key -> accounts, read-only.
DEMO_ACCOUNTS: MappingProxyType[str, list[DemoAccount]] = MappingProxyType(
    demo_accounts(build_dataset(sandbox_today()))
)
