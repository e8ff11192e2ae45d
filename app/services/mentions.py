"""Mentions of agents in private notes: recorded with the note, listed and marked read by the
agent mentioned. `record_mentions` never commits (the note's service does, once); the others own
their transaction.

Who a note mentions is app/whatsapp/mentions.py's rule (the one place it is defined), applied to
the active agents; an agent who mentions themselves is not notified.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import aliased

from app.extensions import DbSession, db
from app.models import Agent, Contact, Conversation, Mention, Message
from app.services.errors import NotFound
from app.whatsapp.mentions import Mentionable, mentioned_agents

PREVIEW_CHARS = 160


def mentionable_agents(session: DbSession) -> list[Mentionable]:
    """The agents a note can mention: the active ones."""
    rows = session.execute(select(Agent.id, Agent.name, Agent.email).where(Agent.active.is_(True)).order_by(Agent.id))
    return [Mentionable(id=row.id, name=row.name, email=row.email) for row in rows]


def record_mentions(session: DbSession, note: Message) -> list[int]:
    """The mentions of a note just flushed, inserted in the caller's transaction; the agents' ids."""
    ids = [
        agent_id
        for agent_id in mentioned_agents(note.text or "", mentionable_agents(session))
        if agent_id != note.agent_id
    ]
    if ids:
        session.execute(
            insert(Mention)
            .values([{"agent_id": a, "message_id": note.id, "conversation_id": note.conversation_id} for a in ids])
            .on_conflict_do_nothing()
        )
    return ids


@dataclass
class MentionPage:
    rows: list[Any]
    page: int
    per_page: int
    total: int
    unread: int

    @property
    def pages(self) -> int:
        return math.ceil(self.total / self.per_page) if self.total else 0


def _mention_select() -> Any:
    author = aliased(Agent, name="author")
    return (
        select(
            Mention.id,
            Mention.created_at,
            Mention.read_at,
            Mention.conversation_id,
            Message.id.label("message_id"),
            func.left(Message.text, PREVIEW_CHARS).label("preview"),
            Message.sent_at,
            author.id.label("author_id"),
            author.name.label("author_name"),
            Contact.display_name.label("contact_display_name"),
            Contact.profile_name.label("contact_name"),
            Contact.wa_id.label("contact_wa_id"),
            Contact.user_id.label("contact_user_id"),
        )
        .select_from(Mention)
        .join(Message, Message.id == Mention.message_id)
        .join(Conversation, Conversation.id == Mention.conversation_id)
        .join(Contact, Contact.id == Conversation.contact_id)
        .outerjoin(author, author.id == Message.agent_id)
    )


def list_mentions(agent_id: int, *, page: int, per_page: int, unread_only: bool = False) -> MentionPage:
    """The agent's mentions: unread first, then newest first. Two statements."""
    counts = db.session.execute(
        select(func.count().label("total"), func.count().filter(Mention.read_at.is_(None)).label("unread")).where(
            Mention.agent_id == agent_id
        )
    ).one()
    total = counts.unread if unread_only else counts.total
    rows: list[Any] = []
    if (page - 1) * per_page < total:
        query = _mention_select().where(Mention.agent_id == agent_id)
        if unread_only:
            query = query.where(Mention.read_at.is_(None))
        query = query.order_by(Mention.read_at.is_not(None), Mention.id.desc())
        rows = list(db.session.execute(query.offset((page - 1) * per_page).limit(per_page)))
    return MentionPage(rows=rows, page=page, per_page=per_page, total=total, unread=counts.unread)


def mark_read(agent_id: int, mention_id: int) -> Any:
    """Mark one of the agent's mentions read (again: it keeps its first read time); its row.
    Another agent's mention is `NotFound`, as one that does not exist."""
    db.session.execute(
        update(Mention)
        .where(Mention.id == mention_id, Mention.agent_id == agent_id, Mention.read_at.is_(None))
        .values(read_at=datetime.now(UTC))
    )
    row = db.session.execute(_mention_select().where(Mention.id == mention_id, Mention.agent_id == agent_id)).first()
    if row is None:
        db.session.rollback()
        raise NotFound("Mention not found.")
    db.session.commit()
    return row


def mark_all_read(agent_id: int) -> int:
    """Mark every unread mention of the agent read; how many were."""
    result = db.session.execute(
        update(Mention).where(Mention.agent_id == agent_id, Mention.read_at.is_(None)).values(read_at=datetime.now(UTC))
    )
    db.session.commit()
    return int(getattr(result, "rowcount", 0) or 0)
