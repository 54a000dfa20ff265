"""The agents' area: public agents (advisers, service owners) sign in with ProConnect.

A second OpenID client, separate from the residents' FranceConnect one, with its own
settings (``PORTAL_AGENT_*``), its own session table and its own cookie: an agent's
session and a resident's never mix, even in the same browser.
"""

from flask import Blueprint, current_app

from portal.auth.oidc import ProConnectClient
from portal.config import Settings

bp = Blueprint("agents", __name__, url_prefix="/agents")

#: The scopes of every claim the agents' area uses (ProConnect: one scope per claim).
AGENT_SCOPES = [
    "openid",
    "given_name",
    "usual_name",
    "email",
    "uid",
    "siret",
    "idp_id",
    "organization_label",
    "roles",
]


def make_pc_client(settings: Settings) -> ProConnectClient:
    return ProConnectClient(
        issuer=settings.agent_issuer,
        client_id=settings.agent_client_id,
        client_secret=settings.agent_client_secret,
        scopes=AGENT_SCOPES,
        redirect_uri=settings.agent_redirect_uri,
        timeout_s=settings.fc_timeout_s,
        leeway_s=settings.jwt_leeway_s,
        acr_values=settings.agent_acr_list,
    )


def pc_client() -> ProConnectClient:
    client = current_app.extensions.get("proconnect")
    if client is None:
        client = make_pc_client(current_app.extensions["portal_settings"])
        current_app.extensions["proconnect"] = client
    return client


from portal.agents import desks, routes  # noqa: E402,F401  (registers the views on bp)
from portal.mandates import assisted, desk, visit  # noqa: E402,F401  (the desks' mandate views)
