"""Reading conversations and their messages for the API and the inbox pages.

The list costs two statements whatever the page size or page number: one aggregate for the
total and the tab counts, one for the page rows (each with its labels, as a correlated
subquery on `conversation_labels`' primary key). The page's ids are chosen on the
conversation indexes alone (`ORDER BY last_activity_at DESC, id DESC LIMIT … OFFSET …`) and
only those rows are joined to their contact, last message and assignee, by primary key.
No per-conversation query, no GROUP BY over messages: the summary columns on
`conversations` are kept exact by the writers.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, func, or_, select, text, tuple_
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import aliased

from app.extensions import DbSession
from app.models import Agent, Contact, Conversation, ConversationLabel, Label, Message
from app.models.messages import HIDDEN_TYPES
from app.prepared import PREPARED

PREVIEW_CHARS = 160


@dataclass(frozen=True)
class ConversationFilters:
    statuses: tuple[str, ...] = ()
    assignee: str | int = "all"  # "all", "me", "unassigned" or an agent id
    q: str | None = None
    unread: bool | None = None
    label: int | None = None  # only conversations carrying this label


@dataclass
class ConversationPage:
    rows: list[Any]
    page: int
    per_page: int
    total: int
    counts: dict[str, int]

    @property
    def pages(self) -> int:
        return math.ceil(self.total / self.per_page) if self.total else 0


def escape_like(value: str) -> str:
    """`value` matched literally inside a LIKE pattern (escape character: backslash)."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _search_expression() -> ColumnElement[str]:
    # Must match the expression of the trigram index ix_contacts_search_trgm: the team's name,
    # WhatsApp's profile name and the number.
    return (
        func.coalesce(Contact.display_name, "")
        + " "
        + func.coalesce(Contact.profile_name, "")
        + " "
        + func.coalesce(Contact.wa_id, "")
    )


@dataclass(frozen=True)
class _Shape:
    """Which filters a list request uses (not their values): the list's statements are built,
    and their SQLAlchemy cache keys computed, once per shape; the values are bound parameters."""

    statuses: bool
    unread: bool | None
    label: bool
    q: bool
    tab: str  # "all", "me", "unassigned" or "agent"

    @classmethod
    def of(cls, filters: ConversationFilters) -> _Shape:
        assignee = filters.assignee
        tab = "agent" if isinstance(assignee, int) else assignee if assignee in ("me", "unassigned") else "all"
        return cls(bool(filters.statuses), filters.unread, filters.label is not None, bool(filters.q), tab)


def _parameters(filters: ConversationFilters, agent_id: int) -> dict[str, Any]:
    return {
        "agent_id": agent_id,
        "statuses": list(filters.statuses),
        "label": filters.label,
        "pattern": f"%{escape_like(filters.q)}%" if filters.q else None,
        "assignee": filters.assignee if isinstance(filters.assignee, int) else None,
    }


def _base_conditions(shape: _Shape) -> list[Any]:
    conditions: list[Any] = []
    if shape.statuses:
        conditions.append(Conversation.status.in_(bindparam("statuses", expanding=True)))
    if shape.unread is True:
        conditions.append(Conversation.unread_count > 0)
    elif shape.unread is False:
        conditions.append(Conversation.unread_count == 0)
    if shape.label:
        conditions.append(
            Conversation.id.in_(
                select(ConversationLabel.conversation_id).where(ConversationLabel.label_id == bindparam("label"))
            )
        )
    if shape.q:
        conditions.append(
            Conversation.contact_id.in_(
                select(Contact.id).where(_search_expression().ilike(bindparam("pattern"), escape="\\"))
            )
        )
    return conditions


def _assignee_condition(tab: str) -> Any:
    if tab == "me":
        return Conversation.assignee_id == bindparam("agent_id")
    if tab == "unassigned":
        return Conversation.assignee_id.is_(None)
    if tab == "agent":
        return Conversation.assignee_id == bindparam("assignee")
    return None


def _labels_column() -> Any:
    """The conversation's labels as a JSON array of `{id, name, color}` by name, in the same
    statement as the row: a correlated subquery on `conversation_labels`' primary key, so a
    page costs no extra statement whatever its size."""
    return (
        select(
            func.coalesce(
                func.json_agg(
                    aggregate_order_by(
                        func.json_build_object("id", Label.id, "name", Label.name, "color", Label.color),
                        func.lower(Label.name),
                        Label.id,
                    )
                ),
                text("'[]'::json"),
            )
        )
        .select_from(ConversationLabel)
        .join(Label, Label.id == ConversationLabel.label_id)
        .where(ConversationLabel.conversation_id == Conversation.id)
        .scalar_subquery()
        .label("labels")
    )


@functools.cache
def summary_select() -> Select:
    """Columns of one conversation summary, joined by primary key only.

    Built once: constructing the aliased joins costs more than running the query.
    """
    last = aliased(Message, name="last_message")
    last_agent = aliased(Message, name="last_agent_message")
    assignee = aliased(Agent, name="assignee")
    last_agent_sender = aliased(Agent, name="last_agent_sender")
    return (
        select(
            Conversation.id,
            Conversation.status,
            Conversation.snoozed_until,
            Conversation.unread_count,
            Conversation.last_activity_at,
            Conversation.last_customer_message_at,
            Conversation.updated_at,
            Contact.wa_id.label("contact_wa_id"),
            Contact.user_id.label("contact_user_id"),
            Contact.profile_name.label("contact_name"),
            Contact.id.label("contact_id"),
            Contact.display_name.label("contact_display_name"),
            assignee.id.label("assignee_id"),
            assignee.name.label("assignee_name"),
            last.id.label("lm_id"),
            last.direction.label("lm_direction"),
            last.type.label("lm_type"),
            func.left(last.text, PREVIEW_CHARS).label("lm_preview"),
            last.sent_at.label("lm_sent_at"),
            last.status.label("lm_status"),
            last.deleted_at.label("lm_deleted_at"),
            last_agent.id.label("la_id"),
            last_agent.type.label("la_type"),
            func.left(last_agent.text, PREVIEW_CHARS).label("la_preview"),
            last_agent.deleted_at.label("la_deleted_at"),
            last_agent.sent_at.label("la_sent_at"),
            last_agent.status.label("la_status"),
            last_agent_sender.id.label("la_agent_id"),
            last_agent_sender.name.label("la_agent_name"),
            _labels_column(),
        )
        .select_from(Conversation)
        .join(Contact, Contact.id == Conversation.contact_id)
        .outerjoin(assignee, assignee.id == Conversation.assignee_id)
        .outerjoin(last, last.id == Conversation.last_message_id)
        .outerjoin(last_agent, last_agent.id == Conversation.last_agent_message_id)
        .outerjoin(last_agent_sender, last_agent_sender.id == last_agent.agent_id)
    )


@functools.cache
def _list_statements(shape: _Shape) -> tuple[Select, Select]:
    """The list's two statements for one filter shape: the total and tab counts, and the page
    rows (`limit` and `offset` bound too). Built once; a new query object per request would cost
    more Python (construction and cache-key generation) than PostgreSQL spends running it."""
    base = _base_conditions(shape)
    tab = _assignee_condition(shape.tab)
    total_expr = func.count().filter(tab) if tab is not None else func.count()
    counts = (
        select(
            func.count().filter(Conversation.assignee_id == bindparam("agent_id")).label("mine"),
            func.count().filter(Conversation.assignee_id.is_(None)).label("unassigned"),
            func.count().label("all"),
            total_expr.label("total"),
        )
        .select_from(Conversation)
        .where(*base)
    )
    page_conditions = [*base, tab] if tab is not None else base
    page_ids = (
        select(Conversation.id, Conversation.last_activity_at)
        .where(*page_conditions)
        .order_by(Conversation.last_activity_at.desc(), Conversation.id.desc())
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
        .cte("page_ids")
    )
    rows = (
        summary_select()
        .join(page_ids, page_ids.c.id == Conversation.id)
        .order_by(page_ids.c.last_activity_at.desc(), page_ids.c.id.desc())
    )
    return counts, rows


def list_conversations(
    session: DbSession, *, agent_id: int, filters: ConversationFilters, page: int, per_page: int
) -> ConversationPage:
    counts_stmt, rows_stmt = _list_statements(_Shape.of(filters))
    parameters = _parameters(filters, agent_id)
    counts_row = session.execute(counts_stmt, parameters, execution_options=PREPARED).one()
    counts = {"mine": counts_row.mine, "unassigned": counts_row.unassigned, "all": counts_row.all}
    total = counts_row.total
    offset = (page - 1) * per_page
    rows: list[Any] = []
    if offset < total:
        page_parameters = {**parameters, "limit": per_page, "offset": offset}
        rows = list(session.execute(rows_stmt, page_parameters, execution_options=PREPARED).all())
    return ConversationPage(rows=rows, page=page, per_page=per_page, total=total, counts=counts)


def get_conversation_summary(session: DbSession, conversation_id: int) -> Any | None:
    return session.execute(summary_select().where(Conversation.id == conversation_id)).first()


def get_conversation_summaries(session: DbSession, conversation_ids: list[int]) -> list[Any]:
    """The summaries of these conversations, in the order given (one statement)."""
    rows = {row.id: row for row in session.execute(summary_select().where(Conversation.id.in_(conversation_ids)))}
    return [rows[conversation_id] for conversation_id in conversation_ids if conversation_id in rows]


@dataclass
class MessagePage:
    messages: list[Any]
    reactions: dict[str, list[dict[str, Any]]]
    next_cursor: int | None


class UnknownCursor(LookupError):
    """`before` names no message of this conversation."""


@functools.cache
def thread_select() -> Select[Any]:
    """A message with its sending agent's name and the message it replies to (built once)."""
    reply = aliased(Message, name="reply")
    agent = aliased(Agent, name="sender_agent")
    return (
        select(
            Message,
            agent.name.label("agent_name"),
            reply.id.label("reply_id"),
            reply.direction.label("reply_direction"),
            reply.type.label("reply_type"),
            func.left(reply.text, PREVIEW_CHARS).label("reply_preview"),
            reply.deleted_at.label("reply_deleted_at"),
        )
        .outerjoin(agent, agent.id == Message.agent_id)
        .outerjoin(reply, reply.wamid == Message.reply_to_wamid)
    )


def message_row(session: DbSession, message_id: int) -> Any:
    return session.execute(thread_select().where(Message.id == message_id)).one()


def message_with_reactions(session: DbSession, message_id: int) -> tuple[Any, dict[str, list[dict[str, Any]]]]:
    """One message as the thread shows it, with its current reactions."""
    row = message_row(session, message_id)
    wamid = row.Message.wamid
    return row, _reactions_for(session, [wamid] if wamid else [])


def business_reaction(session: DbSession, wamid: str) -> str | None:
    """The business's current reaction to the message `wamid` (None: none)."""
    for reaction in _reactions_for(session, [wamid]).get(wamid, []):
        if reaction["from"] == "agent":
            return str(reaction["emoji"])
    return None


def list_messages(session: DbSession, conversation_id: int, *, before: int | None, limit: int) -> MessagePage:
    """One page of a thread, oldest to newest; `next_cursor` pages further back."""
    conditions: list[Any] = [Message.conversation_id == conversation_id, Message.type.not_in(HIDDEN_TYPES)]
    if before is not None:
        anchor = session.execute(
            select(Message.sent_at, Message.id).where(Message.id == before, Message.conversation_id == conversation_id)
        ).first()
        if anchor is None:
            raise UnknownCursor(before)
        conditions.append(tuple_(Message.sent_at, Message.id) < tuple_(anchor.sent_at, anchor.id))
    rows = list(
        session.execute(
            thread_select().where(*conditions).order_by(Message.sent_at.desc(), Message.id.desc()).limit(limit + 1)
        ).all()
    )
    has_more = len(rows) > limit
    rows = rows[:limit]
    rows.reverse()
    wamids = [row.Message.wamid for row in rows if row.Message.wamid]
    return MessagePage(
        messages=rows,
        reactions=_reactions_for(session, wamids),
        next_cursor=rows[0].Message.id if has_more and rows else None,
    )


@dataclass
class MessageWindow(MessagePage):
    """The thread around one message: `reaches_newest` is false when more messages follow than
    the window holds (the page then shows older history, not the live end of the thread)."""

    reaches_newest: bool = True


def list_messages_around(
    session: DbSession, conversation_id: int, message_id: int, *, before: int, at_least: int, after_max: int
) -> MessageWindow:
    """The thread from a little before `message_id` to the newest message (at most `after_max`
    from it on), and at least `at_least` messages in all, oldest to newest; `next_cursor` pages
    further back as `list_messages` does. `UnknownCursor` when the message is not one of this
    conversation's shown messages."""
    anchor = session.execute(
        select(Message.sent_at, Message.id).where(
            Message.id == message_id,
            Message.conversation_id == conversation_id,
            Message.type.not_in(HIDDEN_TYPES),
        )
    ).first()
    if anchor is None:
        raise UnknownCursor(message_id)
    shown = [Message.conversation_id == conversation_id, Message.type.not_in(HIDDEN_TYPES)]
    key = tuple_(Message.sent_at, Message.id)
    point = tuple_(anchor.sent_at, anchor.id)
    newer = list(
        session.execute(
            thread_select().where(*shown, key >= point).order_by(Message.sent_at, Message.id).limit(after_max + 1)
        ).all()
    )
    reaches_newest = len(newer) <= after_max
    newer = newer[:after_max]
    wanted = max(before, at_least - len(newer))
    older = list(
        session.execute(
            thread_select()
            .where(*shown, key < point)
            .order_by(Message.sent_at.desc(), Message.id.desc())
            .limit(wanted + 1)
        ).all()
    )
    has_more = len(older) > wanted
    older = older[:wanted]
    older.reverse()
    rows = older + newer
    wamids = [row.Message.wamid for row in rows if row.Message.wamid]
    return MessageWindow(
        messages=rows,
        reactions=_reactions_for(session, wamids),
        next_cursor=rows[0].Message.id if has_more and rows else None,
        reaches_newest=reaches_newest,
    )


def _reactions_for(session: DbSession, wamids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Current reactions per target: the latest reaction of each side — the customer, and the
    business (one number: whichever agent reacted last, or an echo of the WhatsApp Business app,
    replaces it, as on the customer's phone); removals clear it. A reaction Graph refused
    (`failed`) changed nothing on WhatsApp, so it is passed over."""
    if not wamids:
        return {}
    rows = session.execute(
        select(
            Message.reaction_to_wamid,
            Message.reaction_emoji,
            Message.direction,
            Message.agent_id,
            Message.sent_at,
        )
        .where(
            Message.reaction_to_wamid.in_(wamids),
            Message.type == "reaction",
            or_(Message.status.is_(None), Message.status != "failed"),
        )
        .order_by(Message.sent_at, Message.id)
    ).all()
    latest: dict[tuple[str, str], tuple[str | None, int | None, datetime]] = {}
    for row in rows:
        latest[(row.reaction_to_wamid, row.direction)] = (row.reaction_emoji, row.agent_id, row.sent_at)
    reactions: dict[str, list[dict[str, Any]]] = {}
    for (target, direction), (emoji, agent_id, sent_at) in latest.items():
        if emoji:
            reactions.setdefault(target, []).append(
                {
                    "emoji": emoji,
                    "from": "customer" if direction == "in" else "agent",
                    "agent_id": agent_id,
                    "sent_at": sent_at,
                }
            )
    return reactions


def conversation_exists(session: DbSession, conversation_id: int) -> bool:
    return session.execute(select(Conversation.id).where(Conversation.id == conversation_id)).first() is not None
