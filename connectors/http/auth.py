"""The portal's own credentials for one instance: API key, HTTP Basic, or OAuth2 client
credentials (the token itself is fetched by ``ResilientHTTP``, under the call's
deadline, and kept here until shortly before it expires).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from urllib.parse import urljoin

import httpx

from connectors.base import InstanceConfig

#: OAuth2 tokens are renewed this long before they expire.
TOKEN_MARGIN_S = 30.0


class Auth:
    """The portal's own credentials for one instance.

    ``api_key`` → ``X-Api-Key``; ``username``/``password`` → HTTP Basic;
    ``client_id``/``client_secret``/``token_url`` → OAuth2 client credentials, the
    token kept until shortly before it expires.
    """

    def __init__(self, instance: InstanceConfig) -> None:
        creds = instance.credentials
        self.api_key = creds.get("api_key")
        self.basic = (creds["username"], creds.get("password", "")) if "username" in creds else None
        self.oauth = "client_id" in creds
        self._client_id = creds.get("client_id", "")
        self._client_secret = creds.get("client_secret", "")
        self._scope = creds.get("scope")
        # Relative to the instance's base URL (the standard APIs put it at ``/oauth/token``,
        # beside ``/v1``), or absolute.
        token_url = creds.get("token_url", "")
        self._token_url = (
            token_url
            if token_url.startswith(("http://", "https://"))
            else urljoin(instance.base_url.rstrip("/") + "/", token_url.lstrip("/"))
        )
        self._lock = threading.Lock()
        self._fetch_lock = threading.Lock()
        self._token: tuple[str, float] | None = None

    def drop_token(self) -> None:
        with self._lock:
            self._token = None

    def headers(self, fetch_token: Callable[[], tuple[str, float]]) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.api_key is not None:
            headers["X-Api-Key"] = self.api_key
        if self.oauth:
            headers["Authorization"] = f"Bearer {self._current_token(fetch_token)}"
        return headers

    def _current_token(self, fetch_token: Callable[[], tuple[str, float]]) -> str:
        """The token, fetched by one thread at a time: calls sent side by side
        (``connectors.concurrent``) wait for one token request instead of each sending
        their own."""
        with self._lock:
            token = self._token
        if token is not None and time.monotonic() < token[1]:
            return token[0]
        with self._fetch_lock:
            with self._lock:
                token = self._token
            if token is None or time.monotonic() >= token[1]:
                token = fetch_token()
                with self._lock:
                    self._token = token
        return token[0]

    def httpx_auth(self) -> httpx.Auth | None:
        return httpx.BasicAuth(*self.basic) if self.basic else None

    def token_request(self) -> tuple[str, dict[str, str]]:
        form = {
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_secret": self._client_secret,
        }
        if self._scope:
            form["scope"] = self._scope
        return self._token_url, form
