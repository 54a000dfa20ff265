"""FranceConnect v2-shaped OpenID Connect endpoints, all under ``/api/v2``.

The sandbox follows the FranceConnect rules that a portal tends to get wrong (nonce of at
least 22 characters, ``acr_values=eidas1``, ``iss`` on the callback, signed userinfo,
pairwise ``sub``, ``id_token_hint`` at logout) so that what works here works against the
real service.
"""

from __future__ import annotations

import hmac
import json
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import (
    Blueprint,
    Response,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
)

from sandbox.idp.clients import Client, load_clients, uri_matches
from sandbox.idp.identities import IDENTITIES, get_identity, pairwise_sub
from sandbox.idp.state import AuthorizationRequest, CodeGrant, IdpState
from sandbox.idp.tokens import (
    SUPPORTED_SCOPES,
    build_id_token,
    build_userinfo,
    sign,
    verify_own_token,
)

bp = Blueprint("idp", __name__, url_prefix="/api/v2")

ACCEPTED_ACR = "eidas1"
MIN_NONCE_LENGTH = 22
CLAIMS_SUPPORTED = (
    "sub",
    "given_name",
    "given_name_array",
    "family_name",
    "birthdate",
    "gender",
    "birthplace",
    "birthcountry",
    "email",
    "preferred_username",
    "amr",
)
TOKEN_STATUS_ERRORS = {
    400: "invalid_request",
    401: "invalid_client",
    403: "access_denied",
    503: "temporarily_unavailable",
}


# -- helpers ---------------------------------------------------------------------------


def idp_state() -> IdpState:
    """The identity provider state of the current app."""
    return current_app.extensions["sandbox_idp"]


def issuer() -> str:
    """Configured issuer, or one derived from the request so any port works in tests."""
    configured = current_app.config.get("SANDBOX_ISSUER")
    if configured:
        return str(configured).rstrip("/")
    return request.url_root.rstrip("/") + "/api/v2"


def clients() -> dict[str, Client]:
    """Registered clients, read from the configuration on each request."""
    return load_clients(current_app.config["SANDBOX_CLIENTS"])


def loopback_any_port() -> bool:
    """Whether the RFC 8252 loopback port rule is on."""
    return bool(current_app.config.get("SANDBOX_LOOPBACK_ANY_PORT", True))


def add_query(url: str, params: dict[str, str]) -> str:
    """``url`` with ``params`` appended to whatever query it already has."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def html_error(title: str, message: str, status: int = 400) -> tuple[str, int]:
    """The error page shown when we must not redirect (unknown client, bad URI...)."""
    return render_template("idp/error.html", title=title, message=message), status


def authorization_redirect(redirect_uri: str, params: dict[str, str]) -> Response:
    """Redirect back to the client, adding ``iss`` (RFC 9207) unless a test says otherwise."""
    callback_iss = idp_state().behaviour_snapshot()["callback_iss"]
    if callback_iss is None:
        params = {**params, "iss": issuer()}
    elif callback_iss != "omit":
        params = {**params, "iss": callback_iss}
    return redirect(add_query(redirect_uri, params), code=302)


def authorization_error(
    redirect_uri: str, error: str, description: str, state: str | None
) -> Response:
    """An OAuth error sent to the client's callback."""
    params = {"error": error, "error_description": description}
    if state:
        params["state"] = state
    return authorization_redirect(redirect_uri, params)


def oauth_json_error(error: str, description: str, status: int) -> Response:
    """RFC 6749 §5.2 JSON error (descriptions stay ASCII, as the RFC requires)."""
    response = jsonify(error=error, error_description=description)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def redeem_token_request(
    state: IdpState, registered: dict[str, Client]
) -> tuple[Client, CodeGrant] | Response:
    """A token request checked as both sandbox providers check it: the client's
    ``client_secret_post`` authentication, the grant type, and the code, once, for this
    client and this ``redirect_uri``. The client and its grant, or the JSON error."""
    form = request.form
    client = registered.get(form.get("client_id", ""))
    secret = form.get("client_secret", "")
    if client is None or not hmac.compare_digest(secret.encode(), client.secret.encode()):
        return oauth_json_error("invalid_client", "Client authentication failed.", 401)
    grant_type = form.get("grant_type")
    if not grant_type:
        return oauth_json_error("invalid_request", "The grant_type parameter is missing.", 400)
    if grant_type != "authorization_code":
        return oauth_json_error(
            "unsupported_grant_type", "Only grant_type=authorization_code is supported.", 400
        )
    code = form.get("code")
    redirect_uri = form.get("redirect_uri")
    if not code or not redirect_uri:
        return oauth_json_error(
            "invalid_request", "The code and redirect_uri parameters are required.", 400
        )
    grant, reason = state.redeem_code(code)
    if grant is None:
        return oauth_json_error("invalid_grant", f"Code rejected: {reason}.", 400)
    if grant.request.client_id != client.client_id:
        return oauth_json_error("invalid_grant", "This code was issued to another client.", 400)
    if grant.request.redirect_uri != redirect_uri:
        return oauth_json_error(
            "invalid_grant", "redirect_uri differs from the authorization request.", 400
        )
    return client, grant


def token_response(access_token: str, id_token: str, grant: CodeGrant) -> Response:
    """The token endpoint's answer (RFC 6749 §5.1), never cached."""
    response = jsonify(
        access_token=access_token,
        token_type="Bearer",
        expires_in=60,
        id_token=id_token,
        scope=" ".join(grant.request.scopes),
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def bearer_error(error: str | None, description: str) -> Response:
    """RFC 6750 error on userinfo: 401 with a ``WWW-Authenticate`` challenge."""
    response = jsonify(error=error or "invalid_request", error_description=description)
    response.status_code = 401
    response.headers["WWW-Authenticate"] = f'Bearer error="{error}"' if error else "Bearer"
    return response


# -- discovery and keys ----------------------------------------------------------------


@bp.get("/.well-known/openid-configuration")
def discovery() -> Response:
    """OpenID Provider metadata, shaped like FranceConnect's."""
    base = issuer()
    return jsonify(
        {
            "issuer": base,
            "authorization_endpoint": f"{base}/authorize",
            "token_endpoint": f"{base}/token",
            "userinfo_endpoint": f"{base}/userinfo",
            "jwks_uri": f"{base}/jwks",
            "end_session_endpoint": f"{base}/session/end",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "scopes_supported": list(SUPPORTED_SCOPES),
            "claims_supported": list(CLAIMS_SUPPORTED),
            "claims_parameter_supported": True,
            "acr_values_supported": [ACCEPTED_ACR],
            "prompt_values_supported": ["login", "consent"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["ES256", "RS256"],
            "userinfo_signing_alg_values_supported": ["ES256", "RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post"],
            "authorization_response_iss_parameter_supported": True,
            "ui_locales_supported": ["fr"],
        }
    )


@bp.get("/jwks")
def jwks() -> Response:
    """Public signing key(s)."""
    with idp_state().lock:
        document = idp_state().keys.public_jwks()
    return jsonify(document)


# -- authorization ---------------------------------------------------------------------


def _parse_scopes(raw: str) -> list[str]:
    scopes: list[str] = []
    for scope in raw.split():
        if scope not in scopes:
            scopes.append(scope)
    return scopes


def _amr_requested(raw_claims: str) -> bool:
    """Whether the ``claims`` parameter asks for ``amr`` in the ID token.

    Raises ValueError when the parameter is not a JSON object.
    """
    if not raw_claims:
        return False
    parsed = json.loads(raw_claims)
    if not isinstance(parsed, dict):
        raise ValueError("claims must be a JSON object")
    id_token = parsed.get("id_token")
    return isinstance(id_token, dict) and "amr" in id_token


@bp.route("/authorize", methods=["GET", "POST"])
def authorize() -> Response | tuple[str, int]:
    """Validate the request, then show the identity chooser.

    Client and redirect URI problems get an HTML page, never a redirect: redirecting to an
    unverified URI would make the sandbox an open redirector.
    """
    params = request.form if request.method == "POST" else request.args
    client_id = params.get("client_id", "")
    redirect_uri = params.get("redirect_uri", "")
    client = clients().get(client_id)
    if client is None:
        return html_error(
            "Fournisseur de service inconnu",
            "Le paramètre client_id ne correspond à aucun fournisseur de service enregistré "
            "dans le bac à sable.",
        )
    if not redirect_uri or not uri_matches(redirect_uri, client.redirect_uris, loopback_any_port()):
        return html_error(
            "Adresse de retour non autorisée",
            "Le paramètre redirect_uri ne correspond à aucune adresse de retour enregistrée "
            "pour ce fournisseur de service.",
        )

    state = params.get("state", "")

    def fail(error: str, description: str) -> Response:
        return authorization_error(redirect_uri, error, description, state)

    if params.get("response_type") != "code":
        return fail("unsupported_response_type", "Only response_type=code is supported.")
    if not state:
        return fail("invalid_request", "The state parameter is required.")
    scopes = _parse_scopes(params.get("scope", ""))
    if "openid" not in scopes:
        return fail("invalid_scope", "The openid scope is required.")
    unknown = [scope for scope in scopes if scope not in SUPPORTED_SCOPES]
    if unknown:
        return fail("invalid_scope", f"Unknown scope(s): {' '.join(unknown)}.")
    nonce = params.get("nonce", "")
    if len(nonce) < MIN_NONCE_LENGTH:
        return fail(
            "invalid_request",
            f"The nonce parameter is required and must be at least {MIN_NONCE_LENGTH} "
            "characters long.",
        )
    if params.get("acr_values") != ACCEPTED_ACR:
        return fail("invalid_request", f"acr_values must be {ACCEPTED_ACR}.")
    try:
        amr_requested = _amr_requested(params.get("claims", ""))
    except ValueError:
        return fail("invalid_request", "The claims parameter must be a JSON object.")

    auth_request = AuthorizationRequest(
        client_id=client_id,
        redirect_uri=redirect_uri,
        scopes=tuple(scopes),
        state=state,
        nonce=nonce,
        acr=ACCEPTED_ACR,
        amr_requested=amr_requested,
    )
    transaction_id = idp_state().start_transaction(auth_request)
    # Imported here: the back-ends' data imports the identities from this package.
    from sandbox.backends.demo import DEMO_ACCOUNTS
    from sandbox.backends.state import TENANT_LABELS

    response = Response(
        render_template(
            "idp/chooser.html",
            identities=IDENTITIES,
            demo_accounts=DEMO_ACCOUNTS,
            tenant_labels=TENANT_LABELS,
            transaction_id=transaction_id,
            client_id=client_id,
        )
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/authorize/decision")
def authorize_decision() -> Response | tuple[str, int]:
    """The user picked an identity (or cancelled): send them back to the client."""
    auth_request = idp_state().finish_transaction(request.form.get("transaction_id", ""))
    if auth_request is None:
        return html_error(
            "Demande expirée",
            "Cette demande de connexion est inconnue, a déjà été traitée ou a expiré. "
            "Retournez sur le service et recommencez la connexion.",
        )
    if request.form.get("cancel"):
        return authorization_error(
            auth_request.redirect_uri,
            "access_denied",
            "The user cancelled the sign-in.",
            auth_request.state,
        )
    identity = get_identity(request.form.get("identity", ""))
    if identity is None:
        return html_error("Identité inconnue", "L'identité de test choisie n'existe pas.")

    behaviour = idp_state().behaviour_snapshot()
    ttl = behaviour["code_ttl_s"]
    if ttl is None:
        ttl = float(current_app.config["SANDBOX_CODE_TTL_S"])
    code = idp_state().issue_code(auth_request, identity.key, ttl, int(time.time()))
    return authorization_redirect(
        auth_request.redirect_uri, {"code": code, "state": auth_request.state}
    )


# -- token -----------------------------------------------------------------------------


@bp.post("/token")
def token() -> Response:
    """Exchange a code for tokens (``client_secret_post`` only)."""
    state = idp_state()
    behaviour = state.behaviour_snapshot()
    forced_status = behaviour["token_status"]
    if forced_status is not None:
        error = TOKEN_STATUS_ERRORS.get(
            forced_status, "server_error" if forced_status >= 500 else "invalid_request"
        )
        return oauth_json_error(
            error, f"Error simulated by the sandbox (status {forced_status}).", forced_status
        )

    redeemed = redeem_token_request(state, clients())
    if isinstance(redeemed, Response):
        return redeemed
    client, grant = redeemed
    access_token = state.issue_access_token(grant)
    with state.lock:
        key = state.keys.active
    id_token = build_id_token(
        issuer=issuer(),
        client_id=client.client_id,
        client_secret=client.secret,
        sub=pairwise_sub(client.client_id, grant.identity_key),
        nonce=grant.request.nonce,
        acr=grant.request.acr,
        auth_time=grant.auth_time,
        access_token=access_token,
        amr_requested=grant.request.amr_requested,
        key=key,
        behaviour=behaviour,
    )
    return token_response(access_token, id_token, grant)


# -- userinfo --------------------------------------------------------------------------


@bp.route("/userinfo", methods=["GET", "POST"])
def userinfo() -> Response:
    """Identity claims for a bearer token, as a signed JWT by default (FranceConnect v2)."""
    state = idp_state()
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return bearer_error(None, "Missing access token.")
    access = state.lookup_access_token(value.strip())
    if access is None:
        return bearer_error("invalid_token", "Unknown or expired access token.")
    identity = get_identity(access.identity_key)
    if identity is None:  # pragma: no cover - identities are static
        return bearer_error("invalid_token", "Unknown identity.")

    behaviour = state.behaviour_snapshot()
    forced_status = behaviour["userinfo_status"]
    if forced_status is not None:
        response = jsonify(
            error="server_error" if forced_status >= 500 else "invalid_request",
            error_description=f"Error simulated by the sandbox (status {forced_status}).",
        )
        response.status_code = forced_status
        return response

    claims = build_userinfo(
        issuer=issuer(),
        client_id=access.client_id,
        sub=behaviour["userinfo_sub"] or pairwise_sub(access.client_id, identity.key),
        identity=identity,
        scopes=access.scopes,
    )
    if behaviour["userinfo_format"] == "json":
        return jsonify(claims)
    with state.lock:
        key = state.keys.active
    response = Response(sign(claims, key), mimetype="application/jwt")
    response.headers["Cache-Control"] = "no-store"
    return response


# -- logout ----------------------------------------------------------------------------


@bp.get("/session/end")
def end_session() -> Response | tuple[str, int]:
    """RP-initiated logout: check the hint and the return address, then go back."""
    id_token_hint = request.args.get("id_token_hint", "")
    state_param = request.args.get("state", "")
    post_logout_redirect_uri = request.args.get("post_logout_redirect_uri", "")
    if not id_token_hint or not state_param or not post_logout_redirect_uri:
        return html_error(
            "Déconnexion impossible",
            "Les paramètres id_token_hint, state et post_logout_redirect_uri sont obligatoires.",
        )
    with idp_state().lock:
        keys = idp_state().keys.verification_keys()
    claims = verify_own_token(id_token_hint, keys)
    client = _client_from_audience(claims.get("aud") if claims else None)
    if claims is None or client is None:
        return html_error(
            "Déconnexion impossible",
            "Le paramètre id_token_hint n'est pas un jeton d'identité émis par le bac à sable "
            "pour un fournisseur de service enregistré.",
        )
    if not uri_matches(
        post_logout_redirect_uri, client.post_logout_redirect_uris, loopback_any_port()
    ):
        return html_error(
            "Déconnexion impossible",
            "Le paramètre post_logout_redirect_uri ne correspond à aucune adresse de retour "
            "après déconnexion enregistrée pour ce fournisseur de service.",
        )
    return redirect(add_query(post_logout_redirect_uri, {"state": state_param}), code=302)


def _client_from_audience(aud: Any) -> Client | None:
    if isinstance(aud, list) and len(aud) == 1:
        aud = aud[0]
    if not isinstance(aud, str):
        return None
    return clients().get(aud)
