"""The agents' sign-in against another ProConnect-shaped provider than the sandbox's:
its own address layout, its own RSA key, JSON userinfo, configured only through the
documented agent variables (``PORTAL_AGENT_ISSUER``, ``PORTAL_AGENT_CLIENT_ID``,
``PORTAL_AGENT_CLIENT_SECRET``). The provider, written here in a few lines, refuses any
authorize parameter ProConnect does not list, as ProConnect does."""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from flask import Flask, Response, abort, jsonify, redirect, request
from joserfc import jwt
from joserfc.jwk import RSAKey

from portal import create_app
from portal.config import load_settings
from tests.support import Sandbox, ServerThread, empty_tables

CLIENT_ID, CLIENT_SECRET = "portail-agents", "secret-of-the-other-provider"
ALLOWED = {
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
IDP_ID = "idp-of-the-ministry"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class OtherProvider:
    """An OpenID provider shaped like ProConnect, with nothing of the sandbox's."""

    url: str = ""
    acr: str = "eidas2"
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, {"kid": "other-1"}))
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)
    ended: list[dict[str, str]] = field(default_factory=list)

    @property
    def issuer(self) -> str:
        return self.url + "/realms/agents"

    def app(self) -> Flask:
        app = Flask("other_provider")

        @app.get("/realms/agents/.well-known/openid-configuration")
        def discovery() -> Response:
            return jsonify(
                issuer=self.issuer,
                authorization_endpoint=self.url + "/oauth/auth",
                token_endpoint=self.url + "/oauth/token",
                userinfo_endpoint=self.url + "/oauth/me",
                jwks_uri=self.url + "/oauth/certs",
                end_session_endpoint=self.url + "/oauth/logout",
                id_token_signing_alg_values_supported=["RS256"],
            )

        @app.get("/oauth/certs")
        def certs() -> Response:
            return jsonify(keys=[self.key.as_dict(private=False)])

        @app.get("/oauth/auth")
        def authorize() -> Response:
            extra = sorted(set(request.args) - ALLOWED)
            if extra:
                self.refused.append(",".join(extra))
                return Response("Y000400", status=400)
            args = request.args
            code = secrets.token_urlsafe(16)
            self.codes[code] = {"nonce": args["nonce"], "claims": json.loads(args["claims"])}
            query = urlencode({"code": code, "state": args["state"]})
            return redirect(f"{args['redirect_uri']}?{query}")

        @app.post("/oauth/token")
        def token() -> Response:
            form = request.form
            if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
                return Response(json.dumps({"error": "invalid_client"}), 401)
            asked = self.codes.pop(form.get("code", ""), None)
            if asked is None:
                return Response(json.dumps({"error": "invalid_grant"}), 400)
            access = secrets.token_urlsafe(24)
            now = int(time.time())
            id_token = jwt.encode(
                {"alg": "RS256", "kid": "other-1"},
                {
                    "iss": self.issuer,
                    "aud": CLIENT_ID,
                    "sub": "agent-42",
                    "iat": now,
                    "exp": now + 60,
                    "nonce": asked["nonce"],
                    "acr": self.acr,
                    "amr": ["pwd", "otp"],
                    "auth_time": now,
                    "sid": "s-1",
                },
                self.key,
            )
            self.tokens[access] = {"id_token": id_token}
            return jsonify(
                access_token=access, token_type="Bearer", expires_in=60, id_token=id_token
            )

        @app.get("/oauth/me")
        def me() -> Response:
            access = request.headers.get("Authorization", "").removeprefix("Bearer ")
            if access not in self.tokens:
                abort(401)
            return jsonify(
                sub="agent-42",
                given_name="Nadia Lucie",
                usual_name="MARTIN",
                email="nadia.martin@ministere.example",
                uid="nmartin",
                siret="13002526500013",
                idp_id=IDP_ID,
                organization_label="Ministère de l'exemple",
                roles=["agent_public"],
            )

        @app.get("/oauth/logout")
        def logout() -> Response:
            self.ended.append(dict(request.args))
            back = request.args["post_logout_redirect_uri"]
            return redirect(f"{back}?{urlencode({'state': request.args['state']})}")

        return app


@pytest.fixture
def other() -> Iterator[OtherProvider]:
    provider = OtherProvider()
    server = ServerThread(provider.app())
    provider.url = server.url
    server.start()
    yield provider
    server.stop()


@pytest.fixture
def other_app(database_url: str, fc_sandbox: Sandbox, other: OtherProvider) -> Iterator[Flask]:
    # Only the documented variables, as an operator would set them.
    environ = {
        "PORTAL_AGENT_ISSUER": other.issuer,
        "PORTAL_AGENT_CLIENT_ID": CLIENT_ID,
        "PORTAL_AGENT_CLIENT_SECRET": CLIENT_SECRET,
    }
    settings = load_settings(
        environ,
        database_url=database_url,
        fc_issuer=fc_sandbox.issuer,
        base_url="http://localhost",
        testing=True,
    )
    app = create_app(settings)
    yield app
    empty_tables(app)


def follow_provider(location: str) -> str:
    """The browser at the provider: where it is sent back (path and query)."""
    answer = httpx.get(location, timeout=10, follow_redirects=False)
    assert answer.status_code == 302, (answer.status_code, answer.text)
    back = urlsplit(answer.headers["Location"])
    return f"{back.path}?{back.query}"


def test_an_agent_signs_in_and_out_against_another_provider(
    other_app: Flask, other: OtherProvider
) -> None:
    runner = other_app.test_cli_runner()
    added = runner.invoke(
        args=["agents", "add", "--idp-id", IDP_ID, "--sub", "agent-42", "--name", "Nadia"]
    )
    assert added.exit_code == 0, added.output
    client = other_app.test_client()
    start = client.get("/agents/proconnect/login")
    assert start.status_code == 302
    location = start.headers["Location"]
    assert location.startswith(other.url + "/oauth/auth?")
    sent = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    assert set(sent) <= ALLOWED and sent["client_id"] == CLIENT_ID
    assert json.loads(sent["claims"])["id_token"]["acr"]["essential"] is True

    done = client.get(follow_provider(location))
    assert done.status_code == 303 and done.headers["Location"] == "/agents/"
    home = client.get("/agents/").get_data(as_text=True)
    assert "Nadia Lucie MARTIN" in home
    assert other.refused == []

    token = CSRF_RE.search(home)
    assert token
    out = client.post("/agents/logout", data={"csrf_token": token.group(1)})
    assert out.status_code == 303 and out.headers["Location"].startswith(
        other.url + "/oauth/logout?"
    )
    back = client.get(follow_provider(out.headers["Location"]))
    assert back.status_code == 200
    [ended] = other.ended
    assert ended["post_logout_redirect_uri"] == "http://localhost/agents/proconnect/logged-out"
    assert ended["id_token_hint"] and ended["state"]
    assert client.get("/agents/").status_code in (302, 303)  # signed out


def test_the_other_provider_without_a_second_factor_is_refused(
    other_app: Flask, other: OtherProvider
) -> None:
    other.acr = "eidas1"
    runner = other_app.test_cli_runner()
    runner.invoke(args=["agents", "add", "--idp-id", IDP_ID, "--sub", "agent-42", "--name", "N"])
    client = other_app.test_client()
    location = client.get("/agents/proconnect/login").headers["Location"]
    refused = client.get(follow_provider(location))
    assert refused.status_code == 403
    assert "double authentification" in refused.get_data(as_text=True).replace("\u00a0", " ")
    assert client.get("/agents/").status_code in (302, 303)
