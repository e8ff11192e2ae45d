"""JSON shapes of the API. Plain functions from query rows to dicts; no queries here."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from operator import attrgetter
from typing import Any

from app.models import Label, Message
from app.models.messages import EVENT_TYPE
from app.whatsapp.rules import window_expires_at


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def display_name(team_name: str | None, profile_name: str | None, wa_id: str | None, user_id: str | None) -> str:
    """How a contact is shown everywhere: the team's name for them, else WhatsApp's profile
    name, else the number (or the username id)."""
    if team_name:
        return team_name
    if profile_name:
        return profile_name
    if wa_id:
        return "+" + wa_id if wa_id.isascii() and wa_id.isdigit() else wa_id
    return user_id or "?"


_SUMMARY_FIELDS = attrgetter(
    "id",
    "contact_display_name",
    "contact_name",
    "contact_wa_id",
    "contact_user_id",
    "contact_id",
    "status",
    "snoozed_until",
    "assignee_id",
    "assignee_name",
    "unread_count",
    "lm_id",
    "la_id",
    "last_customer_message_at",
    "last_activity_at",
    "updated_at",
    "labels",
)


def conversation_summary(row: Any) -> dict[str, Any]:
    """One conversation of the list (the query's columns read in one C call: this runs 50
    times per page)."""
    (
        conversation_id,
        team_name,
        profile_name,
        wa_id,
        user_id,
        contact_id,
        status,
        snoozed_until,
        assignee_id,
        assignee_name,
        unread_count,
        lm_id,
        la_id,
        last_customer,
        last_activity,
        updated_at,
        labels,
    ) = _SUMMARY_FIELDS(row)
    return {
        "id": conversation_id,
        "display_name": display_name(team_name, profile_name, wa_id, user_id),
        "contact": {
            "id": contact_id,
            "wa_id": wa_id,
            "user_id": user_id,
            "name": profile_name,
            "display_name": team_name,
        },
        "status": status,
        "snoozed_until": iso(snoozed_until) if snoozed_until else None,
        "assignee": {"id": assignee_id, "name": assignee_name} if assignee_id else None,
        "unread_count": unread_count,
        "last_message": (
            {
                "id": lm_id,
                "direction": row.lm_direction,
                "type": row.lm_type,
                "preview": None if row.lm_deleted_at else row.lm_preview,
                "sent_at": iso(row.lm_sent_at),
                "status": row.lm_status,
                "deleted": row.lm_deleted_at is not None,
            }
            if lm_id
            else None
        ),
        "last_agent_message": (
            {
                "id": la_id,
                "type": row.la_type,
                "preview": None if row.la_deleted_at else row.la_preview,
                "sent_at": iso(row.la_sent_at),
                "status": row.la_status,
                "agent": {"id": row.la_agent_id, "name": row.la_agent_name} if row.la_agent_id else None,
            }
            if la_id
            else None
        ),
        "last_customer_message_at": iso(last_customer),
        "window_expires_at": iso(window_expires_at(last_customer)) if last_customer else None,
        "last_activity_at": iso(last_activity),
        "updated_at": iso(updated_at),
        "labels": [{"id": item["id"], "name": item["name"], "color": item["color"]} for item in labels or ()],
    }


def _type_fields(m: Message) -> dict[str, Any]:
    payload = m.payload or {}
    body = payload.get(m.type) if isinstance(payload.get(m.type), dict | list) else None
    if m.type in ("image", "video", "audio", "document", "sticker"):
        extra = body if isinstance(body, dict) else {}
        return {
            "media": {
                "id": m.media_id,
                "mime_type": m.media_mime_type,
                "sha256": m.media_sha256,
                "filename": m.media_filename,
                "state": m.media_state,
                "voice": extra.get("voice") is True,
                "animated": extra.get("animated") is True,
            }
        }
    if m.type == "location":
        extra = body if isinstance(body, dict) else {}
        return {
            "location": {
                "latitude": m.latitude,
                "longitude": m.longitude,
                "name": m.location_name,
                "address": m.location_address,
                "url": extra.get("url") if isinstance(extra.get("url"), str) else None,
            }
        }
    if m.type == "contacts":
        return {"contacts": [c for c in body if isinstance(c, dict)] if isinstance(body, list) else []}
    if m.type in ("interactive", "button", "order", "system"):
        return {m.type: body if isinstance(body, dict) else {}}
    if m.type not in ("text", "unsupported", "template", "note"):
        return {"raw": payload}
    return {}


def _event(m: Message, agent_name: str | None) -> dict[str, Any]:
    """What an `event` says (see EVENT_TYPE in app/models/messages.py)."""
    payload = m.payload or {}
    return {
        "kind": payload.get("event"),
        "until": payload.get("until"),
        "by": payload.get("by"),
        "agent": {"id": m.agent_id, "name": agent_name} if m.agent_id else None,
    }


def message(row: Any, reactions: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    m: Message = row.Message
    if m.sender == "customer":
        sender: dict[str, Any] = {"type": "customer"}
    elif m.sender == "agent":
        sender = {
            "type": "agent",
            "agent": {"id": m.agent_id, "name": row.agent_name} if m.agent_id else None,
        }
    else:
        sender = {"type": "system"}
    data: dict[str, Any] = {
        "id": m.id,
        "wamid": m.wamid,
        "direction": m.direction,
        "sender": sender,
        "type": m.type,
        "text": None if m.deleted_at else m.text,
        "reply_to": (
            {
                "id": row.reply_id,
                "wamid": m.reply_to_wamid,
                "direction": row.reply_direction,
                "type": row.reply_type,
                "preview": None if row.reply_deleted_at else row.reply_preview,
            }
            if m.reply_to_wamid
            else None
        ),
        "forwarded": m.forwarded,
        "reactions": [
            {"emoji": r["emoji"], "from": r["from"], "agent_id": r["agent_id"], "sent_at": iso(r["sent_at"])}
            for r in reactions.get(m.wamid or "", [])
        ],
        "status": m.status,
        "error": (
            {"code": m.error_code, "title": m.error_title, "details": m.error_details}
            if m.error_code is not None or m.error_title
            else None
        ),
        "edited_at": iso(m.edited_at),
        "deleted": m.deleted_at is not None,
        "sent_at": iso(m.sent_at),
        "received_at": iso(m.received_at),
    }
    if m.template_name:
        data["template"] = {"name": m.template_name, "language": m.template_language}
    if m.payload and isinstance(m.payload.get("referral"), dict):
        data["referral"] = m.payload["referral"]
    if m.type == EVENT_TYPE:
        data["event"] = _event(m, row.agent_name)
    elif not m.deleted_at:
        data.update(_type_fields(m))
    return data


def agent_reaction(m: Message) -> dict[str, Any]:
    """A reaction the business sent (app/services/reactions.py), with its delivery status."""
    return {
        "id": m.id,
        "wamid": m.wamid,
        "emoji": m.reaction_emoji,
        "status": m.status,
        "error": (
            {"code": m.error_code, "title": m.error_title, "details": m.error_details}
            if m.error_code is not None or m.error_title
            else None
        ),
        "agent_id": m.agent_id,
        "sent_at": iso(m.sent_at),
    }


def canned_response(row: Any) -> dict[str, Any]:
    c = row.CannedResponse
    return {
        "id": c.id,
        "short_code": c.short_code,
        "text": c.text,
        "created_by": {"id": c.created_by_id, "name": row.created_by_name} if c.created_by_id else None,
        "created_at": iso(c.created_at),
    }


def contact_profile(profile: Any) -> dict[str, Any]:
    """A contact's profile (app/services/contacts.ContactProfile)."""
    c = profile.contact
    phone = "+" + c.wa_id if c.wa_id and c.wa_id.isascii() and c.wa_id.isdigit() else None
    return {
        "id": c.id,
        "wa_id": c.wa_id,
        "user_id": c.user_id,
        "phone": phone,
        "profile_name": c.profile_name,
        "display_name": c.display_name,
        "name": display_name(c.display_name, c.profile_name, c.wa_id, c.user_id),
        "notes": c.notes or "",
        "attributes": dict(c.attributes or {}),
        "conversations": [
            {
                "id": row.id,
                "status": row.status,
                "business_number": row.business_number,
                "unread_count": row.unread_count,
                "last_activity_at": iso(row.last_activity_at),
                "last_message_preview": None if row.preview_deleted_at else row.preview,
            }
            for row in profile.conversations
        ],
        "created_at": iso(c.created_at),
        "updated_at": iso(c.updated_at),
    }


def label(item: Label) -> dict[str, Any]:
    return {"id": item.id, "name": item.name, "color": item.color, "created_at": iso(item.created_at)}


def found_message(row: Any, reactions: dict[str, list[dict[str, Any]]], snippet: str) -> dict[str, Any]:
    """A search result: the message as the thread shows it, its conversation and its snippet."""
    wa_id = row.contact_wa_id
    return {
        **message(row, reactions),
        "conversation": {
            "id": row.Message.conversation_id,
            "display_name": display_name(row.contact_display_name, row.contact_name, wa_id, row.contact_user_id),
            "contact": {
                "name": row.contact_name,
                "phone": "+" + wa_id if wa_id and wa_id.isascii() and wa_id.isdigit() else None,
            },
            "status": row.conversation_status,
        },
        "snippet": snippet,
    }


def agent_profile(agent: Any, preferences: Any) -> dict[str, Any]:
    """The caller (`GET|PATCH /yo`): `preferences` is app/services/preferences.Preferences."""
    return {
        "id": agent.id,
        "name": agent.name,
        "email": agent.email,
        "role": agent.role,
        **asdict(preferences),
    }


def mention(row: Any) -> dict[str, Any]:
    """A mention as app/services/mentions.py selects it."""
    return {
        "id": row.id,
        "conversation": {
            "id": row.conversation_id,
            "display_name": display_name(
                row.contact_display_name, row.contact_name, row.contact_wa_id, row.contact_user_id
            ),
        },
        "note": {"id": row.message_id, "text": row.preview, "sent_at": iso(row.sent_at)},
        "author": {"id": row.author_id, "name": row.author_name} if row.author_id else None,
        "created_at": iso(row.created_at),
        "read_at": iso(row.read_at),
    }
