"""A resident links their accounts by proving they own them, and unlinks them — over
real HTTP to the sandbox's back-ends, wrong proofs, locked cards and outages included."""

from __future__ import annotations

import re

import pytest
from cryptography.fernet import Fernet
from flask import Flask
from flask.testing import FlaskClient

from portal import create_app
from portal.crypto import SecretBox
from portal.extensions import db
from portal.models import Citizen, ConnectorSnapshot, JournalEntry, ServiceLink
from tests.support import (
    DEMO_LINKS_FILE,
    Sandbox,
    count_calls,
    empty_tables,
    portal_settings,
    sign_in,
)

CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')

# Éloïse starts with nothing linked; her own accounts and proofs, from the sandbox.
ELOISE_CARD = {"card_number": "33281000129033", "pin": "2902"}
ELOISE_HOUSING = "0332611022904"


def csrf(client: FlaskClient, path: str) -> str:
    match = CSRF_RE.search(client.get(path).get_data(as_text=True))
    assert match, f"no form on {path}"
    return match.group(1)


def links(app: Flask) -> dict[str, ServiceLink]:
    with app.app_context():
        return {
            link.instance_slug: link
            for link in db.session.execute(db.select(ServiceLink)).scalars()
        }


def journal(app: Flask) -> list[tuple[str, str, str]]:
    with app.app_context():
        return [
            (e.action, e.outcome, e.connector_instance)
            for e in db.session.execute(db.select(JournalEntry).order_by(JournalEntry.id)).scalars()
        ]


def post_link(client: FlaskClient, slug: str, **fields: str):
    data = {"csrf_token": csrf(client, f"/link/{slug}"), **fields}
    return client.post(f"/link/{slug}", data=data)


def test_a_resident_with_nothing_linked_is_shown_how_to_start(
    services_client: FlaskClient,
) -> None:
    sign_in(services_client, "eloise")
    html = services_client.get("/").get_data(as_text=True)
    assert (
        "Aucun service n&#39;est encore relié" in html or "Aucun service n'est encore relié" in html
    )
    assert 'href="/link"' in html
    index = services_client.get("/link").get_data(as_text=True)
    for title in ("Médiathèque de Mérignac", "Bibliothèques de Bordeaux", "Demande de logement"):
        assert title in index


def test_resident_links_a_library_card_with_its_pin(
    services_client: FlaskClient, services_app: Flask
) -> None:
    sign_in(services_client, "eloise")
    r = post_link(services_client, "bib-merignac", proof="pin", **ELOISE_CARD)
    assert r.status_code == 303
    assert r.headers["Location"] == "/services/bib-merignac"
    page = services_client.get("/services/bib-merignac").get_data(as_text=True)
    assert "est relié" in page
    assert "Mes prêts" in page
    link = links(services_app)["bib-merignac"]
    assert link.external_id == "mer-p-1290"
    assert link.secret_ciphertext is None  # the PIN is checked once, never kept
    assert ("link", "success", "bib-merignac") in journal(services_app)
    with services_app.app_context():
        details = " ".join(e.detail for e in db.session.execute(db.select(JournalEntry)).scalars())
    assert "2902" not in details and "33281000129033" not in details


def test_resident_links_a_library_card_with_their_birth_date_prefilled(
    services_client: FlaskClient, services_app: Flask
) -> None:
    sign_in(services_client, "eloise")
    form = services_client.get("/link/bib-merignac").get_data(as_text=True)
    assert 'value="2004-02-29"' in form  # from FranceConnect
    r = post_link(
        services_client,
        "bib-merignac",
        card_number="3328 1000 1290 33",  # copied with spaces
        proof="birthdate",
        birthdate="2004-02-29",
    )
    assert r.status_code == 303
    assert links(services_app)["bib-merignac"].external_id == "mer-p-1290"


def test_koha_libraries_ask_for_the_pin_only(services_client: FlaskClient) -> None:
    sign_in(services_client, "eloise")
    form = services_client.get("/link/bib-bordeaux").get_data(as_text=True)
    assert 'name="pin"' in form
    assert 'name="birthdate"' not in form
    assert 'type="radio"' not in form


def test_resident_links_a_canteen_family_and_a_housing_application(
    services_client: FlaskClient, services_app: Flask
) -> None:
    sign_in(services_client, "eloise")
    r = post_link(
        services_client, "cantine-bordeaux", family_number="0045217", invoice_code="kx4m7p"
    )
    assert r.status_code == 303
    r = post_link(
        services_client, "logement-metropole", number=ELOISE_HOUSING, birthdate="2004-02-29"
    )
    assert r.status_code == 303
    assert links(services_app)["logement-metropole"].external_id == "dem-2290"
    assert set(links(services_app)) == {"cantine-bordeaux", "logement-metropole"}


@pytest.mark.parametrize(
    ("slug", "fields", "message"),
    [
        (
            "bib-merignac",
            {"card_number": "33281000129033", "proof": "pin", "pin": "0000"},
            "ne correspondent pas",
        ),
        (
            "bib-pessac",  # a locked card: said in words that do not confirm it exists
            {"card_number": "33318000311260", "proof": "pin", "pin": "3112"},
            "si le service a bloqué le compte",
        ),
        (
            "cantine-bordeaux",
            {"family_number": "0045217", "invoice_code": "WRONG1"},
            "ne correspondent pas",
        ),
        (
            "logement-metropole",
            {"number": ELOISE_HOUSING, "birthdate": "1999-01-01"},
            "ne correspondent pas",
        ),
    ],
)
def test_a_wrong_proof_or_a_locked_card_is_explained_and_nothing_is_saved(
    services_client: FlaskClient, services_app: Flask, slug: str, fields: dict, message: str
) -> None:
    sign_in(services_client, "eloise")
    r = post_link(services_client, slug, **fields)
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert "Il y a un problème" in html
    assert message in html
    assert 'value="3112"' not in html and 'value="0000"' not in html  # a PIN is never echoed
    assert links(services_app) == {}
    # A refused proof is journaled as a refused attempt, never as a link.
    assert ("link", "refused", slug) in journal(services_app)


@pytest.mark.parametrize(
    "mode",
    [
        "error500",
        # The page's deadline ends the wait: a short one says the same thing sooner.
        pytest.param("hang", marks=pytest.mark.deadlines(page_deadline_s=0.5), id="hang"),
        "malformed",
    ],
)
def test_a_back_end_down_while_linking_says_nothing_was_saved(
    services_client: FlaskClient, services_app: Flask, fc_sandbox: Sandbox, mode: str
) -> None:
    sign_in(services_client, "eloise")
    fc_sandbox.fault("library", "merignac", mode, hang_s=5)
    r = post_link(services_client, "bib-merignac", proof="pin", **ELOISE_CARD)
    assert r.status_code == 422
    assert "rien n&#39;a été enregistré" in r.get_data(as_text=True)
    assert links(services_app) == {}


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"card_number": "", "proof": "pin", "pin": "1234"}, "Indiquez votre numéro de carte."),
        ({"card_number": "33281000129033", "proof": "pin", "pin": ""}, "Indiquez le code PIN"),
        (
            {"card_number": "33281000129033", "proof": "birthdate", "birthdate": "31/02/2004"},
            "Indiquez votre date de naissance.",
        ),
        ({"card_number": "33281000129033", "proof": "fingerprint"}, "Choisissez une façon"),
        ({"card_number": "1" * 500, "proof": "pin", "pin": "1234"}, "entre 4 et 32"),
    ],
)
def test_bad_input_is_explained_field_by_field_and_the_back_end_is_not_called(
    services_client: FlaskClient, services_app: Flask, fields: dict, error: str
) -> None:
    sign_in(services_client, "eloise")
    calls = count_calls(services_app)
    r = post_link(services_client, "bib-merignac", **fields)
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert error in html
    assert 'aria-invalid="true"' in html
    assert not calls, f"the back-end was called: {dict(calls)}"


def test_proofs_are_limited_per_resident(
    database_url: str, fc_sandbox: Sandbox, connectors_file: str
) -> None:
    app = create_app(
        portal_settings(
            database_url,
            fc_sandbox.issuer,
            connectors_file=connectors_file,
            demo_links_file=DEMO_LINKS_FILE,
            link_failure_limit="3 per 15 minutes",
        )
    )
    client = app.test_client()
    try:
        sign_in(client, "eloise")
        for card in ("33281000000001", "33281000000002", "33281000000003"):
            r = post_link(client, "bib-merignac", proof="pin", card_number=card, pin="9999")
            assert r.status_code == 422
        r = post_link(client, "bib-merignac", proof="pin", **ELOISE_CARD)  # even the right PIN
        assert r.status_code == 429
        assert "ce formulaire est bloqué jusqu" in r.get_data(as_text=True)
        assert links(app) == {}
        # Another resident at the same address is not held back (a help desk, a family).
        other = app.test_client()
        sign_in(other, "eloise")  # a new session, but the same resident: still blocked
        assert post_link(other, "bib-merignac", proof="pin", **ELOISE_CARD).status_code == 429
        other = app.test_client()
        sign_in(other, "jean-baptiste")
        r = post_link(other, "bib-merignac", proof="pin", card_number="33281000000004", pin="1")
        assert r.status_code == 422  # refused by the back-end, not by the limit
    finally:
        app.extensions["connectors"].close()
        empty_tables(app)


def test_linking_without_the_form_token_is_refused(services_client: FlaskClient) -> None:
    sign_in(services_client, "eloise")
    r = services_client.post("/link/bib-merignac", data={"proof": "pin", **ELOISE_CARD})
    assert r.status_code == 400


def test_an_unknown_service_cannot_be_linked(services_client: FlaskClient) -> None:
    sign_in(services_client, "eloise")
    assert services_client.get("/link/nowhere").status_code == 404
    assert services_client.get("/link/nowhere/remove").status_code == 404


def test_resident_unlinks_an_account_in_one_confirmed_step(
    services_client: FlaskClient, services_app: Flask
) -> None:
    sign_in(services_client, "amina")
    services_client.get("/services/bib-merignac/card", headers={"HX-Request": "true"})
    with services_app.app_context():
        assert db.session.execute(db.select(ConnectorSnapshot)).first() is not None
    confirm = services_client.get("/link/bib-merignac/remove").get_data(as_text=True)
    assert "Délier le compte" in confirm
    token = CSRF_RE.search(confirm).group(1)
    r = services_client.post("/link/bib-merignac/remove", data={"csrf_token": token})
    assert r.status_code == 303
    assert "bib-merignac" not in links(services_app)
    assert services_client.get("/services/bib-merignac").status_code == 404
    with services_app.app_context():
        assert db.session.execute(db.select(ConnectorSnapshot)).first() is None
    assert ("unlink", "success", "bib-merignac") in journal(services_app)


def test_a_resident_cannot_unlink_what_they_have_not_linked(
    services_client: FlaskClient, services_app: Flask
) -> None:
    sign_in(services_client, "marie-therese")
    sign_in(services_client, "amina")  # amina has no canteen link; marie-thérèse has one
    r = services_client.post(
        "/link/cantine-bordeaux/remove", data={"csrf_token": csrf(services_client, "/link")}
    )
    assert r.status_code == 404
    assert "cantine-bordeaux" in links(services_app)  # marie-thérèse's link is untouched


def test_a_link_the_back_end_no_longer_accepts_can_be_proven_again(
    services_client: FlaskClient, services_app: Flask
) -> None:
    sign_in(services_client, "eloise")
    post_link(services_client, "bib-merignac", proof="pin", **ELOISE_CARD)
    with services_app.app_context():
        link = db.session.execute(db.select(ServiceLink)).scalar_one()
        link.external_id = "mer-p-0000"
        db.session.commit()
    card = services_client.get("/services/bib-merignac/card", headers={"HX-Request": "true"})
    assert "ne reconnaît plus votre compte" in card.get_data(as_text=True)
    form = services_client.get("/link/bib-merignac").get_data(as_text=True)
    assert "Prouvez à nouveau" in form
    r = post_link(services_client, "bib-merignac", proof="pin", **ELOISE_CARD)
    assert r.status_code == 303
    relinked = links(services_app)["bib-merignac"]
    assert relinked.external_id == "mer-p-1290" and relinked.status == "active"


def test_secrets_are_encrypted_at_rest_and_survive_key_rotation(
    services_app: Flask, tmp_path
) -> None:
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    old = SecretBox([old_key])
    with services_app.app_context():
        citizen = Citizen(sub="s" * 66, given_name="Test")
        db.session.add(citizen)
        db.session.flush()
        db.session.add(
            ServiceLink(
                citizen_id=citizen.id,
                instance_slug="bib-merignac",
                external_id="x",
                secret_ciphertext=old.encrypt("token-from-the-back-end"),
            )
        )
        db.session.commit()
        stored = db.session.execute(db.select(ServiceLink)).scalar_one().secret_ciphertext
    assert "token-from-the-back-end" not in stored
    # Rotation: the new key first, the old one still accepted, then re-encrypt.
    services_app.extensions["secret_box"] = SecretBox([new_key, old_key])
    result = services_app.test_cli_runner().invoke(args=["rotate-secrets"])
    assert "1 secret(s) re-encrypted" in result.output
    with services_app.app_context():
        rotated = db.session.execute(db.select(ServiceLink)).scalar_one().secret_ciphertext
    assert SecretBox([new_key]).decrypt(rotated) == "token-from-the-back-end"
    with pytest.raises(ValueError):
        old.decrypt(rotated)


def test_a_service_whose_kind_is_not_installed_is_neither_offered_nor_reachable(
    services_client: FlaskClient, services_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An instance whose category no installed kind serves is not shown as another
    kind: it is not offered, and its pages answer 404, even to a resident linked there."""
    from portal.services import kinds

    sign_in(services_client, "eloise")
    r = post_link(
        services_client, "logement-metropole", number=ELOISE_HOUSING, birthdate="2004-02-29"
    )
    assert r.status_code == 303
    services_client.get(r.headers["Location"])  # its "linked" notice, shown once
    monkeypatch.delitem(kinds._KINDS, "housing")  # as if its package were not installed
    index = services_client.get("/link").get_data(as_text=True)
    assert "Demande de logement social" not in index and "Médiathèque de Mérignac" in index
    assert services_client.get("/link/logement-metropole").status_code == 404
    assert services_client.get("/services/logement-metropole").status_code == 404
    assert services_client.get("/services/logement-metropole/card").status_code == 404
    assert services_client.get("/services/logement-metropole/renew").status_code == 404
    assert "Demande de logement social" not in services_client.get("/").get_data(as_text=True)
    assert services_client.get("/account/todo").status_code == 200
    assert services_client.get("/account/activity").status_code == 200
