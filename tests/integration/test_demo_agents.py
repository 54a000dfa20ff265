"""``make run`` provisions demo desks and advisers (``sandbox.demo_agents``): twice
changes nothing, and the demo adviser can sign in through the sandbox's ProConnect."""

from __future__ import annotations

import pytest
from flask import Flask

from portal.extensions import db
from portal.models import Agent, AgentRole, Desk
from sandbox import demo_agents
from tests.support import agent_sign_in


def test_the_demo_desks_and_advisers_are_provisioned_once(
    app: Flask, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORTAL_DATABASE_URL", database_url)
    first = demo_agents.provision()
    assert len(first) == 6
    assert demo_agents.provision() == []
    with app.app_context():
        counts = [
            db.session.scalar(db.select(db.func.count()).select_from(model))
            for model in (Desk, Agent, AgentRole)
        ]
    assert counts == [2, 2, 2]
    client = app.test_client()
    agent_sign_in(client, "claire")
    home = client.get("/agents/").get_data(as_text=True)
    assert "Maison France services de Bordeaux Lac" in home
