"""What the inbox's browser notifications read: the agent's unread customer messages and mentions.

The inbox's list fragment (polled every 2 s, answered 304 while unchanged) carries this feed, so
notifications cost no request of their own. It holds, within the agent's scope (`notify_scope`:
conversations assigned to them or to nobody, or all), the number of unread customer messages
and, for the newest unread conversations, their newest unread customer message; and the agent's
unread mentions with the newest few. The browser notifies of what is newer than the page (the
`since` ids it was rendered with) and not notified yet. Two statements, each on a small partial
index (`ix_conversations_unread_activity`, `ix_messages_conversation_unread`,
`ix_mentions_agent_unread`), whatever the size of the inbox.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import aliased

from app.extensions import DbSession
from app.models import Agent, Contact, Conversation, Mention, Message
from app.models.messages import HIDDEN_TYPES

FEED_CONVERSATIONS = 10
FEED_MENTIONS = 5
PREVIEW_CHARS = 120


@dataclass
class Feed:
    unread_messages: int = 0
    unread_mentions: int = 0
    conversations: list[Any] = field(default_factory=list)
    mentions: list[Any] = field(default_factory=list)

    @property
    def unread(self) -> int:
        """The count the tab's title shows."""
        return self.unread_messages + self.unread_mentions


def scope_condition(agent_id: int, scope: str) -> Any:
    """The conversations whose new customer messages notify the agent (None: every one)."""
    if scope == "all":
        return None
    return or_(Conversation.assignee_id == agent_id, Conversation.assignee_id.is_(None))


def notification_feed(session: DbSession, agent_id: int, scope: str) -> Feed:
    newest = (
        select(Message.id, Message.type, func.left(Message.text, PREVIEW_CHARS).label("text"))
        .where(
            Message.conversation_id == Conversation.id,
            Message.direction == "in",
            Message.is_read.is_(False),
            Message.type.not_in(HIDDEN_TYPES),
        )
        .order_by(Message.id.desc())
        .limit(1)
        .lateral("newest")
    )
    conditions = [Conversation.unread_count > 0]
    in_scope = scope_condition(agent_id, scope)
    if in_scope is not None:
        conditions.append(in_scope)
    conversations = list(
        session.execute(
            select(
                Conversation.id,
                Contact.display_name.label("contact_display_name"),
                Contact.profile_name.label("contact_name"),
                Contact.wa_id.label("contact_wa_id"),
                Contact.user_id.label("contact_user_id"),
                newest.c.id.label("message_id"),
                newest.c.type.label("message_type"),
                newest.c.text.label("message_text"),
                func.sum(Conversation.unread_count).over().label("unread_total"),
            )
            .join(Contact, Contact.id == Conversation.contact_id)
            .join(newest, newest.c.id.is_not(None))
            .where(*conditions)
            .order_by(Conversation.last_activity_at.desc(), Conversation.id.desc())
            .limit(FEED_CONVERSATIONS)
        )
    )
    author = aliased(Agent, name="author")
    mentions = list(
        session.execute(
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
            .where(Mention.agent_id == agent_id, Mention.read_at.is_(None))
            .order_by(Mention.id.desc())
            .limit(FEED_MENTIONS)
        )
    )
    return Feed(
        unread_messages=int(conversations[0].unread_total) if conversations else 0,
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
