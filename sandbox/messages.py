"""Pages and API showing what the portal sent: e-mail (received by ``sandbox.mail``) and
SMS (posted here by the portal's HTTP notifier), both kept in the outbox.

| route | what |
|---|---|
| ``GET /sandbox/mail`` (``.json``) | e-mail received, newest first; ``?to=`` filters by recipient |
| ``GET /sandbox/mail/<id>`` | one e-mail: headers, text, HTML part framed without scripts |
| ``GET /sandbox/mail/<id>/html`` | the HTML part alone, under a CSP that runs nothing |
| ``GET /sandbox/mail/<id>/source`` | the message as received, as plain text |
| ``POST /sandbox/sms/messages`` | ``{"to": "+33…", "text": "…"}``: 201 with its id |
| ``GET /sandbox/sms`` (``.json``) | SMS received, newest first |
| ``POST /sandbox/{mail,sms}/clear`` | forget them (404 without ``SANDBOX_ADMIN``) |

The HTML part of a message is the one thing here written by someone else: it is never put
in a page of the sandbox. It is served on its own URL with ``Content-Security-Policy:
sandbox`` and no script source, and framed in an ``<iframe sandbox>``; its source is shown
escaped.
"""

from __future__ import annotations

import re
from datetime import datetime
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)

from sandbox.admin import admin_enabled, register_reset_hook
from sandbox.backends.records import MONTHS_FR
from sandbox.outbox import DEFAULT_OUTBOX, Mail, Outbox

bp = Blueprint("messages", __name__, url_prefix="/sandbox")

_OUTBOX = "sandbox_outbox"
#: E.164: a plus, a country code and the number, 8 to 15 digits in all.
PHONE = re.compile(r"\+[1-9][0-9]{7,14}")
MAX_SMS_CHARACTERS = 1600
MAX_IDEMPOTENCY_KEY = 255
PARIS = ZoneInfo("Europe/Paris")
#: The HTML part of a message, on its own: no script, nothing fetched, no form sent;
#: links open outside the frame, and only when the tester clicks them.
HTML_PART_CSP = (
    "sandbox allow-popups allow-popups-to-escape-sandbox "
    "allow-top-navigation-by-user-activation; default-src 'none'; "
    "style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'self'"
)
#: A page of the sandbox that frames the HTML part.
FRAMING_PAGE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; frame-src 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)


def init_app(app: Flask) -> None:
    """Open the outbox the SMTP sink writes to, and register the pages."""
    path = app.config.get("SANDBOX_OUTBOX")
    if not path and not app.testing:
        path = DEFAULT_OUTBOX
    outbox = Outbox(path)
    app.extensions[_OUTBOX] = outbox
    register_reset_hook(app, outbox.clear)
    app.register_blueprint(bp)
    app.add_template_filter(french_datetime)


def outbox_of(app: Flask) -> Outbox:
    """The outbox a sandbox app reads: start a ``sandbox.mail.MailSink`` on it in tests."""
    outbox: Outbox = app.extensions[_OUTBOX]
    return outbox


def _outbox() -> Outbox:
    return outbox_of(current_app)


def french_datetime(moment: datetime) -> str:
    """« 4 décembre 2026 à 20 h 52 », Paris time."""
    local = moment.astimezone(PARIS)
    return (
        f"{local.day} {MONTHS_FR[local.month - 1]} {local.year} à {local.hour} h {local.minute:02d}"
    )


def _require_admin() -> None:
    if not admin_enabled():
        abort(404)


# -- e-mail --------------------------------------------------------------------------------


@bp.get("/mail")
def mail_list() -> str:
    outbox = _outbox()
    return render_template(
        "outbox/mail.html",
        mails=outbox.mails(),
        keep=outbox.keep,
        smtp=f"smtp://{current_app.config['SANDBOX_SMTP_HOST']}:"
        f"{current_app.config['SANDBOX_SMTP_PORT']}",
        can_clear=admin_enabled(),
    )


@bp.get("/mail.json")
def mail_json() -> Response:
    outbox = _outbox()
    mails = outbox.mails(to=request.args.get("to"))
    return jsonify(count=len(mails), keep=outbox.keep, messages=[mail.as_json() for mail in mails])


def _mail_or_404(mail_id: int) -> Mail:
    mail = _outbox().mail(mail_id)
    if mail is None:
        abort(404)
    return mail


@bp.get("/mail/<int:mail_id>")
def mail_detail(mail_id: int) -> Response:
    mail = _mail_or_404(mail_id)
    html = mail.html
    response = Response(
        render_template(
            "outbox/mail_detail.html",
            mail=mail,
            html=html,
            links=_links(html) if html else [],
        ),
        mimetype="text/html",
    )
    response.headers["Content-Security-Policy"] = FRAMING_PAGE_CSP
    return response


@bp.get("/mail/<int:mail_id>/html")
def mail_html(mail_id: int) -> Response:
    html = _mail_or_404(mail_id).html
    if html is None:
        abort(404)
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = HTML_PART_CSP
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/mail/<int:mail_id>/source")
def mail_source(mail_id: int) -> Response:
    raw = _mail_or_404(mail_id).raw
    return Response(raw.decode("utf-8", "replace"), mimetype="text/plain")


class _LinkParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            href = (dict(attrs).get("href") or "").strip()
            if href.split(":", 1)[0].lower() in {"http", "https", "mailto"} and (
                href not in self.links
            ):
                self.links.append(href)


def _links(html: str) -> list[str]:
    """The http(s) and mailto links of the HTML part, to follow outside its frame."""
    parser = _LinkParser()
    parser.feed(html)
    return parser.links


# -- SMS -----------------------------------------------------------------------------------


def _bad_request(detail: str, status: int = 400) -> Response:
    """An RFC 9457 problem, worded in French like the rest of the sandbox."""
    response = jsonify(
        type="about:blank",
        title="Clé d'idempotence déjà utilisée" if status == 422 else "Requête invalide",
        status=status,
        detail=detail,
    )
    response.status_code = status
    response.mimetype = "application/problem+json"
    return response


@bp.post("/sms/messages")
def sms_create() -> Response:
    """What an SMS provider's HTTP API does, less the sending: check, record, answer."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _bad_request('Le corps doit être un objet JSON : {"to": "+33…", "text": "…"}.')
    unknown = sorted(set(body) - {"to", "text"})
    if unknown:
        return _bad_request(f"Champ inconnu : {', '.join(unknown)} ; attendus : to et text.")
    to, text = body.get("to"), body.get("text")
    if not isinstance(to, str) or not PHONE.fullmatch(to):
        return _bad_request(
            "to doit être un numéro au format international (E.164), par exemple +33612345678."
        )
    if not isinstance(text, str) or not text.strip():
        return _bad_request("text doit être un texte non vide.")
    if len(text) > MAX_SMS_CHARACTERS:
        return _bad_request(f"text ne doit pas dépasser {MAX_SMS_CHARACTERS} caractères.")
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 0 < len(key) <= MAX_IDEMPOTENCY_KEY:
        return _bad_request(f"Idempotency-Key doit faire de 1 à {MAX_IDEMPOTENCY_KEY} caractères.")
    sms, created = _outbox().add_sms(to, text, key)
    if not created and (sms.to, sms.text) != (to, text):
        return _bad_request("Cette Idempotency-Key a déjà servi pour un autre message.", 422)
    response = jsonify(sms.as_json())
    response.status_code = 201 if created else 200
    response.headers["Location"] = url_for("messages.sms_list", _anchor=f"sms-{sms.id}")
    return response


@bp.get("/sms")
def sms_list() -> str:
    outbox = _outbox()
    return render_template(
        "outbox/sms.html",
        messages=outbox.sms(),
        keep=outbox.keep,
        endpoint=url_for("messages.sms_create", _external=True),
        can_clear=admin_enabled(),
    )


@bp.get("/sms.json")
def sms_json() -> Response:
    outbox = _outbox()
    messages = outbox.sms()
    return jsonify(count=len(messages), keep=outbox.keep, messages=[m.as_json() for m in messages])


@bp.post("/<any(mail, sms):kind>/clear")
def clear(kind: str) -> Response:
    """The page's button: forget the e-mail, or the SMS."""
    _require_admin()
    _outbox().clear(kind)
    endpoint = "messages.mail_list" if kind == "mail" else "messages.sms_list"
    return redirect(url_for(endpoint), 303)  # type: ignore[return-value]
