"""The satisfaction prompt after a completed journey, as the JDMA form asks it.

A journey completed (a renewal, a booking, a payment, a link, a reading declared: see
``portal.measure.events``) offers the prompt once, in the flash area of the page the
resident lands on (or swapped into it out of band after an htmx answer). It never
blocks: it is a small form on the page, not a modal; ignoring it is ignoring it, and the
next page no longer shows it. Answered or dismissed, it is not offered again in this
session for the same journey.

The steps, each a plain form that works without JavaScript (a 303 back to the page) and
is swapped in place with htmx: « De façon générale, comment ça s'est passé ? » (three
choices); then, optionally, the clarity of the information (1–5), whether help was
sought and through which channels, and a free comment (with the warning not to write
personal data; filtered by ``filter_comment`` before it is stored); then, for each
channel named, whether it was reached and how good the help was.

The answer (``SatisfactionAnswer``) holds the journey, its service and instance, the
channel and whether an adviser acted: never who answered. While the prompt is open the
resident's own session cookie remembers which answer row to complete; nothing in the
database links the two.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from flask import Blueprint, Flask, Response, g, render_template, request, session
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response as BaseResponse

from portal.actor import current_actor
from portal.auth.session import same_site_path, see_other
from portal.extensions import db, limiter
from portal.htmx import is_partial
from portal.measure import filter_comment

bp = Blueprint("satisfaction", __name__)
log = logging.getLogger(__name__)

STATE = "measure_prompt"
DONE = "measure_prompt_done"
#: Answers one address may send per minute (each step is one).
RATE_LIMIT = "20 per minute"
MAX_COMMENT = 1000

SATISFACTION_CHOICES = (
    ("good", _l("Bien")),
    ("average", _l("Moyennement")),
    ("bad", _l("Mal")),
)
CLARITY_CHOICES = (
    (1, _l("Pas clair du tout")),
    (2, _l("Pas très clair")),
    (3, _l("Moyennement clair")),
    (4, _l("Clair")),
    (5, _l("Très clair")),
)
HELP_CHANNELS = (
    ("desk", _l("au guichet")),
    ("phone", _l("par téléphone")),
    ("email", _l("par courriel")),
    ("chat", _l("par messagerie en ligne (chat)")),
    ("relative", _l("auprès d'une personne proche")),
    ("association", _l("auprès d'une association")),
    ("websites", _l("sur des sites internet")),
    ("other", _l("autrement")),
)
QUALITY_CHOICES = (
    (1, _l("Très mauvaise")),
    (2, _l("Mauvaise")),
    (3, _l("Moyenne")),
    (4, _l("Bonne")),
    (5, _l("Très bonne")),
)


def offer(journey: str, category: str, instance: str) -> None:
    """Offer the prompt on the next page: a journey just completed in this request."""
    if journey in session.get(DONE, []):
        return
    actor = current_actor()
    if actor.kind == "system":
        return
    session[STATE] = {
        "id": secrets.token_hex(8),
        "journey": journey,
        "category": category,
        "instance": instance,
        "channel": actor.channel,
        "assisted": actor.assisted,
        "step": "ask",
        "shown": False,
    }
    g.measure_offered = True


def prompt() -> dict[str, Any] | None:
    """The prompt to show on this page (a template global), or None. Each step is shown
    on one page: a page later, unanswered, it is gone."""
    if request.blueprint == "agents":
        return None  # the agents' own pages: not the resident's journey
    state = session.get(STATE)
    if not isinstance(state, dict):
        return None
    from portal.measure.events import opted_out

    if opted_out():
        return None
    if state.get("shown"):
        session.pop(STATE, None)
        return None
    state["shown"] = True
    session[STATE] = state
    return state


def _finish(state: dict[str, Any]) -> None:
    done = [j for j in session.get(DONE, []) if j != state["journey"]][-20:]
    session[DONE] = [*done, state["journey"]]


def _answer_row(state: dict[str, Any]) -> Any:
    from portal.models import SatisfactionAnswer

    row_id = state.get("answer")
    return db.session.get(SatisfactionAnswer, row_id) if isinstance(row_id, int) else None


def _reply(state: dict[str, Any] | None, error: str = "") -> str | BaseResponse:
    back = same_site_path(request.form.get("back")) or "/"
    if is_partial():
        return render_template("_partials/_satisfaction.html", prompt=state, error=error)
    return see_other(back)


@bp.post("/avis")
@limiter.limit(RATE_LIMIT)
def answer() -> str | BaseResponse:
    state = session.get(STATE)
    if not isinstance(state, dict) or request.form.get("prompt") != state.get("id"):
        return _reply(None)
    if "dismiss" in request.form:
        if state["step"] == "ask":
            _finish(state)
        session.pop(STATE, None)
        return _reply(None)
    step = state["step"]
    error = ""
    if step == "ask":
        error = _ask(state)
    elif step == "more":
        _more(state)
    elif step == "help":
        _help(state)
    else:
        session.pop(STATE, None)
        return _reply(None)
    # With htmx the step is shown now, in place; without, on the page the 303 goes to.
    state["shown"] = is_partial()
    state["error"] = bool(error)
    session[STATE] = state
    return _reply(state, error)


def _ask(state: dict[str, Any]) -> str:
    from portal.measure.events import paris_day
    from portal.models import SatisfactionAnswer

    choice = request.form.get("satisfaction", "")
    if choice not in dict(SATISFACTION_CHOICES):
        return str(_l("Choisissez une réponse, ou fermez la question."))
    row = SatisfactionAnswer(
        day=paris_day(),
        category=state["category"][:32],
        instance=state["instance"][:64],
        journey=state["journey"][:48],
        channel=state["channel"][:8],
        assisted=bool(state["assisted"]),
        satisfaction=choice,
    )
    db.session.add(row)
    db.session.commit()
    state["answer"] = row.id
    state["step"] = "more"
    state.pop("error", None)
    _finish(state)
    return ""


def _int_choice(name: str, choices: tuple[tuple[int, Any], ...]) -> int | None:
    raw = request.form.get(name, "")
    return int(raw) if raw.isdigit() and int(raw) in dict(choices) else None


def _more(state: dict[str, Any]) -> None:
    row = _answer_row(state)
    channels = [c for c in request.form.getlist("help") if c in dict(HELP_CHANNELS)]
    comment = filter_comment(request.form.get("comment", "").strip()[:MAX_COMMENT])
    if row is not None:
        row.clarity = _int_choice("clarity", CLARITY_CHOICES)
        if request.form.get("no_help"):
            row.help = {"none": True}
        elif channels:
            row.help = {c: {} for c in channels}
        row.comment = comment
        db.session.commit()
    if channels and not request.form.get("no_help"):
        state["step"] = "help"
        state["helped"] = channels
    else:
        state["step"] = "thanks"


def _help(state: dict[str, Any]) -> None:
    row = _answer_row(state)
    if row is not None:
        help_ = {}
        for channel in state.get("helped", []):
            reached = request.form.get(f"reached_{channel}")
            help_[channel] = {
                "reached": {"yes": True, "no": False}.get(reached or ""),
                "quality": _int_choice(f"quality_{channel}", QUALITY_CHOICES),
            }
        row.help = help_
        db.session.commit()
    state["step"] = "thanks"


def init_satisfaction(app: Flask) -> None:
    app.register_blueprint(bp)
    app.jinja_env.globals.update(
        satisfaction_prompt=prompt,
        satisfaction_choices=SATISFACTION_CHOICES,
        clarity_choices=CLARITY_CHOICES,
        help_channels=HELP_CHANNELS,
        quality_choices=QUALITY_CHOICES,
    )

    @app.after_request
    def prompt_out_of_band(response: Response) -> Response:
        """After an htmx answer that completed a journey, the prompt joins the page's
        flash area (out of band): the section swapped in stays what it was."""
        if not g.get("measure_offered") or not is_partial():
            return response
        if response.mimetype != "text/html" or response.direct_passthrough:
            return response
        if response.status_code != 200:
            return response
        try:
            state = prompt()
            fragment = render_template("_partials/_satisfaction.html", prompt=state, oob=True)
            response.set_data(response.get_data() + fragment.encode())
        except Exception:  # the prompt is a nicety: never the page's failure
            log.warning("satisfaction prompt not added", exc_info=True)
        return response
