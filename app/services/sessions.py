"""Ending an agent's sessions (logout, log out everywhere). Owns its transaction."""

from __future__ import annotations

from app.extensions import db
from app.models import Agent


def end_all_sessions(agent: Agent) -> None:
    """Every session cookie ever issued to the agent stops working, in every browser."""
    agent.end_sessions()
    db.session.commit()
