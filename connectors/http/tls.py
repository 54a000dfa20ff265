"""One SSL context for every HTTP client of the process.

Building an ``ssl.SSLContext`` loads and parses the whole CA bundle (tens of
milliseconds). httpx builds one per client when given ``verify=True``, and the portal
builds a client per configured instance plus one for the identity provider: that was
about half of ``create_app()``. The context is built once, on first use, per distinct
verification setting, and shared; an ``SSLContext`` is safe to share between
connections and threads once configured. httpcore sets the same ALPN protocols on it
for every connection (HTTP/1.1 only here), which is harmless.
"""

from __future__ import annotations

import os
import ssl
import threading

import httpx

#: ``True`` (the system's default bundle as httpx chooses it: certifi), ``False`` (no
#: verification: tests against self-signed servers only), or the path of a CA file or
#: directory.
VerifySetting = bool | str

_lock = threading.Lock()
_contexts: dict[tuple[VerifySetting, bool], ssl.SSLContext] = {}


def shared_ssl_context(verify: VerifySetting = True, *, trust_env: bool = False) -> ssl.SSLContext:
    """The process's SSL context for ``verify``, built on first use (thread-safe).

    ``trust_env`` as httpx means it: with ``verify=True``, ``SSL_CERT_FILE`` and
    ``SSL_CERT_DIR`` choose the bundle. Pass the result as ``httpx.Client(verify=...)``.
    """
    key = (verify, trust_env)
    context = _contexts.get(key)
    if context is not None:
        return context
    with _lock:
        context = _contexts.get(key)
        if context is None:
            context = _build(verify, trust_env)
            _contexts[key] = context
        return context


def _build(verify: VerifySetting, trust_env: bool) -> ssl.SSLContext:
    if isinstance(verify, str):
        if os.path.isdir(verify):
            return ssl.create_default_context(capath=verify)
        return ssl.create_default_context(cafile=verify)
    return httpx.create_ssl_context(verify=verify, trust_env=trust_env)


def clear_shared_ssl_contexts() -> None:
    """Forget the contexts (after rotating a CA bundle on disk; tests)."""
    with _lock:
        _contexts.clear()
