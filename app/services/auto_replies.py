"""Automatic replies: the away message (once per closed period per conversation) and the
optional greeting (a customer's first message ever).

Owed in the webhook's transaction, sent by a job:

- `ReplyCheck.owed()` runs inside ingest (app/services/ingest.py) for each customer message it
  stores: judged on the message's own timestamp in the business time zone, it records the reply
  with `INSERT … ON CONFLICT DO NOTHING` on UNIQUE (conversation_id, kind, period_start), so a
  duplicate or concurrent delivery, or five messages in a row, leave one row. The settings are
  read once per delivery, and only when it holds a customer message.
- After the commit the inbound service queues `replies.send` (app/jobs/replies.py); the sweep
  queues any pending row whose job was lost.
- `send_reply()` claims the row and stores the outbound message `pending` (sender `system`)
  in one transaction, then calls Graph through the sending service (app/services/sending.py):
  a crash after the claim leaves a visible pending message and is never sent twice. It is
  skipped when the 24-hour window has closed, an agent answered first, or the setting was
  switched off meanwhile.

Which messages count: the customer's own (`sender = 'customer'`, inbound), not reactions,
edits, revocations or Meta's system messages; never statuses or echoes of our own messages.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import cast

from sqlalchemy import Table, bindparam, select, text, update
from sqlalchemy.dialects.postgresql import insert

from app.extensions import DbSession, db
from app.models import AutoReply, Message
from app.models.messages import HIDDEN_TYPES
from app.services import business_hours as hours_settings
from app.services import sending
from app.services.errors import DomainError
from app.whatsapp.business_hours import ALWAYS_CLOSED_SINCE, closed_period_start

log = logging.getLogger(__name__)

# Customer messages that never trigger an automatic reply.
SILENT_TYPES = (*HIDDEN_TYPES, "system")
# The greeting's one "period": the epoch, so UNIQUE (conversation, 'greeting', period) is once ever.
GREETING_PERIOD = ALWAYS_CLOSED_SINCE
# Rows the sweep leaves to their job for a moment (the webhook queues it right after commit).
SWEEP_GRACE = timedelta(seconds=30)

_replies = cast(Table, AutoReply.__table__)
INSERT_REPLY = (
    insert(_replies)
    .values(
        conversation_id=bindparam("p_conversation_id"),
        kind=bindparam("p_kind"),
        period_start=bindparam("p_period_start"),
        message_id=bindparam("p_message_id"),
    )
    .on_conflict_do_nothing(index_elements=[_replies.c.conversation_id, _replies.c.kind, _replies.c.period_start])
    .returning(_replies.c.id)
)
# Is this the customer's first message ever in the conversation? (Only asked with a greeting on.)
OTHER_CUSTOMER_MESSAGE = text(
    "SELECT EXISTS (SELECT 1 FROM messages WHERE conversation_id = :c AND sender = 'customer' AND id <> :m)"
)


@dataclass
class ReplyCheck:
    """One delivery's check: the settings are read on its first customer message, then reused.
    With `digest` known (the settings row's fingerprint, read by ingest's first statement) they
    come from the per-process copy kept under it (`business_hours.in_force`), without a read."""

    settings: hours_settings.HoursSettings | None = None
    loaded: bool = field(default=False)
    digest: str | None = None
    digest_known: bool = False

    def knows_digest(self, digest: str | None) -> None:
        self.digest, self.digest_known = digest, True

    def owed(
        self,
        session: DbSession,
        conversation_id: int,
        message_id: int,
        *,
        direction: str,
        sender: str,
        message_type: str,
        sent_at: datetime,
    ) -> list[int]:
        """Record the automatic reply a just-stored message makes owed (in the caller's
        transaction); the ids of the rows this call inserted, for the caller to queue."""
        if direction != "in" or sender != "customer" or message_type in SILENT_TYPES:
            return []
        if not self.loaded:
            self.settings = (
                hours_settings.in_force(session, self.digest) if self.digest_known else hours_settings.load(session)
            )
            self.loaded = True
        settings = self.settings
        if settings is None or not (settings.away_on or settings.greeting_on):
            return []
        kind, period = None, None
        if settings.away_on:
            period = closed_period_start(settings.schedule, sent_at)
            if period is not None:
                kind = "away"
        if kind is None and settings.greeting_on:
            others = session.execute(OTHER_CUSTOMER_MESSAGE, {"c": conversation_id, "m": message_id}).scalar()
            if not others:
                kind, period = "greeting", GREETING_PERIOD
        if kind is None:
            return []
        inserted = session.execute(
            INSERT_REPLY,
            {
                "p_conversation_id": conversation_id,
                "p_kind": kind,
                "p_period_start": period,
                "p_message_id": message_id,
            },
        ).scalar()
        return [inserted] if inserted is not None else []


def _finish(reply_id: int, state: str, reason: str | None = None) -> None:
    db.session.execute(
        update(AutoReply)
        .where(AutoReply.id == reply_id)
        .values(state=state, reason=reason, finished_at=datetime.now(UTC))
    )


def send_reply(reply_id: int) -> str:
    """Send one owed automatic reply; idempotent (a row no longer pending, or claimed by
    another worker, is left alone). Returns what happened: sent, failed, skipped:<why>,
    not_owed."""
    reply = db.session.execute(
        select(AutoReply)
        .where(AutoReply.id == reply_id, AutoReply.state == "pending")
        .with_for_update(skip_locked=True)
    ).scalar_one_or_none()
    if reply is None:
        db.session.rollback()
        return "not_owed"
    settings = hours_settings.load(db.session)
    on = settings.away_on if reply.kind == "away" else settings.greeting_on
    body = settings.away_message if reply.kind == "away" else settings.greeting_message
    reason = None if on else "switched_off"
    if reason is None and reply.message_id is not None:
        trigger_at = select(Message.sent_at).where(Message.id == reply.message_id).scalar_subquery()
        answered = db.session.execute(
            select(Message.id)
            .where(
                Message.conversation_id == reply.conversation_id,
                Message.sender == "agent",
                Message.direction == "out",
                Message.sent_at > trigger_at,
            )
            .limit(1)
        ).first()
        reason = "answered" if answered is not None else None
    if reason is None:
        try:
            message_id, phone_number_id, payload = sending.store_automatic(reply.conversation_id, body)
        except DomainError as refused:  # the window closed, the contact has no number
            reason = refused.code
    if reason is not None:
        _finish(reply_id, "skipped", reason)
        db.session.commit()
        return f"skipped:{reason}"
    db.session.execute(
        update(AutoReply).where(AutoReply.id == reply_id).values(state="sending", reply_message_id=message_id)
    )
    db.session.commit()  # claimed with its pending message: never sent twice from here on
    outcome = sending.deliver_automatic(message_id, phone_number_id, payload)
    state = "failed" if outcome.error is not None else "sent"
    _finish(reply_id, state, str(outcome.error.code) if outcome.error is not None else None)
    db.session.commit()
    return state


def owed_replies(limit: int = 500) -> list[int]:
    """Pending replies the webhook recorded more than `SWEEP_GRACE` ago (their job may be lost)."""
    ids = list(
        db.session.execute(
            select(AutoReply.id)
            .where(AutoReply.state == "pending", AutoReply.created_at < datetime.now(UTC) - SWEEP_GRACE)
            .order_by(AutoReply.id)
            .limit(limit)
        ).scalars()
    )
    db.session.commit()
    return ids
