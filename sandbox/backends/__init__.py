"""Fake service back-ends: the territory's standard APIs, a Koha-compatible API and a
PayFiP-like payment page, each mounted per tenant (one commune's instance).

| kind      | tenants              | mounted at                              |
|-----------|----------------------|-----------------------------------------|
| library   | merignac, pessac     | ``/library/<tenant>/v1`` (standard API) |
| koha      | bordeaux             | ``/koha/<tenant>/api/v1`` (Koha subset) |
| canteen   | bordeaux             | ``/canteen/<tenant>/v1`` (standard API) |
| housing   | metropole            | ``/housing/<tenant>/v1`` (standard API) |
| water     | bordeaux, pessac     | ``/water/<tenant>/v1`` (standard API)   |

Records are synthetic, French and deterministic for a given day (``data.py``, which
assembles one ``*_data.py`` module per kind);
``demo.py`` says which test identity owns which account. Test controls are in
``admin.py``; ``POST /_admin/reset`` restores everything.
"""

from __future__ import annotations

from flask import Flask

from sandbox.admin import register_reset_hook
from sandbox.backends import admin, canteen, housing, koha, library, payfip, water
from sandbox.backends.common import STATE_KEY
from sandbox.backends.state import BackendState


def init_app(app: Flask) -> None:
    """Build the records for today and register every back-end's blueprints.

    ``SANDBOX_TODAY`` (an ISO date, in the config or the environment) pins the day the
    records are built for, so a test or a recorded demo replays the same data.
    """
    state = BackendState(configured_today=app.config.get("SANDBOX_TODAY"))
    app.extensions[STATE_KEY] = state
    register_reset_hook(app, state.reset)
    for blueprint in (library.bp, canteen.bp, housing.bp, water.bp, koha.bp, payfip.bp, admin.bp):
        app.register_blueprint(blueprint)
