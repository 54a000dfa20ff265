"""The desk's side of mandates, over the Flask test client, agents signing in through
the sandbox's ProConnect: the desk's home and its search, the desk journal, the
receipt (page and PDF), and ending a mandate at any desk by its reference. An agent
of one desk sees nothing of another's, whatever the id or the reference."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pypdf import PdfReader

from portal.extensions import db
from portal.mandates.desk import LOOKUP_LIMIT
from portal.models import (
    AssistedSession,
    Citizen,
    DeskJournalEntry,
    JournalEntry,
    Mandate,
    MandateRevocation,
)
from portal.models._types import utcnow
from tests.integration.test_desks import SIRET_A, SIRET_B, add_desk, agent_row, grant, page_token
from tests.support import (
    agent_sign_in,
    choose_agent,
    open_test_mandate,
    provision_agent,
    start_agent_sign_in,
)

REFERENCE_RE = re.compile(r"M-[A-Z0-9]{4}-[A-Z0-9]{4}")


def add_citizen(app: Flask, given: str, family: str) -> int:
    with app.app_context():
        citizen = Citizen(sub=f"sub-{given}-{family}", given_name=given, family_name=family)
        db.session.add(citizen)
        db.session.commit()
        return citizen.id


@pytest.fixture
def world(app: Flask) -> dict[str, int | str]:
    """Desk A (Karim adviser) and desk B (Claire referent, who may do what an adviser
    may), a mandate of each: Élodie Martin at A, Bernard Petit at B."""
    a = add_desk(app, "France services de Pessac", SIRET_A)
    b = add_desk(app, "Mairie de Mérignac", SIRET_B, communes="Mérignac")
    for name in ("claire", "karim"):
        provision_agent(app, name)
    grant(app, "karim", "adviser", a)
    grant(app, "claire", "referent", b)
    elodie = add_citizen(app, "Élodie", "Martin")
    bernard = add_citizen(app, "Bernard", "Petit")
    karim_id = agent_row(app, "karim").id
    claire_id = agent_row(app, "claire").id
    ref_a = open_test_mandate(
        app, citizen_id=elodie, desk_id=a, agent_id=karim_id, scopes=["bib-pessac"]
    )
    ref_b = open_test_mandate(
        app,
        citizen_id=bernard,
        desk_id=b,
        agent_id=claire_id,
        scopes=["bib-merignac", "eau-bordeaux:payments"],
        duration="1y",
    )
    chloe = add_citizen(app, "Chloé", "Durand")
    open_test_mandate(
        app, citizen_id=chloe, desk_id=a, agent_id=karim_id, scopes=["bib-pessac"], duration="1d"
    )
    return {"a": a, "b": b, "elodie": elodie, "bernard": bernard, "ref_a": ref_a, "ref_b": ref_b}


def signed_in(app: Flask, agent: str) -> FlaskClient:
    client = app.test_client()
    assert agent_sign_in(client, agent).status_code == 303
    return client


def mfa_sign_in(client: FlaskClient, agent: str):
    """Sophie signs in with a second factor this time."""
    return client.get(choose_agent(start_agent_sign_in(client), agent, acr="eidas1-mfa"))


def text(r) -> str:
    return r.get_data(as_text=True)


# -- the desk's home -----------------------------------------------------------------------


def test_the_desk_home_lists_only_this_desks_mandates(app: Flask, world: dict) -> None:
    karim = signed_in(app, "karim")
    r = karim.get(f"/agents/desk/{world['a']}")
    assert r.status_code == 200
    html = text(r)
    assert "Élodie Martin" in html and world["ref_a"] in html
    assert "Bernard Petit" not in html and world["ref_b"] not in html
    assert "bib-pessac" in html  # no connectors here: the slug stands for the title
    # Opening a mandate, the journal and ending a mandate are linked.
    assert f'href="/agents/desk/{world["a"]}/journal"' in html
    assert f'href="/agents/desk/{world["a"]}/revoke"' in html
    assert f'href="/agents/desk/{world["a"]}/mandates/new"' in html
    # The 1-day mandate ends within 30 days: listed for renewal; the month's does not.
    ending = html.split("prennent fin dans les 30 jours")[1]
    assert "Chloé Durand\u00a0: jusqu" in ending and "Élodie" not in ending
    # The agents' home links each desk's home.
    home = text(karim.get("/agents/"))
    assert f'href="/agents/desk/{world["a"]}"' in home
    assert f'href="/agents/desk/{world["b"]}"' not in home


def test_the_search_finds_by_name_within_the_desk_only(app: Flask, world: dict) -> None:
    karim = signed_in(app, "karim")
    base = f"/agents/desk/{world['a']}"
    for q in ("elodie", "MARTIN", "Élo", "  martin "):
        html = text(karim.get(base, query_string={"q": q}))
        assert "Élodie Martin" in html and "1 personne trouvée" in html, q
    for q in ("Bernard", "Petit", "zzz"):
        html = text(karim.get(base, query_string={"q": q}))
        assert "Bernard Petit" not in html
        assert "Aucune personne de ce nom" in html
    # Desk B's own search finds Bernard.
    claire = signed_in(app, "claire")
    html = text(claire.get(f"/agents/desk/{world['b']}", query_string={"q": "petit"}))
    assert "Bernard Petit" in html and "Élodie" not in html


def test_the_desk_home_shows_todays_visits(app: Flask, world: dict) -> None:
    now = utcnow()
    with app.app_context():
        mandate = db.session.execute(
            db.select(Mandate).filter_by(reference=world["ref_a"])
        ).scalar_one()
        karim_id = agent_row(app, "karim").id
        db.session.add_all(
            [
                AssistedSession(
                    id="today",
                    mandate_id=mandate.id,
                    agent_id=karim_id,
                    desk_id=world["a"],
                    channel="phone",
                    started_at=now - timedelta(minutes=5),
                ),
                AssistedSession(
                    id="long-ago",
                    mandate_id=mandate.id,
                    agent_id=karim_id,
                    desk_id=world["a"],
                    started_at=now - timedelta(days=3),
                    ended_at=now - timedelta(days=3),
                ),
            ]
        )
        db.session.commit()
    html = text(signed_in(app, "karim").get(f"/agents/desk/{world['a']}"))
    visits = html.split('class="desk-visits"')[1].split("</table>")[0]
    assert "Élodie Martin" in visits and "Karim BENALI" in visits
    assert "Par téléphone" in visits and "en cours" in visits
    assert visits.count("<tr>") == 2  # the header and today's one


# -- who is refused ------------------------------------------------------------------------


def test_another_desks_adviser_sees_nothing_of_this_desk(app: Flask, world: dict) -> None:
    claire = signed_in(app, "claire")
    a, ref_a, ref_b = world["a"], world["ref_a"], world["ref_b"]
    for path in (f"/agents/desk/{a}", f"/agents/desk/{a}/journal", f"/agents/desk/{a}/revoke"):
        assert claire.get(path).status_code == 403, path
    for ref in (ref_a, ref_b, "M-AAAA-AAAA", "nothing"):
        for tail in ("receipt", "receipt.pdf"):
            r = claire.get(f"/agents/desk/{a}/mandates/{ref}/{tail}")
            assert r.status_code == 403, (ref, tail)
    # On her own desk, desk A's mandate is the same 404 as one that does not exist.
    b = world["b"]
    for ref in (ref_a, "M-AAAA-AAAA", "x" * 300, "%00"):
        assert claire.get(f"/agents/desk/{b}/mandates/{ref}/receipt").status_code == 404
        assert claire.get(f"/agents/desk/{b}/mandates/{ref}/receipt.pdf").status_code == 404
        assert claire.get(f"/agents/desk/{b}/revocations/{ref}").status_code == 404
    assert claire.get(f"/agents/desk/{b}/mandates/{ref_b}/receipt").status_code == 200
    for desk_id in ("999999", "abc", "0", "-1"):
        assert claire.get(f"/agents/desk/{desk_id}").status_code == 404


def test_an_agent_without_a_desk_role_or_signed_out_is_refused(app: Flask, world: dict) -> None:
    anonymous = app.test_client()
    r = anonymous.get(f"/agents/desk/{world['a']}")
    assert r.status_code == 302 and r.headers["Location"] == "/agents/connexion"
    # An agent not provisioned never gets a session; once provisioned, with no role on
    # the desk, they are refused it.
    sophie = app.test_client()
    assert mfa_sign_in(sophie, "sophie").status_code == 403
    assert sophie.get(f"/agents/desk/{world['a']}/journal").status_code == 302
    provision_agent(app, "sophie")
    assert mfa_sign_in(sophie, "sophie").status_code == 303
    for path in ("", "/journal", "/revoke", f"/mandates/{world['ref_a']}/receipt"):
        r = sophie.get(f"/agents/desk/{world['a']}{path}")
        assert r.status_code == 403 and "pas le rôle nécessaire" in text(r), path
    # A service owner without a desk role is refused the desk.
    from tests.integration.test_desks import cli, ids

    assert cli(app, "agents", "revoke", *ids("karim"), "--role", "adviser", "--desk",
               str(world["a"])).exit_code == 0  # fmt: skip
    owner = cli(app, "agents", "grant", *ids("karim"), "--role", "service_owner",
                "--instances", "bib-pessac")  # fmt: skip
    assert owner.exit_code == 0
    karim = signed_in(app, "karim")
    assert karim.get(f"/agents/desk/{world['a']}").status_code == 403
    receipt = f"/agents/desk/{world['a']}/mandates/{world['ref_a']}/receipt"
    assert karim.get(receipt).status_code == 403


# -- the receipt ---------------------------------------------------------------------------


def test_the_receipt_page_shows_the_terms_and_their_qr_code(app: Flask, world: dict) -> None:
    karim = signed_in(app, "karim")
    r = karim.get(f"/agents/desk/{world['a']}/mandates/{world['ref_a']}/receipt")
    assert r.status_code == 200
    html = text(r)
    with app.app_context():
        mandate = db.session.execute(
            db.select(Mandate).filter_by(reference=world["ref_a"])
        ).scalar_one()
        terms_hash = mandate.terms_hash
    assert world["ref_a"] in html and "Élodie Martin" in html
    assert "France services de Pessac" in html and "05 56 00 00 00" in html
    assert '<svg role="img" aria-label="Code QR' in html and terms_hash in html
    assert "style=" not in html.split("<svg", 1)[1].split("</svg>", 1)[0]
    assert "En confirmant, vous autorisez" in html  # the legal text, as agreed to
    assert "Mes mandats" in html and "ne permet pas de payer" in html
    assert "1 mois" in html and "Au guichet" in html


def test_the_receipt_pdf_has_the_reference_and_the_services(
    services_app: Flask,
) -> None:
    a = add_desk(services_app, "France services de Pessac", SIRET_A)
    provision_agent(services_app, "karim")
    grant(services_app, "karim", "adviser", a)
    citizen = add_citizen(services_app, "Œdipe", "L’Hôte")
    reference = open_test_mandate(
        services_app,
        citizen_id=citizen,
        desk_id=a,
        agent_id=agent_row(services_app, "karim").id,
        scopes=["bib-pessac", "eau-pessac:payments"],
        duration="6m",
    )
    karim = signed_in(services_app, "karim")
    r = karim.get(f"/agents/desk/{a}/mandates/{reference}/receipt.pdf")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/pdf"
    disposition = r.headers["Content-Disposition"]
    assert disposition.startswith("attachment") and reference in disposition
    reader = PdfReader(io.BytesIO(r.data))
    assert len(reader.pages) >= 1
    words = " ".join(page.extract_text() for page in reader.pages)
    flat = " ".join(words.split())
    assert reference in flat
    assert "OEdipe L'Hôte" in flat  # outside latin-1, written with its look-alikes
    html = text(karim.get(f"/agents/desk/{a}/mandates/{reference}/receipt"))
    for service in re.findall(r"<li>([^<]+)</li>", html.split("Services couverts")[1])[:2]:
        plain = service.replace("&#39;", "'").replace("\u202f", " ").replace("\u2019", "'")
        assert " ".join(plain.split()) in flat, service
    assert "Payer les factures" in flat


# -- ending a mandate at a desk ------------------------------------------------------------


def revoke_form(client: FlaskClient, desk: int, reference: str, confirm: bool) -> object:
    token = page_token(client, f"/agents/desk/{desk}/revoke")
    data = {"csrf_token": token, "reference": reference, **({"confirm": "1"} if confirm else {})}
    return client.post(f"/agents/desk/{desk}/revoke", data=data)


def test_any_desk_ends_a_mandate_by_its_reference_once(app: Flask, world: dict) -> None:
    claire = signed_in(app, "claire")
    b, a, ref_a = world["b"], world["a"], world["ref_a"]
    typed = ref_a.lower().replace("-", " ")
    r = revoke_form(claire, b, typed, confirm=False)
    assert r.status_code == 200
    html = text(r)
    assert "Confirmer la fin du mandat " + ref_a in html
    assert "Élodie Martin" in html and "France services de Pessac" in html
    r = revoke_form(claire, b, ref_a, confirm=True)
    assert r.status_code == 303
    assert r.headers["Location"] == f"/agents/desk/{b}/revocations/{ref_a}"
    receipt = text(claire.get(r.headers["Location"]))
    assert "Récépissé de fin de mandat" in receipt and ref_a in receipt
    assert "Mairie de Mérignac" in receipt and "Élodie Martin" in receipt
    with app.app_context():
        mandate = db.session.execute(db.select(Mandate).filter_by(reference=ref_a)).scalar_one()
        [revocation] = mandate.revocations
        assert revocation.by_kind == "desk" and revocation.by_label == "Mairie de Mérignac"
        assert revocation.by_id == str(agent_row(app, "claire").id)
        journal = (
            db.session.execute(db.select(DeskJournalEntry).order_by(DeskJournalEntry.id))
            .scalars()
            .all()
        )
        assert [(e.desk_id, e.action, e.mandate_reference) for e in journal] == [
            (a, "mandate_revoked", ref_a),
            (b, "mandate_revoked", ref_a),
        ]
        [entry] = db.session.execute(
            db.select(JournalEntry).filter_by(citizen_id=world["elodie"])
        ).scalars()
        assert entry.code == "mandate_revoked_at_desk" and entry.mandate_id == mandate.id
    # Both journals say it, without the resident's name.
    for client, desk in ((claire, b), (signed_in(app, "karim"), a)):
        page = text(client.get(f"/agents/desk/{desk}/journal"))
        assert (
            "Mandat révoqué" in page
            and ref_a in page
            and "Karim BENALI" not in page
            and "Claire Anne DUBOIS" in page
        )
        assert "Élodie" not in page and "Martin" not in page
    # Again: harmless, and said so.
    r = revoke_form(claire, b, ref_a, confirm=True)
    assert r.status_code == 303
    assert "avait déjà pris fin" in text(claire.get(r.headers["Location"]))
    again = text(revoke_form(claire, b, ref_a, confirm=False))
    assert "a déjà pris fin" in again and 'name="confirm"' not in again
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(MandateRevocation)) == 1
    # Desk A's home no longer lists it; only the desk that ended it has that receipt.
    assert "Élodie Martin" not in text(signed_in(app, "karim").get(f"/agents/desk/{a}"))
    assert signed_in(app, "karim").get(f"/agents/desk/{a}/revocations/{ref_a}").status_code == 404


def test_an_unknown_reference_is_said_plainly_and_lookups_are_limited(
    app: Flask, world: dict
) -> None:
    karim = signed_in(app, "karim")
    a = world["a"]
    for typed in ("M-AAAA-AAAA", "hello"):
        r = revoke_form(karim, a, typed, confirm=False)
        assert r.status_code == 200
        assert f"Aucun mandat ne correspond à la référence «\u00a0{typed}\u00a0»" in text(r)
    r = revoke_form(karim, a, "M-BBBB-BBBB", confirm=True)
    assert "Aucun mandat ne correspond" in text(r)
    amount = int(LOOKUP_LIMIT.split()[0])
    for _n in range(amount - 3):
        assert revoke_form(karim, a, "M-CCCC-CCCC", confirm=False).status_code == 200
    r = revoke_form(karim, a, world["ref_b"], confirm=False)
    assert r.status_code == 429 and "trop de références" in text(r)
    assert "Bernard" not in text(r)
    # Another agent has their own count.
    claire = signed_in(app, "claire")
    assert "Bernard Petit" in text(revoke_form(claire, world["b"], world["ref_b"], confirm=False))


def test_the_revocation_form_refuses_a_missing_token(app: Flask, world: dict) -> None:
    karim = signed_in(app, "karim")
    r = karim.post(
        f"/agents/desk/{world['a']}/revoke", data={"reference": world["ref_a"], "confirm": "1"}
    )
    assert r.status_code == 400
    with app.app_context():
        assert db.session.execute(db.select(MandateRevocation)).first() is None


# -- the desk journal ----------------------------------------------------------------------


def test_the_desk_journal_pages_newest_first(app: Flask, world: dict) -> None:
    from portal.mandates import desk_journal

    with app.app_context():
        mandate = db.session.execute(
            db.select(Mandate).filter_by(reference=world["ref_a"])
        ).scalar_one()
        for n in range(55):
            desk_journal(
                world["a"],
                "visit_started" if n % 2 else "phone_session",
                mandate=mandate,
                params={"channel": "phone"},
            )
        desk_journal(world["b"], "mandate_opened", params={"n": "B"})
        db.session.commit()
        ids = list(
            db.session.execute(
                db.select(DeskJournalEntry.id)
                .filter_by(desk_id=world["a"])
                .order_by(DeskJournalEntry.id.desc())
            ).scalars()
        )
    karim = signed_in(app, "karim")
    first = text(karim.get(f"/agents/desk/{world['a']}/journal"))
    assert first.count(world["ref_a"]) == 50
    assert "Aide par téléphone" in first and "Début d&#39;une visite" in first
    assert "Mandat ouvert" not in first  # desk B's line
    match = re.search(r'href="(/agents/desk/\d+/journal\?before=(\d+))"', first)
    assert match and int(match.group(2)) == ids[49]
    second = text(karim.get(match.group(1)))
    assert second.count(world["ref_a"]) == 5 and "plus anciennes" not in second
    assert karim.get(f"/agents/desk/{world['a']}/journal?before=abc").status_code == 200


def test_the_residents_journal_says_the_mandate_ended_at_a_desk(app: Flask, world: dict) -> None:
    from portal.journal_text import journal_line

    claire = signed_in(app, "claire")
    assert revoke_form(claire, world["b"], world["ref_a"], confirm=True).status_code == 303
    with app.test_request_context("/"):
        [entry] = db.session.execute(
            db.select(JournalEntry).filter_by(citizen_id=world["elodie"])
        ).scalars()
        line = journal_line(entry)
    assert line.action == "Fin d'un mandat, demandée au guichet"
    assert str(line.detail) == f"mandat {world['ref_a']} – Mairie de Mérignac"
