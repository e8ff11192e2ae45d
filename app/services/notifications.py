"""What the inbox's browser notifications read: the agent's unread customer messages and mentions.

The inbox's list fragment (polled every 2 s, answered 304 while unchanged) carries this feed, so
notifications cost no request of their own. It holds, within the agent's scope (`notify_scope`:
conversations assigned to them or to nobody, or all), the number of unread customer messages
and, for the newest unread conversations, their newest unread customer message; and the agent's
unread mentions with the newest few. The browser notifies of what is newer than the page (the
`since` ids it was rendered with) and not notified yet. Two statements on partial indexes
(`ix_conversations_unread_activity`, `ix_messages_conversation_unread`, `ix_mentions_agent_unread`)
whose cost does not grow with the inbox nor with the backlog: the count reads at most the newest
100 unread conversations in scope (beyond that the title says "99+").
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Integer, Select, bindparam, func, not_, or_, select
from sqlalchemy.orm import aliased

from app.extensions import DbSession
from app.models import Agent, Contact, Conversation, Mention, Message
from app.models.messages import HIDDEN_TYPES

FEED_CONVERSATIONS = 10
COUNTED_CONVERSATIONS = 100
FEED_MENTIONS = 5
PREVIEW_CHARS = 120


@dataclass
class Feed:
    unread_messages: int = 0  # in scope; counted over the newest COUNTED_CONVERSATIONS at most
    capped: bool = False  # there may be more: the title shows "99+"
    unread_mentions: int = 0
    conversations: list[Any] = field(default_factory=list)
    mentions: list[Any] = field(default_factory=list)


AGENT = bindparam("agent_id", type_=Integer)


def _in_scope(conversation: Any, scope: str) -> list[Any]:
    """The conversations with unread customer messages whose news notify the agent."""
    conditions = [conversation.unread_count > 0]
    if scope != "all":
        conditions.append(or_(conversation.assignee_id == AGENT, conversation.assignee_id.is_(None)))
    return conditions


@functools.cache
def _conversations_statement(scope: str) -> Select[Any]:
    """Built once per scope (building the lateral and the aliases costs more than running it)."""
    newest = (
        select(Message.id, Message.type, func.left(Message.text, PREVIEW_CHARS).label("text"))
        .where(
            Message.conversation_id == Conversation.id,
            Message.direction == "in",
            not_(Message.is_read),  # as ix_messages_conversation_unread's predicate says it
            Message.type.not_in(HIDDEN_TYPES),
        )
        .order_by(Message.id.desc())
        .limit(1)
        .lateral("newest")
    )
    # The count (once, as an InitPlan) over at most COUNTED_CONVERSATIONS of them, so a huge
    # backlog costs no more than a small one: reaching the cap means "99+" at least.
    counted = aliased(Conversation, name="counted")
    capped = (
        select(counted.unread_count)
        .where(*_in_scope(counted, scope))
        .order_by(counted.last_activity_at.desc(), counted.id.desc())
        .limit(COUNTED_CONVERSATIONS)
        .subquery("capped")
    )
    return (
        select(
            Conversation.id,
            Contact.display_name.label("contact_display_name"),
            Contact.profile_name.label("contact_name"),
            Contact.wa_id.label("contact_wa_id"),
            Contact.user_id.label("contact_user_id"),
            newest.c.id.label("message_id"),
            newest.c.type.label("message_type"),
            newest.c.text.label("message_text"),
            select(func.coalesce(func.sum(capped.c.unread_count), 0)).scalar_subquery().label("unread_total"),
            select(func.count()).select_from(capped).scalar_subquery().label("unread_conversations"),
        )
        .join(Contact, Contact.id == Conversation.contact_id)
        .join(newest, newest.c.id.is_not(None))
        .where(*_in_scope(Conversation, scope))
        .order_by(Conversation.last_activity_at.desc(), Conversation.id.desc())
        .limit(FEED_CONVERSATIONS)
    )


@functools.cache
def _mentions_statement() -> Select[Any]:
    author = aliased(Agent, name="author")
    return (
        select(
            Mention.id,
            Mention.conversation_id,
            Mention.message_id,
            author.name.label("author_name"),
            func.left(Message.text, PREVIEW_CHARS).label("text"),
            func.count().over().label("unread_total"),
        )
        .join(Message, Message.id == Mention.message_id)
        .outerjoin(author, author.id == Message.agent_id)
        .where(Mention.agent_id == AGENT, Mention.read_at.is_(None))
        .order_by(Mention.id.desc())
        .limit(FEED_MENTIONS)
    )


def notification_feed(session: DbSession, agent_id: int, scope: str) -> Feed:
    parameters = {"agent_id": agent_id}
    conversations = list(session.execute(_conversations_statement(scope), parameters))
    mentions = list(session.execute(_mentions_statement(), parameters))
    return Feed(
        unread_messages=int(conversations[0].unread_total) if conversations else 0,
        capped=bool(conversations) and conversations[0].unread_conversations >= COUNTED_CONVERSATIONS,
        unread_mentions=int(mentions[0].unread_total) if mentions else 0,
        conversations=conversations,
        mentions=mentions,
    )


def newest_ids(session: DbSession, agent_id: int) -> dict[str, int]:
    """The newest message and mention of the agent when a page is rendered: the browser notifies
    of nothing up to them (what was there when the page loaded)."""
    row = session.execute(
        select(
            select(func.coalesce(func.max(Message.id), 0)).scalar_subquery().label("message"),
            select(func.coalesce(func.max(Mention.id), 0))
            .where(Mention.agent_id == agent_id)
            .scalar_subquery()
            .label("mention"),
        )
    ).one()
    return {"message": int(row.message), "mention": int(row.mention)}
