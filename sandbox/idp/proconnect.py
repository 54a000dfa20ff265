"""ProConnect-shaped OpenID Connect endpoints, all under ``/proconnect/api/v2``.

It follows the rules of the agents' federation that a relying party tends to get wrong:
any authorize parameter outside the documented list is refused with ``Y000400`` on an
error page (never a redirect), ``state`` and ``nonce`` must be at least 32 characters,
codes live 60 seconds and serve once, userinfo is a signed JWT, ``sub`` differs per
service, and the ID token says how the agent authenticated (``acr``, ``amr``). The
sandbox never adds a second factor itself: the agent without one comes back ``eidas1``,
so a portal's refusal can be tested.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
)

from sandbox.admin import register_reset_hook, require_admin
from sandbox.idp.agents import AGENTS, SandboxAgent, agent_sub, get_agent
from sandbox.idp.clients import Client, load_clients, uri_matches
from sandbox.idp.routes import (
    add_query,
    bearer_error,
    oauth_json_error,
    redeem_token_request,
    token_response,
)
from sandbox.idp.state import AuthorizationRequest, IdpState
from sandbox.idp.tokens import at_hash, sign, tamper, verify_own_token

bp = Blueprint("proconnect", __name__, url_prefix="/proconnect/api/v2")
admin_bp = Blueprint("proconnect_admin", __name__, url_prefix="/_admin/proconnect")
admin_bp.before_request(require_admin)

MIN_STATE_NONCE_LENGTH = 32
#: Every parameter ``/authorize`` knows; anything else is refused with ``Y000400``.
AUTHORIZE_PARAMS = frozenset(
    {
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "nonce",
        "claims",
        "prompt",
        "idp_hint",
        "login_hint",
        "siret_hint",
        "code_challenge",
        "code_challenge_method",
    }
)
#: Each claim is its own scope at ProConnect.
CLAIM_SCOPES = (
    "given_name",
    "usual_name",
    "email",
    "uid",
    "siret",
    "idp_id",
    "organization_label",
    "roles",
)
SUPPORTED_SCOPES = ("openid", *CLAIM_SCOPES)
ACR_SUPPORTED = ("eidas0", "eidas0-mfa", "eidas1", "eidas1-mfa", "eidas2", "eidas3")
#: The ``amr`` that goes with an ``acr`` the tester picks instead of the agent's own.
AMR_FOR_ACR = {
    "eidas0": ("pwd",),
    "eidas0-mfa": ("pwd", "mail"),
    "eidas1": ("pwd",),
    "eidas1-mfa": ("pwd", "mail"),
    "eidas2": ("pwd", "otp"),
    "eidas3": ("pin", "hwk"),
}
ID_TOKEN_TTL_S = 60
USERINFO_TTL_S = 60


def init_app(app: Flask) -> None:
    state = IdpState(str(app.config["SANDBOX_SIGNING_ALG"]))
    app.extensions["sandbox_proconnect"] = state
    register_reset_hook(app, state.reset)
    app.register_blueprint(bp)
    app.register_blueprint(admin_bp)


def pc_state() -> IdpState:
    return current_app.extensions["sandbox_proconnect"]


def issuer() -> str:
    configured = current_app.config.get("SANDBOX_PROCONNECT_ISSUER")
    if configured:
        return str(configured).rstrip("/")
    return request.url_root.rstrip("/") + "/proconnect/api/v2"


def clients() -> dict[str, Client]:
    return load_clients(current_app.config["SANDBOX_PROCONNECT_CLIENTS"])


def loopback_any_port() -> bool:
    return bool(current_app.config.get("SANDBOX_LOOPBACK_ANY_PORT", True))


def grant_key(agent_key: str, acr: str) -> str:
    """What a code stands for: the agent, and the ``acr`` picked for this sign-in."""
    return f"{agent_key}@{acr}" if acr else agent_key


def agent_and_acr(key: str) -> tuple[SandboxAgent | None, str, tuple[str, ...]]:
    agent_key, _, acr = key.partition("@")
    agent = get_agent(agent_key)
    if agent is None:
        return None, "", ()
    if acr in AMR_FOR_ACR:
        return agent, acr, AMR_FOR_ACR[acr]
    return agent, agent.acr, agent.amr


def error_page(code: str, message: str, status: int = 400) -> tuple[str, int]:
    """ProConnect's error page: a code to give the support, and what went wrong."""
    return render_template("idp/proconnect_error.html", code=code, message=message), status


# -- discovery and keys ----------------------------------------------------------------


@bp.get("/.well-known/openid-configuration")
def discovery() -> Response:
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
            "claims_supported": ["sub", *CLAIM_SCOPES, "acr", "amr", "sid", "auth_time"],
            "claims_parameter_supported": True,
            "acr_values_supported": list(ACR_SUPPORTED),
            "prompt_values_supported": ["login", "consent", "select_account", "none"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["ES256", "RS256"],
            "userinfo_signing_alg_values_supported": ["ES256", "RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
        }
    )


@bp.get("/jwks")
def jwks() -> Response:
    with pc_state().lock:
        document = pc_state().keys.public_jwks()
    return jsonify(document)


# -- authorization ---------------------------------------------------------------------


def _requested_claims(raw: str) -> dict[str, Any]:
    """The ``claims`` parameter's ``id_token`` part; ValueError when it is not JSON."""
    if not raw:
        return {}
    parsed = json.loads(raw)
    if not isinstance(parsed, dict):
        raise ValueError("claims must be a JSON object")
    id_token = parsed.get("id_token", {})
    if not isinstance(id_token, dict):
        raise ValueError("claims.id_token must be an object")
    return id_token


@bp.get("/authorize")
def authorize() -> Response | tuple[str, int]:
    """Check every parameter first, as ProConnect does, then show the agent chooser."""
    params = request.args
    unknown = sorted(set(params) - AUTHORIZE_PARAMS)
    duplicated = sorted(name for name in params if len(params.getlist(name)) > 1)
    if unknown or duplicated:
        return error_page(
            "Y000400",
            "La requête d'autorisation contient des paramètres non autorisés : "
            + ", ".join(unknown + duplicated)
            + ".",
        )
    client = clients().get(params.get("client_id", ""))
    if client is None:
        return error_page("Y000400", "Le client_id ne correspond à aucun service enregistré.")
    redirect_uri = params.get("redirect_uri", "")
    if not redirect_uri or not uri_matches(redirect_uri, client.redirect_uris, loopback_any_port()):
        return error_page(
            "Y030031",
            "Le redirect_uri n'est pas enregistré pour ce service (correspondance exacte).",
        )
    state = params.get("state", "")
    nonce = params.get("nonce", "")
    problems = []
    if params.get("response_type") != "code":
        problems.append("response_type doit valoir code")
    if len(state) < MIN_STATE_NONCE_LENGTH:
        problems.append(f"state doit compter au moins {MIN_STATE_NONCE_LENGTH} caractères")
    if len(nonce) < MIN_STATE_NONCE_LENGTH:
        problems.append(f"nonce doit compter au moins {MIN_STATE_NONCE_LENGTH} caractères")
    scopes: list[str] = []
    for scope in params.get("scope", "").split():
        if scope not in scopes:
            scopes.append(scope)
    if "openid" not in scopes:
        problems.append("le scope openid est obligatoire")
    if any(scope not in SUPPORTED_SCOPES for scope in scopes):
        problems.append("scope inconnu")
    try:
        requested = _requested_claims(params.get("claims", ""))
    except ValueError:
        problems.append("claims doit être un objet JSON")
        requested = {}
    if params.get("code_challenge") and params.get("code_challenge_method") != "S256":
        problems.append("code_challenge_method doit valoir S256")
    if problems:
        return error_page("Y000400", "Requête invalide : " + " ; ".join(problems) + ".")

    auth_request = AuthorizationRequest(
        client_id=client.client_id,
        redirect_uri=redirect_uri,
        scopes=tuple(scopes),
        state=state,
        nonce=nonce,
        acr=json.dumps(requested.get("acr")),
        amr_requested="amr" in requested,
    )
    transaction_id = pc_state().start_transaction(auth_request)
    response = Response(
        render_template(
            "idp/proconnect_chooser.html",
            agents=AGENTS,
            acr_values=ACR_SUPPORTED,
            transaction_id=transaction_id,
            client_id=client.client_id,
        )
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/authorize/decision")
def authorize_decision() -> Response | tuple[str, int]:
    auth_request = pc_state().finish_transaction(request.form.get("transaction_id", ""))
    if auth_request is None:
        return error_page(
            "Y030110",
            "Cette demande de connexion est inconnue, a déjà été traitée ou a expiré. "
            "Retournez sur le service et recommencez.",
        )
    if request.form.get("cancel"):
        return redirect(
            add_query(
                auth_request.redirect_uri,
                {
                    "error": "access_denied",
                    "error_description": "The agent cancelled the sign-in.",
                    "state": auth_request.state,
                },
            ),
            code=302,
        )
    agent = get_agent(request.form.get("agent", ""))
    if agent is None:
        return error_page("Y000400", "L'agent de test choisi n'existe pas.")
    acr = request.form.get("acr", "")
    if acr and acr not in AMR_FOR_ACR:
        return error_page("Y000400", "Le niveau d'authentification choisi n'existe pas.")
    ttl = pc_state().behaviour_snapshot()["code_ttl_s"]
    if ttl is None:
        ttl = float(current_app.config["SANDBOX_PROCONNECT_CODE_TTL_S"])
    code = pc_state().issue_code(auth_request, grant_key(agent.key, acr), ttl, int(time.time()))
    return redirect(
        add_query(auth_request.redirect_uri, {"code": code, "state": auth_request.state}),
        code=302,
    )


# -- token -----------------------------------------------------------------------------


@bp.post("/token")
def token() -> Response:
    state = pc_state()
    behaviour = state.behaviour_snapshot()
    redeemed = redeem_token_request(state, clients())
    if isinstance(redeemed, Response):
        return redeemed
    client, grant = redeemed
    agent, acr, amr = agent_and_acr(grant.identity_key)
    if agent is None:  # pragma: no cover - agents are static
        return oauth_json_error("invalid_grant", "Unknown agent.", 400)
    access_token = state.issue_access_token(grant)
    iat = int(time.time()) + behaviour["id_token_exp_offset"]
    claims: dict[str, Any] = {
        "iss": behaviour["id_token_iss"] or issuer(),
        "sub": agent_sub(client.client_id, agent.key),
        "aud": behaviour["id_token_aud"] or client.client_id,
        "exp": iat + ID_TOKEN_TTL_S,
        "iat": iat,
        "auth_time": grant.auth_time,
        "nonce": behaviour["id_token_nonce"] or grant.request.nonce,
        "acr": behaviour["id_token_acr"] or acr,
        "amr": list(amr),
        "sid": secrets.token_urlsafe(16),
        "at_hash": at_hash(access_token),
    }
    with state.lock:
        key = state.keys.active
    id_token = sign(claims, key)
    if behaviour["tamper_signature"]:
        id_token = tamper(id_token)
    return token_response(access_token, id_token, grant)


# -- userinfo --------------------------------------------------------------------------


@bp.route("/userinfo", methods=["GET", "POST"])
def userinfo() -> Response:
    """The agent's claims, always as a signed JWT (``application/jwt``)."""
    state = pc_state()
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return bearer_error(None, "Missing access token.")
    access = state.lookup_access_token(value.strip())
    agent = agent_and_acr(access.identity_key)[0] if access is not None else None
    if access is None or agent is None:
        return bearer_error("invalid_token", "Unknown or expired access token.")
    behaviour = state.behaviour_snapshot()
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer(),
        "aud": access.client_id,
        "sub": behaviour["userinfo_sub"] or agent_sub(access.client_id, agent.key),
        "iat": now,
        "exp": now + USERINFO_TTL_S,
        **{name: value for name, value in agent.claims().items() if name in access.scopes},
    }
    with state.lock:
        key = state.keys.active
    response = Response(sign(claims, key), mimetype="application/jwt")
    response.headers["Cache-Control"] = "no-store"
    return response


# -- logout ----------------------------------------------------------------------------


@bp.get("/session/end")
def end_session() -> Response | tuple[str, int]:
    id_token_hint = request.args.get("id_token_hint", "")
    state_param = request.args.get("state", "")
    post_logout = request.args.get("post_logout_redirect_uri", "")
    if not id_token_hint or not state_param or not post_logout:
        return error_page(
            "Y000400",
            "Les paramètres id_token_hint, state et post_logout_redirect_uri sont obligatoires.",
        )
    with pc_state().lock:
        keys = pc_state().keys.verification_keys()
    claims = verify_own_token(id_token_hint, keys)
    aud = claims.get("aud") if claims else None
    if isinstance(aud, list) and len(aud) == 1:
        aud = aud[0]
    client = clients().get(aud) if isinstance(aud, str) else None
    if client is None:
        return error_page("Y000400", "Le id_token_hint n'a pas été émis par ce bac à sable.")
    if not uri_matches(post_logout, client.post_logout_redirect_uris, loopback_any_port()):
        return error_page(
            "Y030111",
            "Le post_logout_redirect_uri n'est pas enregistré pour ce service "
            "(correspondance exacte).",
        )
    return redirect(add_query(post_logout, {"state": state_param}), code=302)


# -- test controls ---------------------------------------------------------------------


@admin_bp.post("/behaviour")
def update_behaviour() -> Response | tuple[Response, int]:
    """Same switches as the FranceConnect look-alike's (``id_token_acr``, ``code_ttl_s``...)."""
    changes = request.get_json(silent=True)
    if not isinstance(changes, dict):
        return jsonify(error="Le corps de la requête doit être un objet JSON."), 400
    try:
        snapshot = pc_state().update_behaviour(changes)
    except ValueError as error:
        return jsonify(error=str(error)), 400
    return jsonify(snapshot)


@admin_bp.post("/clock")
def advance_clock() -> Response | tuple[Response, int]:
    """``{"advance_s": 61}``: codes, access tokens and pending requests age that much."""
    body = request.get_json(silent=True)
    seconds = body.get("advance_s") if isinstance(body, dict) else None
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        return jsonify(error="advance_s doit être un nombre positif."), 400
    pc_state().advance_clock(float(seconds))
    return jsonify(clock_offset_s=pc_state().clock_offset_s)
