"""Two baselines for `bench/list_benchmark.py`, served by their own gunicorn on the same data.

Both read the project's real tables (`conversations`, `messages`, `contacts`) with plain
SQLAlchemy Core, never the summary columns (`last_message_id`, `unread_count`, …) that the
project's list endpoint relies on:

* `GET /old/conversaciones`: the approach the capacity analysis starts from. Every
  conversation, ordered by `updated_at DESC`, no pagination; then, per conversation, one
  query for its last message, one for its last agent message and one for its unread count
  (1 + 3 N statements).
* `GET /proposed/conversaciones?page=&per_page=`: the analysis' "proposed query". One
  statement joins each conversation to its last message through a correlated
  `max(sent_at)` subquery, plus one global unread-count `GROUP BY` over all messages, plus
  the `count(*)` that `paginate()` runs for the total; paginated (per_page 50).

The analysis' snippet fails under SQLAlchemy 2: the `max(sent_at)` subquery selects from
the same `messages` entity the outer query joins, so auto-correlation removes its only FROM
("returned no FROM clauses due to auto-correlation"). Here the subquery reads an alias
(`m2`) and correlates on `conversations` alone. Its unread filter (`sender_type='customer'`
and not read) is written `direction = 'in' AND NOT is_read`, the predicate of this schema's
partial index `ix_messages_conversation_unread`, so the baseline gets that index: the
strongest honest form of the proposal, not a strawman.

* `GET /ceiling/conversaciones?page=&per_page=` (header `X-Agent-Id`: whose "mine" tab is
  counted): the hand-written ceiling of this project's own list. The same page of the same list
  with the same JSON (every field of `ConversationSummary`, the labels, the pagination and the
  tab counts), read from the same summary columns (`last_message_id`, `last_agent_message_id`,
  `unread_count`, …) by one hand-written statement on a raw psycopg2 cursor in autocommit (one
  round trip, no pre-ping, no BEGIN/ROLLBACK), tuples turned into dicts by hand and encoded with
  `json.dumps`. No ORM, no statement compilation, no authentication, limiter, logging or
  metrics: the fastest honest implementation of the endpoint on this stack.

No authentication: the project's endpoint pays one more statement (the token lookup),
which only favours the baselines. Pool sizing comes from `config.engine_options()`, as for
the app. Run: `gunicorn … bench.baselines:app` with DATABASE_URL set.
"""

from __future__ import annotations

import json
import math
import os
import queue
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import psycopg2
from flask import Flask, Response, jsonify, request
from sqlalchemy import and_, column, create_engine, func, not_, select, table
from sqlalchemy.engine import Connection, Engine

from config import engine_options, normalise_database_url

PREVIEW_CHARS = 160
DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 100

# Lightweight Core tables: only the columns the baselines read, none of the summary columns.
conversations = table(
    "conversations",
    column("id"),
    column("contact_id"),
    column("status"),
    column("assignee_id"),
    column("created_at"),
    column("updated_at"),
)
contacts = table("contacts", column("id"), column("wa_id"), column("user_id"), column("profile_name"))
messages = table(
    "messages",
    column("id"),
    column("conversation_id"),
    column("direction"),
    column("sender"),
    column("type"),
    column("text"),
    column("sent_at"),
    column("status"),
    column("is_read"),
)

CONVERSATION_COLUMNS = (
    conversations.c.id,
    conversations.c.status,
    conversations.c.assignee_id,
    conversations.c.created_at,
    conversations.c.updated_at,
    contacts.c.wa_id.label("contact_wa_id"),
    contacts.c.user_id.label("contact_user_id"),
    contacts.c.profile_name.label("contact_name"),
)
MESSAGE_COLUMNS = (
    messages.c.id,
    messages.c.direction,
    messages.c.sender,
    messages.c.type,
    func.left(messages.c.text, PREVIEW_CHARS).label("preview"),
    messages.c.sent_at,
    messages.c.status,
)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _display_name(row: Any) -> str:
    if row.contact_name:
        return row.contact_name
    if row.contact_wa_id:
        return "+" + row.contact_wa_id
    return row.contact_user_id or "?"


def _message(row: Any, prefix: str = "") -> dict[str, Any] | None:
    if getattr(row, prefix + "id") is None:
        return None
    return {
        "id": getattr(row, prefix + "id"),
        "direction": getattr(row, prefix + "direction"),
        "type": getattr(row, prefix + "type"),
        "preview": getattr(row, prefix + "preview"),
        "sent_at": _iso(getattr(row, prefix + "sent_at")),
        "status": getattr(row, prefix + "status"),
    }


def _conversation(row: Any, unread: int, last: dict[str, Any] | None, last_agent: dict[str, Any] | None) -> dict:
    return {
        "id": row.id,
        "display_name": _display_name(row),
        "contact": {"wa_id": row.contact_wa_id, "user_id": row.contact_user_id, "name": row.contact_name},
        "status": row.status,
        "assignee_id": row.assignee_id,
        "unread_count": unread,
        "last_message": last,
        "last_agent_message": last_agent,
        "updated_at": _iso(row.updated_at),
    }


# --- (a) the old approach: all conversations, then three queries per conversation ---------------

ALL_CONVERSATIONS = (
    select(*CONVERSATION_COLUMNS)
    .select_from(conversations.join(contacts, contacts.c.id == conversations.c.contact_id))
    .order_by(conversations.c.updated_at.desc())
)


def _last_message(conn: Connection, conversation_id: int, *, agent_only: bool) -> Any:
    query = select(*MESSAGE_COLUMNS).where(messages.c.conversation_id == conversation_id)
    if agent_only:
        query = query.where(messages.c.sender == "agent")
    return conn.execute(query.order_by(messages.c.sent_at.desc()).limit(1)).first()


def _unread_count(conn: Connection, conversation_id: int) -> int:
    return conn.execute(
        select(func.count(messages.c.id)).where(
            messages.c.conversation_id == conversation_id,
            messages.c.sender == "customer",
            not_(messages.c.is_read),
        )
    ).scalar_one()


def old_approach(conn: Connection) -> list[dict[str, Any]]:
    data = []
    for row in conn.execute(ALL_CONVERSATIONS).all():
        last = _last_message(conn, row.id, agent_only=False)
        last_agent = _last_message(conn, row.id, agent_only=True)
        data.append(
            _conversation(
                row,
                _unread_count(conn, row.id),
                _message(last) if last else None,
                _message(last_agent) if last_agent else None,
            )
        )
    return data


# --- (b) the proposed query: correlated max(sent_at) join + global unread GROUP BY -----------

_m2 = messages.alias("m2")
_latest_sent_at = select(func.max(_m2.c.sent_at)).where(_m2.c.conversation_id == conversations.c.id).scalar_subquery()
PROPOSED_PAGE = (
    select(
        *CONVERSATION_COLUMNS,
        messages.c.id.label("lm_id"),
        messages.c.direction.label("lm_direction"),
        messages.c.type.label("lm_type"),
        func.left(messages.c.text, PREVIEW_CHARS).label("lm_preview"),
        messages.c.sent_at.label("lm_sent_at"),
        messages.c.status.label("lm_status"),
    )
    .select_from(
        conversations.join(contacts, contacts.c.id == conversations.c.contact_id).outerjoin(
            messages,
            and_(messages.c.conversation_id == conversations.c.id, messages.c.sent_at == _latest_sent_at),
        )
    )
    .order_by(conversations.c.updated_at.desc())
)
PROPOSED_TOTAL = select(func.count()).select_from(conversations)
PROPOSED_UNREAD = (
    select(messages.c.conversation_id, func.count(messages.c.id).label("unread"))
    .where(messages.c.direction == "in", not_(messages.c.is_read))
    .group_by(messages.c.conversation_id)
)


def proposed_query(conn: Connection, page: int, per_page: int) -> dict[str, Any]:
    total = conn.execute(PROPOSED_TOTAL).scalar_one()
    rows = conn.execute(PROPOSED_PAGE.limit(per_page).offset((page - 1) * per_page)).all()
    unread = {conversation_id: count for conversation_id, count in conn.execute(PROPOSED_UNREAD).all()}
    return {
        "conversations": [_conversation(row, unread.get(row.id, 0), _message(row, "lm_"), None) for row in rows],
        "pagination": {
            "page": page,
            "per_page": per_page,
            "total": total,
            "pages": math.ceil(total / per_page) if total else 0,
        },
    }


# --- (c) the ceiling: this project's list by hand, on the summary columns ---------------------

CEILING_SQL = f"""
WITH counts AS (
    SELECT count(*) FILTER (WHERE assignee_id = %(agent)s) AS mine,
           count(*) FILTER (WHERE assignee_id IS NULL) AS unassigned,
           count(*) AS total
    FROM conversations
), page_ids AS (
    SELECT id, last_activity_at FROM conversations
    ORDER BY last_activity_at DESC, id DESC LIMIT %(limit)s OFFSET %(offset)s
)
SELECT counts.mine, counts.unassigned, counts.total,
       c.id, c.status, c.snoozed_until, c.unread_count, c.last_activity_at,
       c.last_customer_message_at, c.updated_at,
       ct.id, ct.wa_id, ct.user_id, ct.profile_name, ct.display_name,
       a.id, a.name,
       lm.id, lm.direction, lm.type, left(lm.text, {PREVIEW_CHARS}), lm.sent_at, lm.status, lm.deleted_at,
       la.id, la.type, left(la.text, {PREVIEW_CHARS}), la.sent_at, la.status, la.deleted_at,
       las.id, las.name,
       (SELECT coalesce(json_agg(json_build_object('id', l.id, 'name', l.name, 'color', l.color)
                                 ORDER BY lower(l.name), l.id), '[]'::json)
        FROM conversation_labels cl JOIN labels l ON l.id = cl.label_id
        WHERE cl.conversation_id = c.id)
FROM counts
LEFT JOIN (page_ids
           JOIN conversations c ON c.id = page_ids.id
           JOIN contacts ct ON ct.id = c.contact_id
           LEFT JOIN agents a ON a.id = c.assignee_id
           LEFT JOIN messages lm ON lm.id = c.last_message_id
           LEFT JOIN messages la ON la.id = c.last_agent_message_id
           LEFT JOIN agents las ON las.id = la.agent_id) ON true
ORDER BY page_ids.last_activity_at DESC, page_ids.id DESC
"""
WINDOW = timedelta(hours=24)  # app.whatsapp.rules.CUSTOMER_SERVICE_WINDOW, written out here


def _name(team: str | None, profile: str | None, wa_id: str | None, user_id: str | None) -> str:
    if team:
        return team
    if profile:
        return profile
    if wa_id:
        return "+" + wa_id if wa_id.isascii() and wa_id.isdigit() else wa_id
    return user_id or "?"


def ceiling_page(cursor: Any, agent_id: int, page: int, per_page: int) -> dict[str, Any]:
    cursor.execute(CEILING_SQL, {"agent": agent_id, "limit": per_page, "offset": (page - 1) * per_page})
    rows = cursor.fetchall()
    mine, unassigned, total = rows[0][:3]
    conversations = []
    for r in rows:
        if r[3] is None:  # a page beyond the last: the counts alone
            continue
        (_, _, _, cid, status, snoozed, unread, activity, last_customer, updated) = r[:10]
        (contact_id, wa_id, user_id, profile, team, assignee_id, assignee_name) = r[10:17]
        (lm_id, lm_direction, lm_type, lm_preview, lm_sent_at, lm_status, lm_deleted) = r[17:24]
        (la_id, la_type, la_preview, la_sent_at, la_status, la_deleted, las_id, las_name, labels) = r[24:33]
        conversations.append(
            {
                "id": cid,
                "display_name": _name(team, profile, wa_id, user_id),
                "contact": {
                    "id": contact_id,
                    "wa_id": wa_id,
                    "user_id": user_id,
                    "name": profile,
                    "display_name": team,
                },
                "status": status,
                "snoozed_until": _iso(snoozed),
                "assignee": {"id": assignee_id, "name": assignee_name} if assignee_id else None,
                "unread_count": unread,
                "last_message": {
                    "id": lm_id,
                    "direction": lm_direction,
                    "type": lm_type,
                    "preview": None if lm_deleted else lm_preview,
                    "sent_at": _iso(lm_sent_at),
                    "status": lm_status,
                    "deleted": lm_deleted is not None,
                }
                if lm_id
                else None,
                "last_agent_message": {
                    "id": la_id,
                    "type": la_type,
                    "preview": None if la_deleted else la_preview,
                    "sent_at": _iso(la_sent_at),
                    "status": la_status,
                    "agent": {"id": las_id, "name": las_name} if las_id else None,
                }
                if la_id
                else None,
                "last_customer_message_at": _iso(last_customer),
                "window_expires_at": _iso(last_customer + WINDOW) if last_customer else None,
                "last_activity_at": _iso(activity),
                "updated_at": _iso(updated),
                "labels": labels,
            }
        )
    return {
        "conversations": conversations,
        "pagination": {
            "page": page,
            "per_page": per_page,
            "total": total,
            "pages": math.ceil(total / per_page) if total else 0,
        },
        "counts": {"mine": mine, "unassigned": unassigned, "all": total},
    }


class RawPool:
    """psycopg2 connections in autocommit, one per request thread at a time (no pre-ping)."""

    def __init__(self, url: str, size: int, connect_args: dict[str, Any]) -> None:
        self.dsn = url.replace("postgresql+psycopg2://", "postgresql://", 1)
        self.connect_args = connect_args
        self.idle: queue.LifoQueue[Any] = queue.LifoQueue()
        self.size = size

    @contextmanager
    def cursor(self) -> Iterator[Any]:
        try:
            conn = self.idle.get_nowait()
        except queue.Empty:
            conn = psycopg2.connect(self.dsn, **self.connect_args)
            conn.autocommit = True
        try:
            with conn.cursor() as cursor:
                yield cursor
        except psycopg2.Error:
            conn.close()
            raise
        if self.idle.qsize() < self.size:
            self.idle.put(conn)
        else:
            conn.close()


def _page_args() -> tuple[int, int]:
    page = request.args.get("page", 1, type=int) or 1
    per_page = request.args.get("per_page", DEFAULT_PER_PAGE, type=int) or DEFAULT_PER_PAGE
    return max(page, 1), min(max(per_page, 1), MAX_PER_PAGE)


def create_app(database_url: str | None = None) -> Flask:
    url = normalise_database_url(database_url or os.environ["DATABASE_URL"])
    options = engine_options(os.environ)
    engine: Engine = create_engine(url, **options)
    raw = RawPool(url, options["pool_size"], options["connect_args"])
    app = Flask(__name__)

    @app.get("/healthz")
    def healthz() -> Any:
        return jsonify(status="ok")

    @app.get("/old/conversaciones")
    def old() -> Any:
        with engine.connect() as conn:
            return jsonify(conversations=old_approach(conn))

    @app.get("/proposed/conversaciones")
    def proposed() -> Any:
        page, per_page = _page_args()
        with engine.connect() as conn:
            return jsonify(proposed_query(conn, page, per_page))

    @app.get("/ceiling/conversaciones")
    def ceiling() -> Any:
        page, per_page = _page_args()
        with raw.cursor() as cursor:
            data = ceiling_page(cursor, int(request.headers.get("X-Agent-Id", "0")), page, per_page)
        return Response(json.dumps(data), mimetype="application/json")

    return app


app = create_app() if os.environ.get("DATABASE_URL") else None
