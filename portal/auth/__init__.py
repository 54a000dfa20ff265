"""FranceConnect sign-in and sign-out."""

from flask import Blueprint, current_app

from portal.auth.oidc import FranceConnectClient
from portal.config import Settings

bp = Blueprint("auth", __name__, url_prefix="/auth")


def make_fc_client(settings: Settings) -> FranceConnectClient:
    return FranceConnectClient(
        issuer=settings.fc_issuer,
        client_id=settings.fc_client_id,
        client_secret=settings.fc_client_secret,
        scopes=settings.scopes,
        redirect_uri=settings.redirect_uri,
        timeout_s=settings.fc_timeout_s,
        leeway_s=settings.jwt_leeway_s,
        allow_hs256=settings.fc_allow_hs256,
    )


def fc_client() -> FranceConnectClient:
    client = current_app.extensions.get("franceconnect")
    if client is None:
        client = make_fc_client(current_app.extensions["portal_settings"])
        current_app.extensions["franceconnect"] = client
    return client


from portal.auth import routes  # noqa: E402,F401  (registers the views on bp)
