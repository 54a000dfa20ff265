"""The connectors file and the registry: an operator's mistake stops the portal at start
with a message that names the instance and the field; a good file gives one ready
connector per instance, several of one type side by side."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from connectors.base import CallContext, InstanceConfig, LinkRef, Unavailable
from connectors.canteen.standard import StandardCanteenConnector
from connectors.housing.standard import StandardHousingConnector
from connectors.http import MemoryBreakerStore, RedisBreakerStore, ResilientHTTP
from connectors.library.koha import KohaLibraryConnector
from connectors.library.standard import StandardLibraryConnector
from connectors.registry import (
    Registry,
    RegistryError,
    discover_types,
    load_instances,
    parse_instances,
)

REPO_FILE = Path(__file__).resolve().parents[2] / "connectors.toml"

GOOD = """
[instances.bib-merignac]
type = "library-standard"
title = "Médiathèque de Mérignac"
communes = ["Mérignac"]
base_url = "https://merignac.example/api/"

[instances.bib-merignac.credentials]
api_key = "${MERIGNAC_KEY}"

[instances.bib-pessac]
type = "library-standard"
title = "Médiathèque de Pessac"
communes = ["Pessac", "Talence"]
base_url = "https://pessac.example/api"
timeout_s = 2
connect_timeout_s = 0.5

[instances.bib-pessac.credentials]
api_key = "${PESSAC_KEY:-pessac-default-key}"

[instances.bib-pessac.options]
max_attempts = 2
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "connectors.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_good_file_gives_instances_in_file_order_with_defaults(tmp_path: Path) -> None:
    instances = load_instances(write(tmp_path, GOOD), {"MERIGNAC_KEY": "k-mer"})
    assert [i.slug for i in instances] == ["bib-merignac", "bib-pessac"]
    merignac, pessac = instances
    assert merignac == InstanceConfig(
        slug="bib-merignac",
        type="library-standard",
        title="Médiathèque de Mérignac",
        communes=("Mérignac",),
        base_url="https://merignac.example/api",
        timeout_s=3.0,
        connect_timeout_s=1.0,
        credentials={"api_key": "k-mer"},
        options={},
    )
    assert pessac.timeout_s == 2.0 and pessac.connect_timeout_s == 0.5
    assert pessac.credentials == {"api_key": "pessac-default-key"}
    assert pessac.options == {"max_attempts": 2}


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, "pessac-default-key"),
        ({"PESSAC_KEY": ""}, "pessac-default-key"),
        ({"PESSAC_KEY": "from-env"}, "from-env"),
    ],
)
def test_environment_variables_fill_credentials(
    tmp_path: Path, environ: dict[str, str], expected: str
) -> None:
    instances = load_instances(write(tmp_path, GOOD), {"MERIGNAC_KEY": "k", **environ})
    assert instances[1].credentials["api_key"] == expected


def test_references_can_sit_inside_a_longer_value(tmp_path: Path) -> None:
    text = GOOD.replace(
        'base_url = "https://merignac.example/api/"',
        'base_url = "https://${MERIGNAC_HOST:-merignac.example}/api"',
    )
    instances = load_instances(write(tmp_path, text), {"MERIGNAC_KEY": "k"})
    assert instances[0].base_url == "https://merignac.example/api"
    instances = load_instances(
        write(tmp_path, text), {"MERIGNAC_KEY": "k", "MERIGNAC_HOST": "sigb.merignac.fr"}
    )
    assert instances[0].base_url == "https://sigb.merignac.fr/api"


def replace_in_good(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert old in text, old
        return text.replace(old, new, 1)

    return edit


BAD_CASES = {
    "unreadable TOML": (
        lambda t: t + "\n[instances.bib-x\n",
        ["is not valid TOML"],
    ),
    "unknown type": (
        replace_in_good('type = "library-standard"', 'type = "library-premium"'),
        ["instance 'bib-merignac'", "field 'type'", "library-premium"],
    ),
    "missing base_url": (
        replace_in_good('base_url = "https://merignac.example/api/"\n', ""),
        ["instance 'bib-merignac'", "field 'base_url' is missing"],
    ),
    "missing title": (
        replace_in_good('title = "Médiathèque de Mérignac"\n', ""),
        ["instance 'bib-merignac'", "field 'title' is missing"],
    ),
    "missing type": (
        replace_in_good('type = "library-standard"\n', ""),
        ["instance 'bib-merignac'", "field 'type' is missing"],
    ),
    "communes not a list": (
        replace_in_good('communes = ["Mérignac"]', 'communes = "Mérignac"'),
        ["instance 'bib-merignac'", "field 'communes'"],
    ),
    "empty communes": (
        replace_in_good('communes = ["Mérignac"]', "communes = []"),
        ["instance 'bib-merignac'", "field 'communes'"],
    ),
    "title not a string": (
        replace_in_good('title = "Médiathèque de Mérignac"', "title = 42"),
        ["instance 'bib-merignac'", "field 'title'"],
    ),
    "bad slug": (
        replace_in_good("[instances.bib-merignac]", "[instances.Bib_Merignac]"),
        ["instance 'Bib_Merignac'", "slug"],
    ),
    "non-http base_url": (
        replace_in_good("https://merignac.example/api/", "ftp://merignac.example/api"),
        ["instance 'bib-merignac'", "field 'base_url'", "http"],
    ),
    "base_url without host": (
        replace_in_good("https://merignac.example/api/", "https:///api"),
        ["instance 'bib-merignac'", "field 'base_url'"],
    ),
    "env var not set": (
        replace_in_good("${MERIGNAC_KEY}", "${NOT_SET_ANYWHERE}"),
        ["instance 'bib-merignac'", "field 'credentials.api_key'", "NOT_SET_ANYWHERE"],
    ),
    "malformed reference": (
        replace_in_good("${MERIGNAC_KEY}", "${MERIGNAC KEY}"),
        ["instance 'bib-merignac'", "field 'credentials.api_key'", "malformed"],
    ),
    "unknown key": (
        replace_in_good('type = "library-standard"', 'type = "library-standard"\ncolour = "blue"'),
        ["instance 'bib-merignac'", "field 'colour'"],
    ),
    "unknown credential": (
        replace_in_good('api_key = "${MERIGNAC_KEY}"', 'api_token = "x"'),
        ["instance 'bib-merignac'", "field 'credentials.api_token'"],
    ),
    "credential not a string": (
        replace_in_good('api_key = "${MERIGNAC_KEY}"', "api_key = 1234"),
        ["instance 'bib-merignac'", "field 'credentials.api_key'", "string"],
    ),
    "two auth methods": (
        replace_in_good(
            'api_key = "${MERIGNAC_KEY}"',
            'api_key = "${MERIGNAC_KEY}"\nusername = "u"\npassword = "p"',
        ),
        ["instance 'bib-merignac'", "field 'credentials'", "mixes"],
    ),
    "password without username": (
        replace_in_good('api_key = "${MERIGNAC_KEY}"', 'password = "p"'),
        ["instance 'bib-merignac'", "field 'credentials.username' is missing"],
    ),
    "client id without token url": (
        replace_in_good('api_key = "${MERIGNAC_KEY}"', 'client_id = "c"\nclient_secret = "s"'),
        ["instance 'bib-merignac'", "field 'credentials.token_url' is missing"],
    ),
    "negative timeout": (
        replace_in_good("timeout_s = 2", "timeout_s = -1"),
        ["instance 'bib-pessac'", "field 'timeout_s'"],
    ),
    "timeout as text": (
        replace_in_good("connect_timeout_s = 0.5", 'connect_timeout_s = "fast"'),
        ["instance 'bib-pessac'", "field 'connect_timeout_s'"],
    ),
    "bad retry option": (
        replace_in_good("max_attempts = 2", "max_attempts = 0"),
        ["instance 'bib-pessac'", "field 'options.max_attempts'"],
    ),
    "options not a table": (
        lambda t: t.replace("[instances.bib-pessac.options]\nmax_attempts = 2", "").replace(
            "connect_timeout_s = 0.5", 'connect_timeout_s = 0.5\noptions = "fast"'
        ),
        ["instance 'bib-pessac'", "field 'options'"],
    ),
    "unknown top-level key": (
        lambda t: 'title = "Bordeaux Métropole"\n' + t,
        ["unknown top-level key", "'title'"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_a_bad_file_is_refused_naming_the_instance_and_the_field(tmp_path: Path, case: str) -> None:
    edit, fragments = BAD_CASES[case]
    path = write(tmp_path, edit(GOOD))
    with pytest.raises(RegistryError) as raised:
        load_instances(path, {"MERIGNAC_KEY": "k"})
    for fragment in fragments:
        assert fragment in str(raised.value)


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="cannot be read"):
        load_instances(tmp_path / "missing.toml", {})


def test_secrets_from_the_environment_never_appear_in_errors(tmp_path: Path) -> None:
    text = GOOD.replace('communes = ["Pessac", "Talence"]', "communes = 3")
    with pytest.raises(RegistryError) as raised:
        load_instances(write(tmp_path, text), {"MERIGNAC_KEY": "super-secret-value"})
    assert "super-secret-value" not in str(raised.value)


# -- types -------------------------------------------------------------------------------


def test_the_five_types_are_discovered_through_entry_points() -> None:
    from connectors.water.standard import StandardWaterConnector

    types = discover_types()
    assert types["library-standard"] is StandardLibraryConnector
    assert types["canteen-standard"] is StandardCanteenConnector
    assert types["housing-standard"] is StandardHousingConnector
    assert types["koha"] is KohaLibraryConnector
    assert types["water-standard"] is StandardWaterConnector
    assert {t.category for t in types.values()} == {"library", "canteen", "housing", "water"}


def test_the_repository_file_runs_with_no_configuration() -> None:
    instances = load_instances(REPO_FILE, {})
    by_slug = {i.slug: i for i in instances}
    assert list(by_slug) == [
        "bib-bordeaux",
        "bib-merignac",
        "bib-pessac",
        "cantine-bordeaux",
        "logement-metropole",
        "eau-bordeaux",
        "eau-pessac",
    ]
    assert by_slug["bib-bordeaux"].type == "koha"
    assert by_slug["eau-pessac"].credentials == {"api_key": "sandbox-water-pessac-key"}
    assert by_slug["bib-bordeaux"].credentials == {
        "username": "portal",
        "password": "sandbox-koha-bordeaux-secret",
    }
    assert by_slug["bib-merignac"].credentials == {"api_key": "sandbox-library-merignac-key"}
    assert all(i.base_url.startswith("http://127.0.0.1:5001/") for i in instances)
    override = load_instances(REPO_FILE, {"BIB_MERIGNAC_API_KEY": "prod-key"})
    assert override[1].credentials == {"api_key": "prod-key"}


# -- the registry ------------------------------------------------------------------------


class Backends:
    """Two library back-ends behind one fake transport, told apart by host."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []
        self.down: set[str] = set()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        self.seen.append((host, request.url.path, request.headers.get("X-Api-Key", "")))
        if host in self.down:
            return httpx.Response(503)
        return httpx.Response(
            200,
            json={
                "patron_id": "p-1",
                "display_name": f"Lecteur de {host}",
                "card_expires_on": None,
                "loans_count": 0,
                "overdue_count": 0,
                "holds_ready_count": 0,
                "balance_cents": 0,
            },
        )


def registry(tmp_path: Path, backends: Backends, **kwargs: object) -> Registry:
    instances = load_instances(write(tmp_path, GOOD), {"MERIGNAC_KEY": "k-mer"})
    return Registry(instances, transport=httpx.MockTransport(backends), **kwargs)  # type: ignore[arg-type]


def test_two_instances_of_one_type_live_side_by_side(tmp_path: Path) -> None:
    backends = Backends()
    reg = registry(tmp_path, backends)
    ctx = CallContext.with_timeout(5)
    merignac = reg.connector("bib-merignac").patron(ctx, LinkRef("p-1"))
    pessac = reg.connector("bib-pessac").patron(ctx, LinkRef("p-1"))
    assert merignac.data.display_name == "Lecteur de merignac.example"
    assert pessac.data.display_name == "Lecteur de pessac.example"
    assert backends.seen == [
        ("merignac.example", "/api/v1/patrons/p-1", "k-mer"),
        ("pessac.example", "/api/v1/patrons/p-1", "pessac-default-key"),
    ]
    assert reg.connector("bib-merignac") is not reg.connector("bib-pessac")
    reg.close()


def test_each_instance_has_its_own_breaker(tmp_path: Path) -> None:
    backends = Backends()
    backends.down.add("pessac.example")
    reg = registry(tmp_path, backends, breaker_store=MemoryBreakerStore())
    ctx = CallContext.with_timeout(5)
    for _ in range(3):  # two attempts per read (max_attempts = 2): six failures
        with pytest.raises(Unavailable):
            reg.connector("bib-pessac").patron(ctx, LinkRef("p-1"))
    assert reg.breaker_state("bib-pessac").state == "open"
    assert reg.breaker_state("bib-merignac").state == "closed"
    reg.connector("bib-merignac").patron(ctx, LinkRef("p-1"))


def test_the_registry_answers_by_slug_and_by_category(tmp_path: Path) -> None:
    reg = registry(tmp_path, Backends())
    assert list(reg.instances) == ["bib-merignac", "bib-pessac"]
    assert [i.slug for i in reg.by_category("library")] == ["bib-merignac", "bib-pessac"]
    assert reg.by_category("canteen") == []
    assert reg.category("bib-pessac") == "library"
    with pytest.raises(KeyError):
        reg.connector("bib-nowhere")


def test_outcomes_reach_the_portals_hook(tmp_path: Path) -> None:
    outcomes: list[tuple[str, bool]] = []
    backends = Backends()
    reg = registry(tmp_path, backends, on_outcome=lambda slug, ok, _: outcomes.append((slug, ok)))
    reg.connector("bib-merignac").patron(CallContext.with_timeout(5), LinkRef("p-1"))
    assert outcomes == [("bib-merignac", True)]


def test_a_probe_is_a_404_behind_authentication(tmp_path: Path) -> None:
    def backend(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"code": "unknown_patron"})

    instances = load_instances(write(tmp_path, GOOD), {"MERIGNAC_KEY": "k"})
    reg = Registry(instances, transport=httpx.MockTransport(backend))
    reg.probe("bib-merignac", CallContext.with_timeout(2))

    def wrong_key(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"code": "unauthorized"})

    reg = Registry(instances, transport=httpx.MockTransport(wrong_key))
    with pytest.raises(Unavailable, match="misconfigured"):
        reg.probe("bib-merignac", CallContext.with_timeout(2))


def test_a_redis_url_gives_a_shared_breaker(tmp_path: Path) -> None:
    reg = registry(tmp_path, Backends(), redis_url="redis://127.0.0.1:6379/0")
    http: ResilientHTTP = reg._http["bib-merignac"]
    assert isinstance(http.breakers, RedisBreakerStore)


def test_a_type_that_does_not_implement_its_protocol_is_refused() -> None:
    class Half:
        category = "library"

        def __init__(self, instance: InstanceConfig, http: ResilientHTTP) -> None:
            pass

        def patron(self) -> None: ...

    instances = parse_instances(
        tomllib.loads(GOOD), {"MERIGNAC_KEY": "k"}, types={"library-standard": Half}
    )
    with pytest.raises(RegistryError, match="does not implement the library protocol"):
        Registry(instances, types={"library-standard": Half})


def test_a_type_that_rejects_its_options_names_the_instance(tmp_path: Path) -> None:
    class Picky(StandardLibraryConnector):
        def __init__(self, instance: InstanceConfig, http: ResilientHTTP) -> None:
            raise ValueError("option 'branch' is required")

    instances = load_instances(write(tmp_path, GOOD), {"MERIGNAC_KEY": "k"})
    with pytest.raises(RegistryError, match="instance 'bib-merignac': option 'branch'"):
        Registry(instances, types={"library-standard": Picky})
