"""A contact's profile: what the team knows about a person, and their conversations.

The team's fields — `display_name`, `notes`, `attributes` — are edited here and only here;
WhatsApp's `profile_name` is the webhooks' (app/services/ingest.py) and the two never
overwrite each other. How a contact is shown (the team's name, else the profile name, else the
number) is decided in one place, `app/api/serializers.display_name`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import aliased

from app.extensions import db
from app.models import BusinessNumber, Contact, Conversation, Message
from app.services.conversations import PREVIEW_CHARS
from app.services.errors import NotFound


@dataclass(frozen=True)
class ContactProfile:
    contact: Contact
    conversations: list[Any]  # rows: id, status, unread_count, last_activity_at, business_number, preview


@dataclass(frozen=True)
class ContactChanges:
    """What a PATCH sets; a field not given (`*_given` false) is left as it is."""

    display_name: str | None = None
    display_name_given: bool = False
    notes: str | None = None
    notes_given: bool = False
    attributes: dict[str, str] | None = None


def get_contact_profile(contact_id: int) -> ContactProfile:
    contact = db.session.get(Contact, contact_id)
    if contact is None:
        raise NotFound("Contact not found.")
    last = aliased(Message, name="last_message")
    rows = db.session.execute(
        select(
            Conversation.id,
            Conversation.status,
            Conversation.unread_count,
            Conversation.last_activity_at,
            BusinessNumber.display_phone_number.label("business_number"),
            func.left(last.text, PREVIEW_CHARS).label("preview"),
            last.deleted_at.label("preview_deleted_at"),
        )
        .join(BusinessNumber, BusinessNumber.id == Conversation.business_number_id)
        .outerjoin(last, last.id == Conversation.last_message_id)
        .where(Conversation.contact_id == contact_id)
        .order_by(Conversation.last_activity_at.desc(), Conversation.id.desc())
    ).all()
    return ContactProfile(contact=contact, conversations=list(rows))


def update_contact(contact_id: int, changes: ContactChanges) -> None:
    """Set the team's fields, all or nothing (the API's schema checked them). Their
    conversations' `updated_at` moves, so the list (its cache, its ETag) shows the new name."""
    values: dict[str, Any] = {}
    if changes.display_name_given:
        values["display_name"] = changes.display_name or None
    if changes.notes_given:
        values["notes"] = changes.notes or None
    if changes.attributes is not None:
        values["attributes"] = changes.attributes
    found = db.session.execute(select(Contact.id).where(Contact.id == contact_id).with_for_update()).scalar()
    if found is None:
        raise NotFound("Contact not found.")
    if values:
        db.session.execute(update(Contact).where(Contact.id == contact_id).values(**values, updated_at=func.now()))
        db.session.execute(
            update(Conversation).where(Conversation.contact_id == contact_id).values(updated_at=func.now())
        )
    db.session.commit()
