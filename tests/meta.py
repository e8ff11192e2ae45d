"""Builders for Meta-shaped webhook deliveries (the project's own fixtures).

Shapes follow Meta's webhook reference; see ../shared/docs/whatsapp-cloud-api.md.
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

from app.whatsapp.payloads import sign

APP_SECRET = "test-app-secret"
VERIFY_TOKEN = "test-verify-token"
PHONE_NUMBER_ID = "106540352242922"
DISPLAY_NUMBER = "15550783881"
WABA_ID = "102290129340398"

_ids = itertools.count(1)


def wamid() -> str:
    return f"wamid.TEST{time.time_ns()}{next(_ids)}"


def contact(wa_id: str | None = "5491155550001", name: str | None = "Ana Pérez", user_id: str | None = None) -> dict:
    data: dict[str, Any] = {"profile": {"name": name}} if name else {"profile": {}}
    if wa_id:
        data["wa_id"] = wa_id
    if user_id:
        data["user_id"] = user_id
    return data


def message(
    msg_type: str = "text",
    *,
    id: str | None = None,
    sender: str | None = "5491155550001",
    ts: int | None = None,
    content: Any = None,
    **extra: Any,
) -> dict:
    data: dict[str, Any] = {"id": id or wamid(), "timestamp": str(ts or int(time.time())), "type": msg_type}
    if sender:
        data["from"] = sender
    if content is None and msg_type == "text":
        content = {"body": "Hola, ¿tienen turnos para mañana?"}
    if content is not None:
        data[msg_type] = content
    data.update(extra)
    return data


def status(id: str, value: str, *, ts: int | None = None, errors: list | None = None) -> dict:
    data: dict[str, Any] = {
        "id": id,
        "status": value,
        "timestamp": str(ts or int(time.time())),
        "recipient_id": "5491155550001",
    }
    if errors:
        data["errors"] = errors
    return data


def value(
    messages: list | None = None,
    statuses: list | None = None,
    contacts: list | None = None,
    phone_number_id: str = PHONE_NUMBER_ID,
) -> dict:
    data: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": DISPLAY_NUMBER, "phone_number_id": phone_number_id},
    }
    if contacts is None and messages:
        contacts = [contact()]
    if contacts:
        data["contacts"] = contacts
    if messages is not None:
        data["messages"] = messages
    if statuses is not None:
        data["statuses"] = statuses
    return data


def delivery(*values: dict, field: str = "messages") -> dict:
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": WABA_ID, "changes": [{"value": v, "field": field} for v in values]}],
    }


def encode(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")


def signed_headers(body: bytes, secret: str = APP_SECRET) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Hub-Signature-256": sign(secret, body)}
