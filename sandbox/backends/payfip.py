"""A PayFiP-like payment page: where the canteen and water APIs' ``redirect_url`` sends the
resident.

PayFiP (the DGFiP's service for paying local authorities' invoices) shows its own page,
then notifies the authority's server and sends the browser back. The sandbox does the
same in French, with real forms: pay, simulate a refusal, or abandon. Only the
server-to-server notification (followed by a status call) should convince the portal
that an invoice is paid, never the browser's return alone, so a test switch can keep the
browser from coming back at all.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
from flask import Blueprint, Response, redirect, render_template_string, request

from sandbox.backends.common import backend_state, dataset
from sandbox.backends.pdf import euros
from sandbox.backends.state import BackendState, Notification, Payment

bp = Blueprint("payfip", __name__, url_prefix="/payfip")

NOTIFY_TIMEOUT_S = 3.0
ACTIONS = {
    "pay": ("paid", ""),
    "refuse": ("refused", "Paiement refusé par la banque : aucune somme n'a été prélevée."),
    "abandon": (
        "abandoned",
        "Paiement abandonné avant sa validation : aucune somme n'a été prélevée.",
    ),
}
#: The invoice was paid meanwhile (from another tab, by the other parent, at the
#: counter): the payment service refuses to take the money twice.
ALREADY_PAID = (
    "refused",
    "Cette facture est déjà réglée\u00a0: ce paiement n'a pas été effectué et aucune "
    "somme n'a été prélevée.",
)
STATE_LABELS = {
    "pending": "en attente",
    "paid": "payé",
    "refused": "refusé",
    "abandoned": "abandonné",
}

PAGE = """<!doctype html>
<html lang="fr">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="robots" content="noindex">
  <title>{{ title }} — Bac à sable PayFiP</title>
  <style>
    *, *::before, *::after { box-sizing: border-box; }
    body { margin: 0; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
           font-size: 1rem; line-height: 1.5; color: #161616; background: #f6f6f6; }
    .skip-link { position: absolute; left: -9999px; top: 0; padding: .5rem 1rem;
                 background: #fff; color: #000091; }
    .skip-link:focus { left: 1rem; top: 1rem; z-index: 10; }
    header { background: #fff; border-bottom: 4px solid #000091; padding: 1rem; }
    header p { margin: 0; }
    .brand { font-weight: 700; font-size: 1.25rem; color: #000091; }
    .warning { margin-top: .25rem; color: #5f3a00; }
    main { max-width: 40rem; margin: 0 auto; padding: 1.5rem 1rem 3rem; }
    h1 { font-size: 1.75rem; line-height: 1.25; margin: 0 0 1rem; }
    dl { background: #fff; border: 1px solid #929292; border-radius: .25rem;
         padding: 1rem; margin: 0 0 1.5rem; }
    dl div { display: grid; grid-template-columns: 9rem 1fr; gap: .5rem; padding: .125rem 0; }
    dt { font-weight: 600; }
    dd { margin: 0; overflow-wrap: anywhere; }
    fieldset { border: 0; padding: 0; margin: 0; }
    legend { margin-bottom: .75rem; }
    .actions { display: flex; flex-direction: column; gap: .75rem; }
    button { font: inherit; font-weight: 600; cursor: pointer; padding: .5rem 1rem;
             min-height: 2.75rem; border-radius: .25rem; border: 2px solid #000091;
             background: #000091; color: #fff; text-align: left; }
    button:hover { background: #1212ff; border-color: #1212ff; }
    button.secondary { background: #fff; color: #000091; }
    button.secondary:hover { background: #e3e3fd; }
    :focus-visible { outline: 3px solid #0a76f6; outline-offset: 3px; }
    .notice { background: #fff; border-left: 4px solid #000091; padding: 1rem; }
    .notice.error { border-left-color: #ce0500; }
  </style>
</head>
<body>
  <a class="skip-link" href="#contenu">Aller au contenu</a>
  <header>
    <p class="brand">Bac à sable PayFiP</p>
    <p class="warning">Service de test : aucun paiement réel n'est effectué.</p>
  </header>
  <main id="contenu" tabindex="-1">
    <h1>{{ title }}</h1>
    {% if payment %}
    <dl>
      <div><dt>Collectivité</dt><dd>{{ issuer }}</dd></div>
      <div><dt>Objet</dt><dd>{{ payment.label }}</dd></div>
      <div><dt>Référence</dt><dd>{{ payment.invoice_id }}</dd></div>
      <div><dt>Montant</dt><dd>{{ amount }}</dd></div>
      <div><dt>État</dt><dd>{{ state_label }}</dd></div>
    </dl>
    {% endif %}
    {% if message %}
    <p class="notice{% if error %} error{% endif %}" role="status">{{ message }}</p>
    {% endif %}
    {% if back_url %}
    <p><a href="{{ back_url }}">Revenir au site de la collectivité</a></p>
    {% endif %}
    {% if payment and payment.state == "pending" %}
    <form method="post" action="{{ action_url }}">
      <fieldset>
        <legend>Choisissez l'issue du paiement à simuler :</legend>
        <div class="actions">
          <button type="submit" name="action" value="pay">Payer {{ amount }}</button>
          <button type="submit" name="action" value="refuse" class="secondary">
            Simuler un refus de paiement</button>
          <button type="submit" name="action" value="abandon" class="secondary">Abandonner</button>
        </div>
      </fieldset>
    </form>
    {% endif %}
  </main>
</body>
</html>
"""


def _page(
    title: str,
    payment: Payment | None = None,
    message: str = "",
    *,
    error: bool = False,
    status: int = 200,
    back_url: str = "",
) -> tuple[str, int]:
    issuer = ""
    if payment is not None:
        records = _tenant_records(payment)
        issuer = records.title if records is not None else payment.tenant
    html = render_template_string(
        PAGE,
        title=title,
        payment=payment,
        message=message,
        error=error,
        issuer=issuer,
        amount=euros(payment.amount_cents) if payment else "",
        state_label=STATE_LABELS.get(payment.state, payment.state) if payment else "",
        action_url=request.path,
        back_url=back_url,
    )
    return html, status


def with_payment_id(url: str, payment_id: str) -> str:
    """``return_url`` with ``payment_id`` added to whatever query it already has."""
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query, keep_blank_values=True), ("payment_id", payment_id)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def notify(state: BackendState, payment: Payment) -> None:
    """Tell the portal's server, best effort, in the background (as PayFiP does)."""
    record = Notification(
        payment_id=payment.payment_id,
        url=payment.notify_url,
        payload={"payment_id": payment.payment_id, "state": payment.state},
    )
    with state.lock:
        state.notifications.append(record)

    def send() -> None:
        try:
            response = httpx.post(record.url, json=record.payload, timeout=NOTIFY_TIMEOUT_S)
            record.status = response.status_code
        except httpx.HTTPError as error:
            record.error = type(error).__name__

    threading.Thread(target=send, name=f"payfip-notify-{payment.payment_id}", daemon=True).start()


def _tenant_records(payment: Payment) -> Any:
    """The records of the tenant that issued the payment's invoice (canteen or water)."""
    if payment.kind == "water":
        return dataset().water.get(payment.tenant)
    return dataset().canteen.get(payment.tenant)


def _invoice(payment: Payment) -> Any:
    """The invoice a payment is for, from the kind's records (None if it is gone)."""
    records = _tenant_records(payment)
    if records is None:
        return None
    accounts = records.contracts if payment.kind == "water" else records.families
    account = accounts.get(payment.family_id)
    return account.invoices.get(payment.invoice_id) if account else None


def invoice_paid(payment: Payment) -> bool:
    """Whether the invoice this payment is for is paid already (by another payment)."""
    invoice = _invoice(payment)
    return invoice is not None and invoice.paid


def refuse_paid_invoice(state: BackendState, payment: Payment) -> tuple[str, int]:
    """End a pending payment of an invoice paid meanwhile: refused, notified, and said."""
    with state.lock:
        if payment.state == "pending":
            payment.state, payment.reason = ALREADY_PAID
            ended = True
        else:
            ended = False
    if ended:
        notify(state, payment)
    return _page(
        "Facture déjà réglée",
        payment,
        payment.reason,
        error=True,
        status=409,
        back_url=with_payment_id(payment.return_url, payment.payment_id),
    )


@bp.get("/pay/<payment_id>")
def pay_page(payment_id: str) -> tuple[str, int]:
    state = backend_state()
    payment = state.payment(payment_id)
    if payment is not None and payment.state == "pending" and invoice_paid(payment):
        return refuse_paid_invoice(state, payment)
    if payment is None:
        return _page(
            "Paiement introuvable",
            message="Ce lien de paiement n'existe pas ou a expiré.",
            error=True,
            status=404,
        )
    if payment.state != "pending":
        return _page("Paiement terminé", payment, "Ce paiement est déjà terminé.")
    return _page("Paiement de votre facture", payment)


@bp.post("/pay/<payment_id>")
def pay_decision(payment_id: str) -> Response | tuple[str, int]:
    state = backend_state()
    action = request.form.get("action", "")
    with state.lock:
        payment = state.payment(payment_id)
        if payment is None:
            return _page(
                "Paiement introuvable",
                message="Ce lien de paiement n'existe pas ou a expiré.",
                error=True,
                status=404,
            )
        if payment.state != "pending":
            return _page("Paiement terminé", payment, "Ce paiement est déjà terminé.", status=409)
        if action not in ACTIONS:
            return _page(
                "Paiement de votre facture",
                payment,
                "Choisissez une des trois issues proposées.",
                error=True,
                status=400,
            )
        if invoice_paid(payment):
            # Paid meanwhile by another payment: whatever was chosen, nothing is taken.
            payment.state, payment.reason = ALREADY_PAID
        else:
            payment.state, payment.reason = ACTIONS[action]
        if payment.state == "paid":
            invoice = _invoice(payment)
            if invoice is not None:
                invoice.paid_on = dataset().today
        suppress = state.payfip.suppress_redirect
    notify(state, payment)
    if suppress:
        return _page(
            "Paiement terminé",
            payment,
            "Paiement terminé, vous pouvez fermer cette page.",
        )
    return redirect(with_payment_id(payment.return_url, payment.payment_id), code=303)
