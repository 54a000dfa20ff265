"""Benchmark: the resident's pages at data scale, on PostgreSQL.

A metropolitan portal holds about a million residents. This checks that one resident's
pages (the dashboard shell, a card, "Mon activité") cost the same with a million residents
as with a thousand, and that migrating such a database stays fast. Three sub-commands:

``fill``
    Drops and creates the database named (never ``test`` nor a maintenance database),
    builds the schema with ``flask db upgrade``, then bulk-loads residents, their links and
    their journal on the server side (``INSERT … SELECT generate_series``), and runs
    ``VACUUM (ANALYZE)``. Every resident has the same shape whatever the size: links to
    distinct services (a third of them holding an encrypted secret, valid ciphertexts for
    the keys the portal is configured with) and journal entries spread over two years,
    interleaved with everybody else's as a real journal is. Two residents are the
    sandbox's demo identities, so they can sign in and their cards reach the sandbox:
    ``amina`` (3 links, a typical history) and ``paul-antoine`` (3 links and a long
    history, ``--long-history`` entries spread over the whole table).

``measure``
    Starts the sandbox and one portal (gunicorn) per database on loopback, signs both
    residents in on each, and requests the same pages on the small and the big database
    in turn, rotating which goes first, so both see the same machine; prints median, p95
    and the ratio. ``--control`` adds a second portal on the small database, whose ratio
    to the first is the machine's noise.

``upgrade``
    Times the newest migration on the big database (downgraded first when it is
    applied, then upgraded), then no-op ``flask db upgrade`` runs on the big database and
    (``--small``) the small one in turn.

Usage (PostgreSQL only; never the ``test`` database CI uses)::

    nice -n 19 .venv/bin/python bench/data_scale.py fill \\
        --database-url postgresql://postgres@127.0.0.1:5432/scale_big \\
        --residents 1000000 --links 3000000 --journal 10000000
    nice -n 19 .venv/bin/python bench/data_scale.py fill \\
        --database-url postgresql://postgres@127.0.0.1:5432/scale_small \\
        --residents 1000 --links 3000 --journal 10000
    .venv/bin/python bench/data_scale.py measure \\
        --small postgresql://postgres@127.0.0.1:5432/scale_small \\
        --big postgresql://postgres@127.0.0.1:5432/scale_big
    .venv/bin/python bench/data_scale.py upgrade \\
        --database-url postgresql://postgres@127.0.0.1:5432/scale_big

``fill`` lowers the priority of the PostgreSQL backend doing the work as well as its
own (when allowed to), since the server does almost all of it. ``--explain`` on
``measure`` prints ``EXPLAIN (ANALYZE, BUFFERS)`` of every query the pages ran on the
big database.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dashboard_shell import servers, sign_in

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

#: The sandbox's demo identities measured: a typical history and a long one.
TYPICAL, LONG = "amina", "paul-antoine"
#: Each resident's k-th link goes to ``SLUGS[(id + OFFSETS[k]) % 7]``: distinct services
#: of the repository's seven instances, and the typical resident's own three (the second,
#: fifth and sixth) when ``id % 7 == 1``.
SLUGS = list(tomllib.loads((ROOT / "connectors.toml").read_text(encoding="utf-8"))["instances"])
OFFSETS = [0, 3, 4, 1, 2, 5, 6]
START = "2024-12-01 08:00:00+00"
SPAN_DAYS = 730
#: Distinct valid ciphertexts, reused cyclically: encrypting millions one by one in Python
#: would cost more than the whole load, and they decrypt all the same.
CIPHERTEXTS = 512
#: The tables loaded, the big ones.
TABLES = ("citizen", "service_link", "journal_entry")


# -- fill ----------------------------------------------------------------------------------


def admin_url(url: str) -> tuple[str, str]:
    """The maintenance database's URL on the same server, and the database's name."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name or name in {"test", "postgres", "template0", "template1"}:
        raise SystemExit(f"refusing to fill database {name!r}: give a dedicated one")
    return urlunsplit(parts._replace(path="/postgres")), name


def recreate_database(url: str) -> None:
    maintenance, name = admin_url(url)
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def portal_env(url: str, **more: str) -> dict[str, str]:
    return {
        **os.environ,
        "PORTAL_DATABASE_URL": url,
        "PORTAL_CONNECTORS_FILE": str(ROOT / "connectors.toml"),
        "PORTAL_DEMO_LINKS_FILE": str(ROOT / "demo-links.toml"),
        **more,
    }


def flask_db(url: str, *args: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [BIN / "flask", "--app", "portal", "db", *args],
        env=portal_env(url),
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    return time.perf_counter() - started


def ciphertexts(url: str, count: int) -> list[str]:
    """Secrets encrypted by the portal's own box, with the keys the environment gives it
    (``PORTAL_ENCRYPTION_KEYS``, or the development key): what the portal can read."""
    from portal import create_app
    from portal.config import load_settings

    settings = load_settings(
        dict(os.environ),
        database_url=url,
        connectors_file=str(ROOT / "connectors.toml"),
        demo_links_file="",
    )
    box = create_app(settings).extensions["secret_box"]
    return [box.encrypt(f"bench-secret-{n:04d}") for n in range(count)]


def lower_priority(conn: psycopg.Connection) -> None:
    pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, pid, 19)


def demo_links(identity: str) -> list[tuple[str, str, str, str, str]]:
    doc = tomllib.loads((ROOT / "demo-links.toml").read_text(encoding="utf-8"))
    return [
        (
            str(d["sub"]),
            str(d["instance"]),
            str(d["external_id"]),
            str(d.get("account_number", "")),
            str(d.get("display_name", "")),
        )
        for d in doc.get("links", [])
        if d.get("identity") == identity
    ]


CITIZENS = """
INSERT INTO citizen (id, sub, given_name, family_name, usage_name, birthdate, email,
    preferred_locale, created_at, updated_at, last_sign_in_at, calendar_token_hash)
SELECT i,
    md5('sub:' || i) || md5('sub2:' || i) || 'v1',
    (ARRAY['Camille','Léa','Louise','Jade','Emma','Chloé','Manon','Inès','Sarah','Zoé',
           'Lucas','Hugo','Louis','Nathan','Gabriel','Jules','Arthur','Adam','Raphaël',
           'Thomas'])[1 + i % 20],
    (ARRAY['Martin','Bernard','Dubois','Thomas','Robert','Richard','Petit','Durand',
           'Leroy','Moreau','Simon','Laurent','Lefebvre','Michel','Garcia','David',
           'Bertrand','Roux','Vincent','Fournier','Morel','Girard','André','Lefèvre',
           'Mercier','Dupont','Lambert','Bonnet','François','Martinez'])[1 + (i / 20) % 30],
    CASE WHEN i % 9 = 0 THEN 'Lafitte' ELSE '' END,
    DATE '1940-01-01' + ((i * 7919) % 27000)::int,
    'resident' || i || '@example.org',
    CASE WHEN i % 10 = 0 THEN 'en' ELSE NULL END,
    %(start)s::timestamptz + (i::float8 / %(n)s) * interval '365 days',
    %(start)s::timestamptz + (i::float8 / %(n)s) * interval '365 days',
    %(start)s::timestamptz + interval '365 days' + (i::float8 / %(n)s) * interval '360 days',
    CASE WHEN i % 20 = 0 THEN md5('cal:' || i) || md5('cal2:' || i) ELSE NULL END
FROM generate_series(1, %(n)s::bigint) AS i
"""

LINKS = """
INSERT INTO service_link (id, citizen_id, instance_slug, external_id, display_name,
    account_number, secret_ciphertext, linked_at, linked_by_kind, linked_by_id, status)
SELECT j + 1, c, (%(slugs)s::text[])[1 + (c + (%(offsets)s::int[])[1 + k]) % 7],
    'ext-' || c || '-' || k, '',
    lpad((c * 7 + k)::text, 12, '0'),
    CASE WHEN j % 3 = 0 THEN (%(secrets)s::text[])[1 + (j / 3) % %(pool)s] ELSE NULL END,
    %(start)s::timestamptz + (c::float8 / %(n)s) * interval '365 days' + k * interval '9 days',
    'citizen', '', CASE WHEN j % 97 = 0 THEN 'needs_relink' ELSE 'active' END
FROM (SELECT j, 1 + j % %(n)s AS c, j / %(n)s AS k
      FROM generate_series(0, %(links)s::bigint - 1) AS j) s
"""

#: Row ``j`` of the journal: every ``block``-th row is the long-history resident's, the
#: others enumerate everybody's entries (``i``), resident ``1 + (i - 1) % n``, so one
#: resident's entries lie far apart in the table, as they do when appended over years.
JOURNAL = """
INSERT INTO journal_entry (citizen_id, at, actor_kind, actor_id, action,
    connector_instance, outcome, detail, code, params, mandate_id, channel)
SELECT c,
    %(start)s::timestamptz + (j::float8 / %(rows)s) * %(span)s * interval '1 day',
    'citizen', '',
    (ARRAY['sign_in','link','link','link','sign_in','renew_loan','sign_out',
           'export_data','sign_in','pay_invoice'])[1 + k % 10],
    CASE WHEN k % 10 IN (1, 2, 3, 5, 9) THEN slug ELSE '' END,
    'success', '',
    (ARRAY['sign_in','link','link','link','sign_in','renew_loan','sign_out',
           'export_data','sign_in','payment_paid'])[1 + k % 10],
    CASE k % 10
        WHEN 5 THEN json_build_object(
            'title', (ARRAY['Le Petit Prince','Les Misérables','Vingt mille lieues sous les mers',
                           'L''Étranger','Madame Bovary'])[1 + j % 5],
            'new_due_date', to_char(DATE '2024-12-01' + (j / %(per_day)s)::int + 21,
                                    'YYYY-MM-DD'))
        WHEN 9 THEN json_build_object('invoice', 'Facture ' || (100000 + j % 900000),
                                      'amount_cents', 1500 + j % 9000)
        ELSE NULL END,
    NULL, 'web'
FROM (
    SELECT j,
        CASE WHEN j % %(block)s = 0 THEN %(long)s
             ELSE 1 + (j - j / %(block)s - 1) % %(n)s END AS c,
        CASE WHEN j % %(block)s = 0 THEN j / %(block)s
             ELSE (j - j / %(block)s - 1) / %(n)s END AS k,
        CASE WHEN j % %(block)s = 0 THEN (%(long_slugs)s::text[])[1 + (j / %(block)s) % 3]
             ELSE (%(slugs)s::text[])[1 + (1 + (j - j / %(block)s - 1) % %(n)s
                  + (%(offsets)s::int[])[1 + ((j - j / %(block)s - 1) / %(n)s) % 3]) % 7] END
            AS slug
    FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS j
) s
"""


def with_params(sql: str) -> str:
    """``%`` is SQL's modulo in the statements above: doubled for psycopg, except in
    ``%(name)s`` placeholders."""
    return re.sub(r"%(?!\()", "%%", sql)


def fill(args: argparse.Namespace) -> None:
    os.nice(19 - os.nice(0))
    n, links, journal, long_history = args.residents, args.links, args.journal, args.long_history
    if len(SLUGS) != len(OFFSETS):
        raise SystemExit(f"the load spreads links over {len(OFFSETS)} instances")
    if links > len(OFFSETS) * n:
        raise SystemExit(f"at most {len(OFFSETS)} links a resident")
    started = time.perf_counter()
    recreate_database(args.database_url)
    schema_s = flask_db(args.database_url, "upgrade")
    secrets = ciphertexts(args.database_url, CIPHERTEXTS)
    # The typical resident is one whose generated links are the demo identity's own
    # services; the long-history one sits next to it.
    typical = (n // 2) - (n // 2) % 7 + 1
    long = typical + 1
    long_links = demo_links(LONG)
    block = max(2, journal // max(long_history, 1) + 1)
    rows = journal + journal // (block - 1)
    params = {
        "n": n,
        "links": links,
        "start": START,
        "span": SPAN_DAYS,
        "rows": rows,
        "per_day": max(1, rows // SPAN_DAYS),
        "slugs": SLUGS,
        "offsets": OFFSETS,
        "secrets": secrets,
        "pool": CIPHERTEXTS,
        "block": block,
        "long": long,
        "long_slugs": [link[1] for link in long_links],
    }
    timings: dict[str, float] = {}
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        lower_priority(conn)
        # Foreign keys are right by construction: not checked row by row while loading.
        conn.execute("SET session_replication_role = replica")
        conn.execute("SET maintenance_work_mem = '256MB'")

        def step(name: str, sql: str, **extra: object) -> None:
            t0 = time.perf_counter()
            conn.execute(with_params(sql), {**params, **extra})
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - t0
            print(f"{name}: {timings[name]:.1f} s", flush=True)

        step("residents", CITIZENS)
        step("links", LINKS)
        chunk = 1_000_000
        for first in range(1, rows + 1, chunk):
            step("journal", JOURNAL, first=first, last=min(rows, first + chunk - 1))
        for table in TABLES:
            conn.execute(
                sql.SQL(
                    "SELECT setval(pg_get_serial_sequence({name}, 'id'), "
                    "(SELECT max(id) FROM {table}))"
                ).format(name=sql.Literal(table), table=sql.Identifier(table))
            )
        make_demo_residents(conn, typical, long)
        t0 = time.perf_counter()
        conn.execute("SET session_replication_role = DEFAULT")
        conn.execute("VACUUM (ANALYZE) citizen, service_link, journal_entry")
        timings["vacuum analyze"] = time.perf_counter() - t0
        counts = count_rows(conn)
        histories = {
            sub: conn.execute(
                "SELECT count(*) FROM journal_entry j JOIN citizen c ON c.id = j.citizen_id "
                "WHERE c.sub = %s",
                (sub,),
            ).fetchone()[0]
            for sub in (demo_links(TYPICAL)[0][0], long_links[0][0])
        }
        size = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
        size_text = size.fetchone()[0]
    check_secrets(args.database_url)
    total = time.perf_counter() - started
    print(f"""
### Fill — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, `{admin_url(args.database_url)[1]}`

| what | count |
|---|---|
| residents | {counts["citizen"]:,} |
| links | {counts["service_link"]:,} |
| journal entries | {counts["journal_entry"]:,} |
| journal of `{TYPICAL}` / `{LONG}` | {histories[demo_links(TYPICAL)[0][0]]} / {
        histories[long_links[0][0]]
    } |
| database size | {size_text} |

Schema (`flask db upgrade` from empty) {schema_s:.1f} s; {
        "; ".join(f"{k} {v:.1f} s" for k, v in timings.items())
    }; total {total:.0f} s.
""")


def make_demo_residents(conn: psycopg.Connection, typical: int, long: int) -> None:
    """Two generated residents become the sandbox's demo identities: their ``sub`` and
    their links (updated in place, so they stay where the load put them)."""
    for citizen_id, identity in ((typical, TYPICAL), (long, LONG)):
        links = demo_links(identity)
        conn.execute("UPDATE citizen SET sub = %s WHERE id = %s", (links[0][0], citizen_id))
        ids = [
            row[0]
            for row in conn.execute(
                "SELECT id FROM service_link WHERE citizen_id = %s ORDER BY id", (citizen_id,)
            )
        ]
        if len(ids) < len(links):
            raise SystemExit(f"{identity} needs {len(links)} links a resident")
        conn.execute(
            "UPDATE service_link SET instance_slug = 'bench-' || id WHERE citizen_id = %s",
            (citizen_id,),
        )
        for link_id, (_sub, slug, external_id, number, name) in zip(ids, links, strict=False):
            conn.execute(
                "UPDATE service_link SET instance_slug = %s, external_id = %s, "
                "account_number = %s, display_name = %s, secret_ciphertext = NULL, "
                "linked_by_kind = 'system', linked_by_id = 'demo', status = 'active' "
                "WHERE id = %s",
                (slug, external_id, number, name, link_id),
            )
        conn.execute(
            "DELETE FROM service_link WHERE citizen_id = %s AND instance_slug LIKE 'bench-%%'",
            (citizen_id,),
        )


def check_secrets(url: str) -> None:
    """Every distinct stored secret decrypts with the portal's keys."""
    from portal import create_app
    from portal.config import load_settings

    settings = load_settings(
        dict(os.environ), database_url=url, connectors_file=str(ROOT / "connectors.toml")
    )
    box = create_app(settings).extensions["secret_box"]
    with psycopg.connect(url) as conn:
        stored = conn.execute(
            "SELECT DISTINCT secret_ciphertext FROM service_link "
            "WHERE secret_ciphertext IS NOT NULL AND id <= %s",
            (CIPHERTEXTS * 3 + 3,),
        ).fetchall()
    for (ciphertext,) in stored:
        box.decrypt(ciphertext)
    print(f"{len(stored)} distinct stored secrets decrypt with the portal's keys")


# -- measure -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    label: str
    identity: str
    path: str
    partial: bool = False


def later_page(client: httpx.Client, hops: int) -> str:
    """The address ``hops`` pages older than the first, followed as a reader would (the
    ``rel="next"`` link), whatever the paging's parameters are."""
    path = "/account/activity"
    for _ in range(hops):
        found = re.search(r'href="([^"]+)"[^>]*rel="next"', client.get(path).text)
        if found is None:
            break
        path = found.group(1).replace("&amp;", "&")
    return path


def timed_get(client: httpx.Client, page: Page) -> float:
    headers = {"HX-Request": "true"} if page.partial else {}
    t0 = time.perf_counter()
    response = client.get(page.path, headers=headers)
    elapsed = time.perf_counter() - t0
    if response.status_code != 200:
        raise RuntimeError(f"{page.label}: HTTP {response.status_code}")
    return elapsed


def p95(times: list[float]) -> float:
    ordered = sorted(times)
    return ordered[max(0, int(len(ordered) * 0.95) - 1)]


def pages_of(clients: dict[str, httpx.Client], hops: int) -> list[Page]:
    later = later_page(clients[LONG], hops)
    return [
        Page(f"shell `/`, {TYPICAL}", TYPICAL, "/"),
        Page(f"card `bib-merignac`, {TYPICAL}", TYPICAL, "/services/bib-merignac/card", True),
        Page(f"Mon activité, first page, {TYPICAL}", TYPICAL, "/account/activity"),
        Page(f"shell `/`, {LONG}", LONG, "/"),
        Page(f"card `bib-pessac`, {LONG}", LONG, "/services/bib-pessac/card", True),
        Page(f"Mon activité, first page, {LONG}", LONG, "/account/activity"),
        # The page's address carries a cursor of that database's own ids: same page, not
        # the same address.
        Page(f"Mon activité, {hops} pages older, {LONG}", LONG, later),
        Page(f"Mon activité, one service, {LONG}", LONG, "/account/activity?service=eau-pessac"),
    ]


def measure(args: argparse.Namespace) -> None:
    sizes = {"small": args.small, "big": args.big}
    if args.control:
        # A second portal on the small database: how far apart two identical set-ups
        # come out on this machine, the noise the big/small ratio is read against.
        sizes["control"] = args.small
    with contextlib.ExitStack() as stack:
        clients: dict[str, dict[str, httpx.Client]] = {}
        urls: dict[str, tuple[str, str, Path]] = {}
        for size, url in sizes.items():
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            sandbox_url, portal_url = stack.enter_context(
                servers(workdir, settings={"PORTAL_DATABASE_URL": url})
            )
            urls[size] = (sandbox_url, portal_url, workdir)
            clients[size] = {who: sign_in(portal_url, who) for who in (TYPICAL, LONG)}
        by_size = {size: pages_of(clients[size], args.hops) for size in sizes}
        pages = by_size["big"]
        if any([p.label for p in found] != [p.label for p in pages] for found in by_size.values()):
            raise RuntimeError("the two databases do not give the same pages")
        times: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.warmup):
            for n, page in enumerate(pages):
                for size in sizes:
                    timed_get(clients[size][page.identity], by_size[size][n])
        for i in range(args.iterations):
            # Rotate which database goes first, so none always follows another.
            shift = i % len(sizes)
            order = list(sizes)[shift:] + list(sizes)[:shift]
            for n, page in enumerate(pages):
                for size in order:
                    elapsed = timed_get(clients[size][page.identity], by_size[size][n])
                    times.setdefault((page.label, size), []).append(elapsed)
        if args.explain:
            sandbox_url, portal_url, workdir = urls["big"]
            explain(args.big, sandbox_url, portal_url, workdir, pages)
    counts = {size: row_counts(url) for size, url in sizes.items()}
    control_note = (
        "\nControl: a second portal on the small database, its ratio to the first."
        if args.control
        else ""
    )
    control_head = " control median ratio | control p95 ratio |" if args.control else ""
    control_rule = "---|---|" if args.control else ""
    print(f"""
### Data scale — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC

Machine: {machine()}; PostgreSQL {server_version(args.big)};
gunicorn 2 workers × 4 threads per database, one sandbox each, on loopback.
Small: {counts["small"]}. Big: {counts["big"]}.
{args.iterations} sequential requests per page and database, in turn (after {args.warmup}
warm-up rounds).{control_note}

| page | small median | big median | ratio | small p95 | big p95 | ratio |{control_head}
|---|---|---|---|---|---|---|{control_rule}""")
    for page in pages:
        small, big = times[(page.label, "small")], times[(page.label, "big")]
        s_med, b_med = statistics.median(small) * 1000, statistics.median(big) * 1000
        s_p95, b_p95 = p95(small) * 1000, p95(big) * 1000
        row = (
            f"| {page.label} | {s_med:.1f} ms | {b_med:.1f} ms | {b_med / s_med:.2f} "
            f"| {s_p95:.1f} ms | {b_p95:.1f} ms | {b_p95 / s_p95:.2f} |"
        )
        if args.control:
            again = times[(page.label, "control")]
            row += (
                f" {statistics.median(again) * 1000 / s_med:.2f} "
                f"| {p95(again) * 1000 / s_p95:.2f} |"
            )
        print(row)


def count_rows(conn: psycopg.Connection) -> dict[str, int]:
    query = sql.SQL("SELECT count(*) FROM {}")
    return {t: conn.execute(query.format(sql.Identifier(t))).fetchone()[0] for t in TABLES}


def row_counts(url: str) -> str:
    with psycopg.connect(url) as conn:
        n = count_rows(conn)
    return (
        f"{n['citizen']:,} residents, {n['service_link']:,} links, "
        f"{n['journal_entry']:,} journal entries"
    )


def server_version(url: str) -> str:
    with psycopg.connect(url) as conn:
        return str(conn.execute("SHOW server_version").fetchone()[0]).split()[0]


def machine() -> str:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores, {cpu or 'unknown CPU'}; Python {sys.version.split()[0]}"


# -- explain -------------------------------------------------------------------------------


def explain(url: str, sandbox_url: str, portal_url: str, workdir: Path, pages: list[Page]) -> None:
    """Every query the pages run, logged by an engine listener in a portal built in this
    process on the big database, then explained with the parameters it ran with."""
    from flask.testing import FlaskClient
    from sqlalchemy import event

    from portal import create_app
    from portal.config import load_settings
    from portal.extensions import db

    settings = load_settings(
        {},
        database_url=url,
        connectors_file=str(workdir / "connectors.toml"),
        demo_links_file=str(ROOT / "demo-links.toml"),
        fc_issuer=sandbox_url + "/api/v2",
        base_url=portal_url,
    )
    app = create_app(settings)
    #: (page, statement) -> parameters: each page's own, the same text for another
    #: resident being another plan.
    statements: dict[tuple[str, str], object] = {}

    def log_sql(_conn, _cursor, statement, parameters, _context, _many) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().split(None, 1)[0].upper() in {"SELECT", "UPDATE", "DELETE"}:
            statements.setdefault((current[0], statement), parameters)

    current = [""]
    with app.app_context():
        engine = db.engine
    clients: dict[str, FlaskClient] = {}
    for who in (TYPICAL, LONG):
        clients[who] = test_client_sign_in(app, who)
    event.listen(engine, "before_cursor_execute", log_sql)
    try:
        for page in pages:
            current[0] = page.label
            headers = {"HX-Request": "true"} if page.partial else {}
            clients[page.identity].get(page.path, headers=headers)
    finally:
        event.remove(engine, "before_cursor_execute", log_sql)
    print("\n## EXPLAIN (ANALYZE, BUFFERS) of the pages' queries on the big database\n")
    with engine.connect() as conn:
        for (label, statement), parameters in statements.items():
            plan = conn.exec_driver_sql(
                "EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters
            ).scalars()
            text = "\n".join(plan)
            scans = [t for t in TABLES if f"Seq Scan on {t}" in text]
            flag = f"SEQUENTIAL SCAN on {', '.join(scans)}" if scans else "no sequential scan"
            print(f"-- {label}: {flag}\n{statement}\n{text}\n")
            conn.rollback()


def test_client_sign_in(app, identity: str):  # type: ignore[no-untyped-def]
    """The sandbox's sign-in, with Flask's test client on the portal's side."""
    client = app.test_client()
    start = client.get("/auth/franceconnect/login")
    authorize = start.headers["Location"]
    page = httpx.get(authorize, timeout=10)
    transaction = re.search(r'name="transaction_id"\s+value="([^"]+)"', page.text)
    decision = httpx.post(
        authorize.split("/authorize")[0] + "/authorize/decision",
        data={"transaction_id": transaction.group(1), "identity": identity},  # type: ignore[union-attr]
        timeout=10,
    )
    back = urlsplit(decision.headers["Location"])
    done = client.get(f"{back.path}?{back.query}")
    if done.status_code != 303:
        raise RuntimeError(f"sign-in of {identity}: HTTP {done.status_code}")
    return client


# -- upgrade -------------------------------------------------------------------------------


def revisions(url: str) -> tuple[str, str]:
    """The database's revision and the newest migration's ``down_revision``."""
    current = subprocess.run(
        [BIN / "flask", "--app", "portal", "db", "current"],
        env=portal_env(url),
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout.split()
    heads = subprocess.run(
        [BIN / "flask", "--app", "portal", "db", "show", "head"],
        env=portal_env(url),
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    parent = re.search(r"Parent:\s+(\w+)", heads)
    return (current[0] if current else ""), (parent.group(1) if parent else "")


def upgrade(args: argparse.Namespace) -> None:
    url = args.database_url
    current, parent = revisions(url)
    lines = []
    if current != parent:
        down_s = flask_db(url, "downgrade", parent)
        lines.append(f"| newest migration, downgrade (to `{parent}`) | {down_s:.1f} s |")
    up_s = flask_db(url, "upgrade")
    lines.insert(0, f"| newest migration, upgrade (from `{parent}`) | {up_s:.1f} s |")
    # No-ops on both databases in turn, so both see the same machine.
    noop: dict[str, list[float]] = {"big": [], "small": []}
    for _ in range(args.rounds):
        noop["big"].append(flask_db(url, "upgrade"))
        if args.small:
            noop["small"].append(flask_db(args.small, "upgrade"))
    for size, times in noop.items():
        if times:
            lines.append(
                f"| no-op `flask db upgrade`, {size} database (median of {len(times)}) "
                f"| {statistics.median(times):.1f} s |"
            )
    print(f"""
### Migrations at scale — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC

Machine: {machine()}; PostgreSQL {server_version(url)}; {row_counts(url)}.
Each figure is a whole `flask --app portal db …` process, start-up included.

| step | time |
|---|---|""")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p_fill = commands.add_parser("fill", help="create and load a database")
    p_fill.add_argument("--database-url", required=True)
    p_fill.add_argument("--residents", type=int, default=1000)
    p_fill.add_argument("--links", type=int, default=3000)
    p_fill.add_argument("--journal", type=int, default=10000)
    p_fill.add_argument("--long-history", type=int, default=1000)
    p_measure = commands.add_parser("measure", help="time the pages, small against big")
    p_measure.add_argument("--small", required=True, help="the 1,000-resident database")
    p_measure.add_argument("--big", required=True, help="the 1,000,000-resident database")
    p_measure.add_argument("--iterations", type=int, default=200)
    p_measure.add_argument("--warmup", type=int, default=10)
    p_measure.add_argument("--hops", type=int, default=25, help="how far the later page is")
    p_measure.add_argument("--explain", action="store_true")
    p_measure.add_argument(
        "--control", action="store_true", help="also a second portal on the small database"
    )
    p_upgrade = commands.add_parser("upgrade", help="time migrations on the big database")
    p_upgrade.add_argument("--database-url", required=True)
    p_upgrade.add_argument("--small", default="", help="also a no-op on this database")
    p_upgrade.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    {"fill": fill, "measure": measure, "upgrade": upgrade}[args.command](args)


if __name__ == "__main__":
    main()
