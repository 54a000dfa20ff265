"""Test agents offered by the sandbox's ProConnect look-alike.

Each one stands for a case the portal must handle: an agent whose identity provider did
a second factor (``eidas1-mfa``, ``eidas2``), and one who signed in with a password alone
(``eidas1``), whom a portal requiring multi-factor authentication must refuse. Keys are
stable so that tests and demos can pick an agent by name. E-mails use the domain the real
integration environment reserves for test identities.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

#: The sandbox's one identity provider behind the federation (a fictitious id).
SANDBOX_IDP_ID = "fia1v2-bac-a-sable"


@dataclass(frozen=True)
class SandboxAgent:
    """A fictitious public agent, with the claims as ProConnect formats them."""

    key: str
    given_name: str
    usual_name: str
    email: str
    uid: str
    siret: str
    organization_label: str
    roles: tuple[str, ...]
    acr: str
    amr: tuple[str, ...]
    test_case: str
    idp_id: str = SANDBOX_IDP_ID

    @property
    def display_name(self) -> str:
        return f"{self.given_name} {self.usual_name}"

    def claims(self) -> dict[str, str | list[str]]:
        """Every claim this agent can release, before scope filtering."""
        return {
            "given_name": self.given_name,
            "usual_name": self.usual_name,
            "email": self.email,
            "uid": self.uid,
            "siret": self.siret,
            "idp_id": self.idp_id,
            "organization_label": self.organization_label,
            "roles": list(self.roles),
        }


AGENTS: tuple[SandboxAgent, ...] = (
    SandboxAgent(
        key="claire",
        given_name="Claire Anne",
        usual_name="DUBOIS",
        email="claire.dubois@test.proconnect.gouv.fr",
        uid="uid-claire-0001",
        siret="21330063500017",
        organization_label="Métropole de démonstration",
        roles=("agent_public", "agent_public_territorial"),
        acr="eidas1-mfa",
        amr=("pwd", "mail"),
        test_case="Mot de passe et code reçu par courriel : double authentification (eidas1-mfa).",
    ),
    SandboxAgent(
        key="karim",
        given_name="Karim",
        usual_name="BENALI",
        email="karim.benali@test.proconnect.gouv.fr",
        uid="uid-karim-0002",
        siret="21330281300016",
        organization_label="Mairie de démonstration de Mérignac",
        roles=("agent_public", "agent_public_territorial"),
        acr="eidas2",
        amr=("pwd", "otp"),
        test_case="Mot de passe et application d'authentification : eidas2.",
    ),
    SandboxAgent(
        key="sophie",
        given_name="Sophie",
        usual_name="LEROY",
        email="sophie.leroy@test.proconnect.gouv.fr",
        uid="uid-sophie-0003",
        siret="21330522000015",
        organization_label="Centre communal d'action sociale de démonstration",
        roles=("agent_public",),
        acr="eidas1",
        amr=("pwd",),
        test_case="Mot de passe seul, sans second facteur (eidas1) : un service qui exige "
        "la double authentification doit refuser cet agent.",
    ),
)

AGENTS_BY_KEY: dict[str, SandboxAgent] = {agent.key: agent for agent in AGENTS}


def get_agent(key: str) -> SandboxAgent | None:
    return AGENTS_BY_KEY.get(key)


def agent_sub(client_id: str, agent_key: str) -> str:
    """``sub`` specific to one service: the same agent is someone else to another client."""
    return hashlib.sha256(f"proconnect:{client_id}:{agent_key}".encode()).hexdigest()
