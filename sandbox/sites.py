"""Stand-ins for the services' own web sites, where the portal sends residents for what it
does not do itself (paying library fines, filing a new housing application).

Each instance's ``[links]`` in ``connectors.toml`` points here in development, so that
no link of ``make run`` leads nowhere.
"""

from __future__ import annotations

from flask import Blueprint, abort, render_template_string

bp = Blueprint("sites", __name__, url_prefix="/sites")

#: (tenant, page) -> (site title, what the real page would let the resident do)
PAGES: dict[tuple[str, str], tuple[str, str]] = {
    ("merignac", "amendes"): (
        "Médiathèque de Mérignac",
        "Sur le site de la médiathèque, vous régleriez ici vos amendes en ligne.",
    ),
    ("pessac", "amendes"): (
        "Médiathèque de Pessac",
        "Sur le site de la médiathèque, vous régleriez ici vos amendes en ligne.",
    ),
    ("pessac", "aide"): (
        "Médiathèque de Pessac",
        "Sur le site de la médiathèque, vous trouveriez ici ses horaires et ses contacts.",
    ),
    ("bordeaux", "cantine-aide"): (
        "Restauration scolaire de Bordeaux",
        "Sur le site de la ville, vous trouveriez ici les contacts du service de restauration.",
    ),
    ("bordeaux", "eau-aide"): (
        "Régie de l'eau de Bordeaux",
        "Sur le site de la régie, vous trouveriez ici ses horaires, ses contacts et que faire "
        "en cas de fuite.",
    ),
}

PAGE = """<!doctype html>
<html lang="fr"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }} (bac à sable)</title>
<style>
body{font:1rem/1.5 system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}
</style>
</head><body><main>
<h1>{{ title }}</h1>
<p>{{ text }}</p>
<p>Ceci est une page de démonstration du bac à sable : le vrai site du service la remplace
en production.</p>
</main></body></html>"""


@bp.get("/<tenant>/<page>")
def site_page(tenant: str, page: str) -> str:
    found = PAGES.get((tenant, page))
    if found is None:
        abort(404)
    title, text = found
    return render_template_string(PAGE, title=title, text=text)
