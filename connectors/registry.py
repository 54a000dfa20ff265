"""Connector instances from the operator's TOML file, and the types that serve them.

Why entry points: a vendor can ship a connector type as its own package and the
territory enables it by installing it, with no change to the portal. Why a strict
file: an operator's typo must stop the portal at start with a message naming the
instance and the field, not surface as a resident's broken page hours later.

File shape::

    [instances.bib-merignac]
    type = "library-standard"
    title = "Médiathèque de Mérignac"
    communes = ["Mérignac"]
    base_url = "https://mediatheque.example.fr/api"
    timeout_s = 3.0            # optional, read timeout of one attempt
    connect_timeout_s = 1.0    # optional

    [instances.bib-merignac.credentials]
    api_key = "${BIB_MERIGNAC_API_KEY}"          # or "${NAME:-default}"

    [instances.bib-merignac.options]             # optional, free-form per type
    max_attempts = 2

    [instances.bib-merignac.links]               # optional, shown to residents
    fines_url = "https://mediatheque.example.fr/amendes"
    help_phone = "05 56 00 00 00"

``${NAME}`` and ``${NAME:-default}`` are replaced from the environment in
credentials and in ``base_url``.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import httpx

from connectors.base import (
    CallContext,
    CanteenConnector,
    Category,
    HousingConnector,
    InstanceConfig,
    LibraryConnector,
    WaterConnector,
)
from connectors.contract import load_contract
from connectors.http import (
    QUEUE_WAIT_S,
    AdmissionCounters,
    BreakerState,
    BreakerStore,
    MemoryBreakerStore,
    MemoryReferenceCache,
    OutcomeHook,
    Policy,
    RedisBreakerStore,
    ReferenceCache,
    ResilientHTTP,
    SnapshotStore,
)

ENTRY_POINT_GROUP = "compte_territorial.connectors"

PROTOCOLS: Mapping[str, type] = {
    "library": LibraryConnector,
    "canteen": CanteenConnector,
    "housing": HousingConnector,
    "water": WaterConnector,
}

SLUG = re.compile(r"[a-z0-9-]+")
_ENV_REF = re.compile(r"\$\{([^}]*)\}")
_ENV_BODY = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>.*))?", re.DOTALL)

_FIELDS = {"type", "title", "communes", "base_url", "timeout_s", "connect_timeout_s"}
_TABLES = {"credentials", "options", "links"}
#: The links an instance may carry, and whether each is a web address.
LINK_KEYS = {
    "apply_url": True,
    "fines_url": True,
    "help_url": True,
    "help_phone": False,
    "help_email": False,
}
_PHONE = re.compile(r"\+?[0-9][0-9 .-]{3,20}[0-9]")
_EMAIL = re.compile(r"[^@\s<>\"]+@[^@\s<>\"]+\.[a-zA-Z]{2,}")
CREDENTIAL_KEYS = frozenset(
    {"api_key", "client_id", "client_secret", "token_url", "scope", "username", "password"}
)


class RegistryError(ValueError):
    """The connectors file cannot be used; the message names the instance and the field."""


def discover_types() -> dict[str, type]:
    """Connector types installed in this environment, by entry-point name."""
    types: dict[str, type] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = ep.load()
        except Exception as exc:
            raise RegistryError(f"connector type {ep.name!r} cannot be loaded: {exc}") from exc
        if getattr(cls, "category", None) not in PROTOCOLS:
            raise RegistryError(
                f"connector type {ep.name!r} has no valid 'category' "
                f"(one of {', '.join(PROTOCOLS)})"
            )
        types[ep.name] = cls
    return types


# -- reading the file --------------------------------------------------------------------


def load_instances(
    path: str | os.PathLike[str],
    environ: Mapping[str, str],
    *,
    types: Mapping[str, type] | None = None,
) -> list[InstanceConfig]:
    """Read and check the connectors file; ``RegistryError`` says what is wrong and where.

    ``types`` defaults to the installed entry points; tests pass their own.
    """
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise RegistryError(f"connectors file {os.fspath(path)!r} cannot be read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise RegistryError(
            f"connectors file {os.fspath(path)!r} is not valid TOML: {exc}"
        ) from exc
    return parse_instances(data, environ, types=types)


def parse_instances(
    data: Mapping[str, Any],
    environ: Mapping[str, str],
    *,
    types: Mapping[str, type] | None = None,
) -> list[InstanceConfig]:
    """Check an already-parsed TOML document (see ``load_instances``)."""
    known_types = discover_types() if types is None else types
    unknown = set(data) - {"instances"}
    if unknown:
        raise RegistryError(
            f"connectors file: unknown top-level key(s) {', '.join(map(repr, sorted(unknown)))}"
        )
    instances = data.get("instances", {})
    if not isinstance(instances, dict):
        raise RegistryError("connectors file: 'instances' must be a table")
    return [_instance(slug, table, environ, known_types) for slug, table in instances.items()]


def _instance(
    slug: str, table: Any, environ: Mapping[str, str], types: Mapping[str, type]
) -> InstanceConfig:
    def fail(field: str, problem: str) -> RegistryError:
        return RegistryError(f"instance {slug!r}: field {field!r} {problem}")

    if not SLUG.fullmatch(slug):
        raise RegistryError(
            f"instance {slug!r}: the slug must use only a-z, 0-9 and '-' (it appears in URLs)"
        )
    if not isinstance(table, dict):
        raise RegistryError(f"instance {slug!r}: must be a table")
    for key in table:
        if key not in _FIELDS | _TABLES:
            raise fail(key, "is not a known field")
    for key in ("type", "title", "communes", "base_url"):
        if key not in table:
            raise fail(key, "is missing")

    type_name = table["type"]
    if not isinstance(type_name, str):
        raise fail("type", "must be a string")
    if type_name not in types:
        known = ", ".join(sorted(types)) or "none installed"
        raise fail("type", f"names an unknown connector type {type_name!r} (known: {known})")

    title = table["title"]
    if not isinstance(title, str) or not title.strip():
        raise fail("title", "must be a non-empty string")

    communes = table["communes"]
    if (
        not isinstance(communes, list)
        or not communes
        or not all(isinstance(c, str) and c.strip() for c in communes)
    ):
        raise fail("communes", "must be a non-empty list of commune names")

    base_url = table["base_url"]
    if not isinstance(base_url, str):
        raise fail("base_url", "must be a string")
    base_url = _substitute(base_url, environ, lambda p: fail("base_url", p))
    parts = httpx.URL(base_url) if base_url.startswith(("http://", "https://")) else None
    if parts is None or not parts.host:
        raise fail("base_url", "must be an http:// or https:// URL")

    timeouts: dict[str, float] = {}
    for key, default in (("timeout_s", 3.0), ("connect_timeout_s", 1.0)):
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise fail(key, "must be a positive number of seconds")
        timeouts[key] = float(value)

    credentials = _credentials(table.get("credentials", {}), environ, fail)

    options = table.get("options", {})
    if not isinstance(options, dict):
        raise fail("options", "must be a table")
    try:
        Policy.from_options(options)
    except ValueError as exc:
        raise fail(str(exc), "must be a number at or above its minimum") from None

    links = _links(table.get("links", {}), fail)

    return InstanceConfig(
        slug=slug,
        type=type_name,
        title=title.strip(),
        communes=tuple(c.strip() for c in communes),
        base_url=base_url.rstrip("/"),
        timeout_s=timeouts["timeout_s"],
        connect_timeout_s=timeouts["connect_timeout_s"],
        credentials=credentials,
        options=dict(options),
        links=links,
    )


def _links(table: Any, fail: Callable[[str, str], RegistryError]) -> dict[str, str]:
    """Residents follow these: a typo must stop the portal, not send them nowhere."""
    if not isinstance(table, dict):
        raise fail("links", "must be a table")
    links: dict[str, str] = {}
    for key, value in table.items():
        field = f"links.{key}"
        if key not in LINK_KEYS:
            raise fail(field, f"is not a known link ({', '.join(sorted(LINK_KEYS))})")
        if not isinstance(value, str) or not value.strip():
            raise fail(field, "must be a non-empty string")
        value = value.strip()
        if LINK_KEYS[key]:
            url = httpx.URL(value) if value.startswith(("http://", "https://")) else None
            if url is None or not url.host:
                raise fail(field, "must be an http:// or https:// URL")
        elif key == "help_phone" and not _PHONE.fullmatch(value):
            raise fail(field, "must be a phone number such as '05 56 00 00 00'")
        elif key == "help_email" and not _EMAIL.fullmatch(value):
            raise fail(field, "must be an e-mail address")
        links[key] = value
    return links


def _credentials(
    table: Any, environ: Mapping[str, str], fail: Callable[[str, str], RegistryError]
) -> dict[str, str]:
    if not isinstance(table, dict):
        raise fail("credentials", "must be a table")
    creds: dict[str, str] = {}
    for key, value in table.items():
        field = f"credentials.{key}"
        if key not in CREDENTIAL_KEYS:
            raise fail(field, f"is not a known credential ({', '.join(sorted(CREDENTIAL_KEYS))})")
        if not isinstance(value, str):
            raise fail(field, "must be a string")
        creds[key] = _substitute(value, environ, functools.partial(fail, field))
    methods = [m for m in ("api_key", "client_id", "username") if m in creds]
    if len(methods) > 1:
        raise fail("credentials", f"mixes authentication methods ({', '.join(methods)})")
    for needs, needed in (
        ("client_id", "client_secret"),
        ("client_id", "token_url"),
        ("client_secret", "client_id"),
        ("username", "password"),
        ("password", "username"),
    ):
        if needs in creds and needed not in creds:
            raise fail(f"credentials.{needed}", f"is missing (needed with {needs})")
    return creds


def _substitute(
    value: str, environ: Mapping[str, str], fail: Callable[[str], RegistryError]
) -> str:
    """Replace ``${NAME}`` and ``${NAME:-default}`` (default when unset or empty)."""

    def one(match: re.Match[str]) -> str:
        body = _ENV_BODY.fullmatch(match.group(1))
        if body is None:
            raise fail(f"has a malformed reference '${{{match.group(1)}}}'")
        name, default = body.group("name"), body.group("default")
        found = environ.get(name)
        if default is not None:
            return found or default
        if found is None:
            raise fail(f"references environment variable {name!r}, which is not set")
        return found

    return _ENV_REF.sub(one, value)


# -- the registry ------------------------------------------------------------------------


class Registry:
    """The configured instances and one connector per instance, ready to call.

    Each instance gets its own ``ResilientHTTP`` (its own breaker key, timeouts and
    credentials); the stores and the outcome hook are shared. Connectors are built at
    construction, so a type that rejects its options fails at start.

    The breaker store is ``breaker_store`` if given, else Redis at ``redis_url`` (shared
    by every web process), else this process's memory. The reference cache (titles,
    library names) is ``reference_cache`` if given, else one bounded memory cache for
    every instance of the registry. ``concurrency`` (0: none) limits each instance to
    that many operations of this process at once, the next waiting ``queue_wait_s`` at
    most before it is unavailable (``connectors.http.admission``).
    """

    def __init__(
        self,
        instances: Iterable[InstanceConfig],
        *,
        breaker_store: BreakerStore | None = None,
        snapshot_store: SnapshotStore | None = None,
        reference_cache: ReferenceCache | None = None,
        on_outcome: OutcomeHook | None = None,
        redis_url: str | None = None,
        types: Mapping[str, type] | None = None,
        transport: httpx.BaseTransport | None = None,
        concurrency: int = 0,
        queue_wait_s: float = QUEUE_WAIT_S,
    ) -> None:
        known_types = discover_types() if types is None else dict(types)
        if breaker_store is None:
            breaker_store = (
                RedisBreakerStore.from_url(redis_url) if redis_url else MemoryBreakerStore()
            )
        if reference_cache is None:
            reference_cache = MemoryReferenceCache()  # one bound for every instance
        self.instances: dict[str, InstanceConfig] = {}
        self._connectors: dict[str, Any] = {}
        self._http: dict[str, ResilientHTTP] = {}
        self._categories: dict[str, Category] = {}
        for instance in instances:
            if instance.slug in self.instances:
                raise RegistryError(f"instance {instance.slug!r}: declared twice")
            cls: type[Any] | None = known_types.get(instance.type)
            if cls is None:
                raise RegistryError(
                    f"instance {instance.slug!r}: field 'type' names an unknown connector "
                    f"type {instance.type!r}"
                )
            spec = getattr(cls, "spec", None)
            http = ResilientHTTP(
                instance,
                breaker_store=breaker_store,
                snapshot_store=snapshot_store,
                reference_cache=reference_cache,
                on_outcome=on_outcome,
                contract=load_contract(spec) if spec else None,
                error_parser=getattr(cls, "error_parser", None),
                transport=transport,
                concurrency=concurrency,
                queue_wait_s=queue_wait_s,
            )
            try:
                connector = cls(instance, http)
            except (ValueError, TypeError, KeyError) as exc:
                http.close()
                raise RegistryError(f"instance {instance.slug!r}: {exc}") from exc
            category: Category = cls.category
            if not isinstance(connector, PROTOCOLS[category]):
                http.close()
                raise RegistryError(
                    f"instance {instance.slug!r}: type {instance.type!r} does not implement "
                    f"the {category} protocol"
                )
            self.instances[instance.slug] = instance
            self._connectors[instance.slug] = connector
            self._http[instance.slug] = http
            self._categories[instance.slug] = category

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        environ: Mapping[str, str],
        **kwargs: Any,
    ) -> Registry:
        """``load_instances`` then build: the usual way to start."""
        return cls(load_instances(path, environ, types=kwargs.get("types")), **kwargs)

    def connector(self, slug: str) -> Any:
        """The connector of one instance (a Library-, Canteen- or HousingConnector).

        ``KeyError`` if no such instance: a slug from a URL is never trusted blindly.
        """
        return self._connectors[slug]

    def category(self, slug: str) -> Category:
        return self._categories[slug]

    def by_category(self, category: Category) -> list[InstanceConfig]:
        """The instances of one category, in file order."""
        return [i for slug, i in self.instances.items() if self._categories[slug] == category]

    def breaker_state(self, slug: str) -> BreakerState:
        return self._http[slug].breaker_state()

    def admission(self, slug: str) -> AdmissionCounters:
        """What the instance's concurrency limit did in this process."""
        return self._http[slug].admission.counters()

    def reset_breakers(self) -> None:
        """Close every instance's breaker and forget its failures."""
        for slug, http in self._http.items():
            http.breakers.reset(slug)

    def probe(self, slug: str, ctx: CallContext) -> None:
        """Ask one instance a cheap question (for the status page's background checks).

        Returns if the back-end answered and accepted the portal's credentials; raises
        ``Unavailable`` or ``ContractBroken`` otherwise. The route is the type's
        ``probe_route`` (a resource that does not exist), or the base URL.
        """
        cls = type(self._connectors[slug])
        self._http[slug].probe(ctx, getattr(cls, "probe_route", "/"))

    def close(self) -> None:
        """Close every HTTP client (connections pools) of the registry."""
        for http in self._http.values():
            http.close()
