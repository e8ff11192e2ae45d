"""WhatsApp's rules, in one place: the 24-hour customer-service window, template placeholders,
the limits on a text message, what a business may react to and the order in which delivery
statuses may move.

Pure functions and constants (no Flask, no database): the sending service, the serialisers,
the status updates (`app/services/statuses.py`) and the pages all ask this module, and the
browser is handed the results.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import emoji

# Free text is accepted only within 24 hours of the customer's last message (by Meta's clock).
CUSTOMER_SERVICE_WINDOW = timedelta(hours=24)

# Graph's limit on a text message body.
MAX_TEXT_CHARS = 4096

# A status only ever moves forward. `failed` outranks `sent` (a late "sent" must not hide a
# failure) but not `delivered`/`read` (those prove the message arrived).
STATUS_RANK: dict[str, int] = {
    "pending": 0,
    "accepted": 5,
    "sent": 10,
    "failed": 15,
    "delivered": 20,
    "read": 30,
    "played": 40,
}

# A business's reaction reaches only a customer's message of the last 30 days that is not deleted
# (Meta answers others with a failed status, error 131009, by webhook).
REACTION_MAX_AGE = timedelta(days=30)

# `{{1}}` or `{{first_name}}` in a template's text or URL button.
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")


def window_expires_at(last_customer_message_at: datetime | None) -> datetime | None:
    """When the customer-service window closes (None: the customer never wrote)."""
    if last_customer_message_at is None:
        return None
    return last_customer_message_at + CUSTOMER_SERVICE_WINDOW


def window_open(last_customer_message_at: datetime | None, now: datetime | None = None) -> bool:
    """True while free text may be sent to the customer."""
    expires = window_expires_at(last_customer_message_at)
    return expires is not None and (now or datetime.now(UTC)) < expires


def status_advances(current: str | None, new: str) -> bool:
    """True when `new` may replace `current` (statuses never move backwards)."""
    return STATUS_RANK.get(new, 0) > STATUS_RANK.get(current or "pending", 0)


def is_single_emoji(text: str) -> bool:
    """True when `text` is exactly one emoji (skin tones, flags, keycaps and ZWJ sequences
    included), as a WhatsApp reaction must be: by the `emoji` library's Unicode data."""
    return emoji.is_emoji(text)


def reaction_refusal(
    *, direction: str, sender: str, wamid: str | None, deleted: bool, sent_at: datetime, now: datetime | None = None
) -> str | None:
    """Why a business may not react to this message (None: it may). Reactions are free-form
    messages: the 24-hour window (`window_open`) applies to them as well."""
    if direction != "in" or sender != "customer":
        return "Only a customer's message can be reacted to."
    if not wamid:
        return "This message has no WhatsApp id to react to."
    if deleted:
        return "The customer deleted this message."
    if (now or datetime.now(UTC)) - sent_at > REACTION_MAX_AGE:
        return "WhatsApp takes reactions only to messages of the last 30 days."
    return None


def _text_header(component: dict[str, Any]) -> bool:
    return str(component.get("format", "TEXT")).upper() == "TEXT"


def template_placeholders(components: list[Any]) -> list[str]:
    """Every placeholder of a template as `component.name`, e.g. body.1, header.1, button.0.1."""
    found: list[str] = []
    for component in components:
        if not isinstance(component, dict):
            continue
        kind = str(component.get("type", "")).lower()
        if kind == "body" or (kind == "header" and _text_header(component)):
            found += [f"{kind}.{p}" for p in PLACEHOLDER.findall(str(component.get("text", "")))]
        elif kind == "buttons":
            for index, button in enumerate(component.get("buttons") or []):
                if isinstance(button, dict) and str(button.get("type", "")).upper() == "URL":
                    found += [f"button.{index}.{p}" for p in PLACEHOLDER.findall(str(button.get("url", "")))]
    return list(dict.fromkeys(found))


def template_graph_payload(
    name: str, language: str, components: list[Any], parameters: dict[str, str]
) -> tuple[dict[str, Any], str]:
    """Graph's template object for these parameters, and the body as the customer will read it.

    Every placeholder in `template_placeholders(components)` must be in `parameters`.
    """
    graph_components: list[dict[str, Any]] = []
    body_text = ""
    for component in components:
        if not isinstance(component, dict):
            continue
        kind = str(component.get("type", "")).lower()
        if kind in ("header", "body"):
            if kind == "header" and not _text_header(component):
                continue
            names = PLACEHOLDER.findall(str(component.get("text", "")))
            if names:
                graph_components.append(
                    {
                        "type": kind,
                        "parameters": [
                            {
                                "type": "text",
                                "text": parameters[f"{kind}.{n}"],
                                **({} if n.isdigit() else {"parameter_name": n}),
                            }
                            for n in names
                        ],
                    }
                )
            if kind == "body":
                body_text = fill_placeholders(str(component.get("text", "")), "body", parameters)
        elif kind == "buttons":
            for index, button in enumerate(component.get("buttons") or []):
                if not isinstance(button, dict) or str(button.get("type", "")).upper() != "URL":
                    continue
                names = PLACEHOLDER.findall(str(button.get("url", "")))
                if names:
                    graph_components.append(
                        {
                            "type": "button",
                            "sub_type": "url",
                            "index": str(index),
                            "parameters": [{"type": "text", "text": parameters[f"button.{index}.{n}"]} for n in names],
                        }
                    )
    payload: dict[str, Any] = {"name": name, "language": {"code": language}}
    if graph_components:
        payload["components"] = graph_components
    return payload, body_text or name


def fill_placeholders(text: str, component: str, parameters: dict[str, str]) -> str:
    """`text` with each `{{n}}` of `component` replaced by its parameter (left as is when missing)."""
    return PLACEHOLDER.sub(lambda m: parameters.get(f"{component}.{m.group(1)}", m.group(0)), text)
