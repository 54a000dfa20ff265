"""Runtime checks of back-end answers against the territory's OpenAPI 3.1 specs.

Why at runtime: a vendor's upgrade can change a field's type or drop it; the portal
must then fail loudly and typed (``ContractBroken``, logged and alerted) rather than
show a resident wrong dates or crash in a template. The specs in ``connectors/specs/``
are the contract the territory's procurement asks vendors to honour, so they are what
answers are checked against.

A spec is loaded once; each response schema is checked against the metaschema and
compiled once into a Draft 2020-12 validator (shared by every route answering with it)
whose ``$ref`` into ``#/components/...`` resolve through ``referencing``. A body that
fails stops at its first error (a back-end sending garbage on every read must not cost
a walk over all of them); a body already found valid, byte for byte, is not walked
again (the same answer comes back on every reload). Errors name the instance, the
route and the JSON path that failed, never a value.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from connectors.base import ContractBroken

log = logging.getLogger(__name__)

SPEC_DIR = Path(__file__).resolve().parent / "specs"

_PARAM = re.compile(r"\{[^}/]+\}")
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


class _SpecLoader(yaml.SafeLoader):
    """YAML without implicit timestamps: ``2024-05-01`` in a spec stays a string, as JSON
    Schema expects, instead of becoming a ``datetime.date``."""


_SpecLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _jsonable(node: Any) -> Any:
    """Mapping keys as strings (``200:`` unquoted is an int in YAML), recursively."""
    if isinstance(node, dict):
        return {str(k): _jsonable(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_jsonable(v) for v in node]
    return node


def _server_path(url: str) -> str:
    """The literal path a server URL ends with: ``{instance}/v1`` → ``/v1``,
    ``https://koha.example/api/v1`` → ``/api/v1``. A connector's base URL stands for
    whatever comes before."""
    if "}" in url:
        url = url.rsplit("}", 1)[1]
    elif "://" in url:
        url = urlsplit(url).path
    return "/" + url.strip("/") if url.strip("/") else ""


def _pointer(*segments: str) -> str:
    escaped = (s.replace("~", "~0").replace("/", "~1") for s in segments)
    return "".join("/" + quote(s, safe="~") for s in escaped)


def _json_path(error: ValidationError) -> str:
    path = "$"
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _describe(error: ValidationError) -> str:
    """What went wrong, without the offending value (it may be personal data)."""
    keyword = str(error.validator)
    if keyword == "required" and isinstance(error.instance, dict):
        missing = [
            name
            for name in error.validator_value  # type: ignore[union-attr]
            if name not in error.instance
        ]
        return f"missing required field(s) {', '.join(map(repr, missing))}"
    if keyword == "additionalProperties" and isinstance(error.instance, dict):
        declared = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
        extra = sorted(k for k in error.instance if k not in declared)
        return f"undeclared field(s) {', '.join(map(repr, extra))}"
    if keyword == "type":
        return f"wrong type (expected {error.validator_value})"
    return f"fails '{keyword}'"


class Contract:
    """One OpenAPI 3.1 document, ready to check responses by (method, route, status)."""

    def __init__(self, name: str, document: Mapping[str, Any]) -> None:
        self.name = name
        self.document = _jsonable(dict(document))
        self._uri = f"urn:compte-territorial:spec:{name}"
        self._registry: Registry = Registry().with_resource(
            self._uri, DRAFT202012.create_resource(self.document)
        )
        self._paths: dict[str, str] = {
            _PARAM.sub("{}", path): path for path in (self.document.get("paths") or {})
        }
        self._bases = sorted(
            {
                _server_path(str(server.get("url", "")))
                for server in self.document.get("servers") or []
                if isinstance(server, dict)
            }
            - {""},
            key=len,
            reverse=True,
        )
        self._lock = threading.Lock()
        self._validators: dict[tuple[str, str, int], Draft202012Validator | None] = {}
        #: One validator per response schema (by its JSON pointer), whatever the route.
        self._compiled: dict[str, Draft202012Validator] = {}
        #: Digests of bodies found valid, per (method, route, status): not walked again.
        self._valid: OrderedDict[tuple[str, str, int, bytes], None] = OrderedDict()

    #: Valid bodies remembered (least recently seen forgotten first).
    MAX_VALID = 4096

    @classmethod
    def from_file(cls, path: Path) -> Contract:
        with path.open(encoding="utf-8") as fh:
            document = yaml.load(fh, Loader=_SpecLoader)  # noqa: S506 (a SafeLoader subclass)
        if not isinstance(document, dict) or "paths" not in document:
            raise ValueError(f"{path} is not an OpenAPI document")
        return cls(path.name, document)

    def spec_path(self, route: str) -> str | None:
        """The spec's path for a connector's route template.

        Parameter names may differ (``{id}`` ≡ ``{patron_id}``), and the route may or may
        not include the path of the spec's server URL (``/api/v1``).
        """
        key = _PARAM.sub("{}", route)
        candidates = [key]
        for base in self._bases:
            if key.startswith(base + "/"):
                candidates.append(key[len(base) :])
            candidates.append(base + key)
        for candidate in candidates:
            if candidate in self._paths:
                return self._paths[candidate]
        return None

    def check(
        self,
        instance: str,
        method: str,
        route: str,
        status: int,
        body: Any,
        content: bytes | None = None,
    ) -> None:
        """Raise ``ContractBroken`` unless ``body`` is what the spec promises.

        ``content``: the raw bytes ``body`` was parsed from; the same bytes found valid
        before for this route and status are not checked again.
        """
        where = f"instance {instance!r}: {method.upper()} {route} {status}"
        validator = self._validator(where, method.lower(), route, status)
        if validator is None:
            return
        seen: tuple[str, str, int, bytes] | None = None
        if content is not None:
            digest = hashlib.blake2b(content, digest_size=16).digest()
            seen = (method.lower(), route, status, digest)
            with self._lock:
                if seen in self._valid:
                    self._valid.move_to_end(seen)
                    return
        error = first_error(validator, body)
        if error is not None:
            raise ContractBroken(
                f"{where}: body breaks {self.name} at {_json_path(error)}: {_describe(error)}"
            )
        if seen is not None:
            with self._lock:
                self._valid[seen] = None
                while len(self._valid) > self.MAX_VALID:
                    self._valid.popitem(last=False)

    def _validator(
        self, where: str, method: str, route: str, status: int
    ) -> Draft202012Validator | None:
        cache_key = (method, route, status)
        with self._lock:
            if cache_key in self._validators:
                return self._validators[cache_key]
        path = self.spec_path(route)
        if path is None:
            raise ContractBroken(f"{where}: route not in {self.name}")
        operation = self.document["paths"][path].get(method)
        if not isinstance(operation, dict):
            raise ContractBroken(f"{where}: method not in {self.name}")
        responses = operation.get("responses") or {}
        for status_key in (str(status), f"{status // 100}XX", "default"):
            if status_key in responses:
                break
        else:
            raise ContractBroken(f"{where}: status not declared in {self.name}")
        response = responses[status_key]
        pointer = ["paths", path, method, "responses", status_key]
        if "$ref" in response:  # a shared response under #/components/responses
            ref = str(response["$ref"])
            pointer = [p.replace("~1", "/").replace("~0", "~") for p in ref[2:].split("/")]
            response = self._registry.resolver(self._uri).lookup(ref).contents
        media = (response or {}).get("content") or {}
        media_type = next((m for m in media if m.split(";")[0].strip().endswith("json")), None)
        validator: Draft202012Validator | None = None
        if media_type is not None and "schema" in media[media_type]:
            ref = self._uri + "#" + _pointer(*pointer, "content", media_type, "schema")
            validator = self._compile(ref, media[media_type]["schema"])
        with self._lock:
            self._validators[cache_key] = validator
        return validator

    def _compile(self, ref: str, schema: Any) -> Draft202012Validator:
        """The validator of one response schema, built once: the schema is checked
        against the metaschema then (``SchemaError`` for a broken spec, at the first
        answer it is needed for, never at each)."""
        with self._lock:
            found = self._compiled.get(ref)
        if found is not None:
            return found
        Draft202012Validator.check_schema(schema)
        validator = Draft202012Validator(
            {"$ref": ref},
            registry=self._registry,
            format_checker=Draft202012Validator.FORMAT_CHECKER,
        )
        with self._lock:
            return self._compiled.setdefault(ref, validator)


def first_error(validator: Draft202012Validator, body: Any) -> ValidationError | None:
    """The first error of ``body``, or None: the walk stops there. When that error is a
    choice none of whose branches fit (``oneOf``, ``anyOf``), the most telling of its
    own branches' errors names the place instead (within that one error only), leaving
    out the branches meant for another type (``null`` beside an object)."""
    error = next(validator.iter_errors(body), None)
    if error is not None and error.context:
        telling = [e for e in error.context if e.validator != "type" or e.relative_path]
        inner: ValidationError | None = best_match(telling or error.context)
        return inner or error
    return error


@functools.cache
def _load(path: Path) -> Contract | None:
    if not path.is_file():
        log.warning("contract %s not found: answers of its connectors are not checked", path)
        return None
    return Contract.from_file(path)


def load_contract(name: str) -> Contract | None:
    """The contract named ``name`` (a file in ``connectors/specs/``, or a path), loaded once.

    ``None`` (with a warning) when the file does not exist, so a connector type can ship
    before its spec; a spec that exists but does not parse is an error.
    """
    path = Path(name)
    if not path.is_absolute():
        path = SPEC_DIR / name
    return _load(path.resolve())


# -- typed fields ------------------------------------------------------------------------
# Small converters the connector types share. They raise ValueError/TypeError, which
# ``ResilientHTTP.read`` turns into ``ContractBroken`` naming the read.


def as_date(value: Any) -> date:
    """An ISO date; a date-time is read as the date in its own offset."""
    if not isinstance(value, str):
        raise TypeError("date expected")
    if len(value) > 10:
        return datetime.fromisoformat(value).date()
    return date.fromisoformat(value)


def as_optional_date(value: Any) -> date | None:
    return None if value is None or value == "" else as_date(value)


def as_optional_datetime(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise TypeError("date-time expected")
    return datetime.fromisoformat(value)


def as_str(value: Any) -> str:
    """An identifier or label: strings as they are, integers as text."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise TypeError("string expected")
    return str(value)


def as_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("integer expected")
    return value


def as_optional_int(value: Any) -> int | None:
    return None if value is None else as_int(value)


def as_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError("boolean expected")
    return value
