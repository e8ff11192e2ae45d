"""Meta's webhook payloads, parsed into plain data. Pure code: no Flask, no database.

Everything here is defensive: Meta changes payloads without notice and a signed body may
still carry wrong types. Parsing never raises for a JSON object; what cannot be used is
reported in `ParsedDelivery.problems` and the raw body is kept by the caller.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import re
import sys
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any

# Fields whose `value` carries messages or statuses we store as rows. Every other field
# (account updates, template updates, calls, …) is kept in the raw delivery only.
MESSAGE_FIELDS = ("messages", "smb_message_echoes")
MEDIA_TYPES = ("image", "video", "audio", "document", "sticker")
KNOWN_STATUSES = ("sent", "delivered", "read", "played", "failed")
# Deeper JSON than this is stored as text, so a hostile body cannot exhaust a stack.
MAX_STORED_DEPTH = 24
# A body nested deeper than the interpreter's recursion limit allows is parsed again with room
# for this many more levels; deeper still is refused (Meta's deliveries nest about ten levels).
MAX_JSON_DEPTH = 2000
# Identifiers (message ids, wa_id, user_id, phone_number_id) are unique keys in btree indexes,
# whose rows hold at most ~2.7 kB: a longer "id" is not a real one and is treated as missing.
MAX_ID_LENGTH = 512
# `status_events.status` is varchar(16); Meta's statuses are short words.
MAX_STATUS_LENGTH = 16
# Meta's timestamps are unix seconds; anything outside these years is not a real timestamp.
_MIN_TS = datetime(2000, 1, 1, tzinfo=UTC).timestamp()
_MAX_TS = datetime(2200, 1, 1, tzinfo=UTC).timestamp()


class SignatureCheck(Enum):
    OK = "ok"
    MISSING = "missing"
    INVALID = "invalid"


def verify_signature(app_secret: str, body: bytes, header: str | None) -> SignatureCheck:
    """Check `X-Hub-Signature-256: sha256=<hex>` against HMAC-SHA256(app secret, raw body)."""
    if not header:
        return SignatureCheck.MISSING
    prefix, _, received = header.strip().partition("=")
    if prefix.lower() != "sha256" or not received or not app_secret:
        return SignatureCheck.INVALID
    expected = hmac.new(app_secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    if hmac.compare_digest(expected, received.strip().lower()):
        return SignatureCheck.OK
    return SignatureCheck.INVALID


def sign(app_secret: str, body: bytes) -> str:
    """The header value Meta would send for `body` (used by tests, benchmarks and tools)."""
    return "sha256=" + hmac.new(app_secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


class PayloadError(ValueError):
    """The body is not a JSON object; answered with 400."""


def decode_body(body: bytes) -> dict[str, Any]:
    """Decode a webhook body: UTF-8 JSON whose top level is an object."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError("body is not UTF-8") from exc
    try:
        data = _loads(text)
    except RecursionError as exc:
        raise PayloadError("body is nested too deeply") from exc
    except ValueError as exc:
        raise PayloadError("body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise PayloadError("body must be a JSON object")
    return data


_DEEP_PARSE_LOCK = threading.Lock()


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except RecursionError:
        pass
    # Valid JSON nested deeper than the recursion limit leaves room for: parse it again with a
    # higher limit. The limit is process-wide, so one thread at a time; other threads only
    # ever see it raised, never lowered below its usual value.
    with _DEEP_PARSE_LOCK:
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(limit + MAX_JSON_DEPTH)
        try:
            return json.loads(text)
        finally:
            sys.setrecursionlimit(limit)


# --- small coercions -------------------------------------------------------------------

_SURROGATE = re.compile("[\ud800-\udfff]")


def _clean_text(value: str) -> str:
    """Text PostgreSQL accepts: no NUL characters, no lone surrogates (JSON may escape both)."""
    value = value.replace("\x00", "")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = _SURROGATE.sub("\ufffd", value)
    return value


def _str(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = _clean_text(value)
        return value if value != "" else None
    if isinstance(value, int | float):
        return str(value)
    return None


def _id(value: Any) -> str | None:
    """An identifier we key rows on: a non-empty string (or number) of sane length."""
    text = _str(value)
    return text if text is not None and len(text) <= MAX_ID_LENGTH else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:  # an int beyond float range
            return None
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    if number != number or number in (float("inf"), float("-inf")):
        return None
    return number


def _int(value: Any) -> int | None:
    """A value for an `integer` column (Meta's error codes), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and len(value) <= 32:
        try:
            value = int(value.strip())  # "²".isdigit() is true, yet int("²") fails
        except ValueError:
            return None
    if isinstance(value, int):
        return value if -(2**31) <= value < 2**31 else None
    return None


def parse_timestamp(value: Any) -> datetime | None:
    """Meta's `timestamp`: unix seconds, usually as a string."""
    seconds = _float(value)
    if seconds is None or not (_MIN_TS <= seconds < _MAX_TS):
        return None
    return datetime.fromtimestamp(seconds, tz=UTC)


def storable(value: Any, depth: int = 0) -> Any:
    """A JSON value PostgreSQL's jsonb accepts: no NUL characters, bounded depth."""
    if depth >= MAX_STORED_DEPTH and isinstance(value, dict | list):
        try:
            return json.dumps(value)[:10000]  # ASCII: NUL and surrogates come out escaped
        except RecursionError:
            return "(nested too deeply to keep)"
    if isinstance(value, str):
        return _clean_text(value)
    if isinstance(value, dict):
        return {_clean_text(str(k)): storable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [storable(v, depth + 1) for v in value]
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    return value


# --- parsed shapes ---------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedContact:
    wa_id: str | None
    user_id: str | None
    name: str | None = None


@dataclass(frozen=True)
class ParsedError:
    code: int | None
    title: str | None
    details: str | None


@dataclass
class ParsedMessage:
    wamid: str
    direction: str  # "in" (customer → us) or "out" (echo of a message sent from the business app)
    sender: str  # "customer", "agent" or "system"
    type: str
    contact: ParsedContact
    sent_at: datetime | None
    text: str | None = None
    media_id: str | None = None
    media_mime_type: str | None = None
    media_sha256: str | None = None
    media_filename: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    location_name: str | None = None
    location_address: str | None = None
    reply_to_wamid: str | None = None
    forwarded: bool = False
    reaction_to_wamid: str | None = None
    reaction_emoji: str | None = None
    target_wamid: str | None = None  # the message an edit or revoke applies to
    error: ParsedError | None = None
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass
class ParsedStatus:
    wamid: str
    status: str
    occurred_at: datetime | None
    recipient_id: str | None
    error: ParsedError | None
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass
class ParsedChange:
    field: str
    phone_number_id: str | None
    display_phone_number: str | None
    waba_id: str | None
    # `field` is a column of this class, so the dataclass helper is named in full here.
    messages: list[ParsedMessage] = dataclasses.field(default_factory=list)
    statuses: list[ParsedStatus] = dataclasses.field(default_factory=list)


@dataclass
class ParsedDelivery:
    object: str | None
    changes: list[ParsedChange] = field(default_factory=list)
    other_fields: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def message_count(self) -> int:
        return sum(len(c.messages) for c in self.changes)

    @property
    def status_count(self) -> int:
        return sum(len(c.statuses) for c in self.changes)


# --- parsing ---------------------------------------------------------------------------


def parse_error(errors: Any) -> ParsedError | None:
    first = next((e for e in _list(errors) if isinstance(e, dict)), None)
    if first is None:
        return None
    return ParsedError(
        code=_int(first.get("code")),
        title=_str(first.get("title")) or _str(first.get("message")),
        details=_str(_dict(first.get("error_data")).get("details")) or _str(first.get("message")),
    )


def parse_delivery(data: dict[str, Any]) -> ParsedDelivery:
    delivery = ParsedDelivery(object=_str(data.get("object")))
    entries = data.get("entry")
    if not isinstance(entries, list):
        delivery.problems.append("no entry list")
        return delivery
    for e_index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            delivery.problems.append(f"entry[{e_index}] is not an object")
            continue
        waba_id = _str(entry.get("id"))
        for c_index, change in enumerate(_list(entry.get("changes"))):
            where = f"entry[{e_index}].changes[{c_index}]"
            if not isinstance(change, dict):
                delivery.problems.append(f"{where} is not an object")
                continue
            field_name = _str(change.get("field")) or ""
            value = change.get("value")
            if field_name not in MESSAGE_FIELDS:
                delivery.other_fields.append(field_name or "?")
                continue
            if not isinstance(value, dict):
                delivery.problems.append(f"{where}.value is not an object")
                continue
            delivery.changes.append(_parse_change(field_name, waba_id, value, where, delivery.problems))
    return delivery


def _parse_change(
    field_name: str, waba_id: str | None, value: dict[str, Any], where: str, problems: list[str]
) -> ParsedChange:
    metadata = _dict(value.get("metadata"))
    change = ParsedChange(
        field=field_name,
        phone_number_id=_id(metadata.get("phone_number_id")),
        display_phone_number=_str(metadata.get("display_phone_number")),
        waba_id=waba_id,
    )
    if change.phone_number_id is None:
        problems.append(f"{where}: no metadata.phone_number_id")
        return change

    contacts = [_parse_contact(c) for c in _list(value.get("contacts")) if isinstance(c, dict)]
    contacts = [c for c in contacts if c.wa_id or c.user_id]
    if value.get("errors"):
        problems.append(f"{where}: Meta reported errors: {json.dumps(storable(value['errors']))[:500]}")

    items = _list(value.get("message_echoes" if field_name == "smb_message_echoes" else "messages"))
    for m_index, raw in enumerate(items):
        if not isinstance(raw, dict):
            problems.append(f"{where}.messages[{m_index}] is not an object")
            continue
        message = _parse_message(raw, contacts, echo=field_name == "smb_message_echoes")
        if message is None:
            problems.append(f"{where}.messages[{m_index}]: no message id or no sender identity")
            continue
        normalise_content(message.payload, message.type, f"{where}.messages[{m_index}]", problems)
        change.messages.append(message)

    for s_index, raw in enumerate(_list(value.get("statuses"))):
        if not isinstance(raw, dict):
            problems.append(f"{where}.statuses[{s_index}] is not an object")
            continue
        status = _parse_status(raw)
        if status is None:
            problems.append(f"{where}.statuses[{s_index}]: no message id or status")
            continue
        change.statuses.append(status)
    return change


def _parse_contact(raw: dict[str, Any]) -> ParsedContact:
    return ParsedContact(
        wa_id=_id(raw.get("wa_id")),
        user_id=_id(raw.get("user_id")),
        name=_str(_dict(raw.get("profile")).get("name")),
    )


def _match_contact(wa_id: str | None, user_id: str | None, contacts: list[ParsedContact]) -> ParsedContact | None:
    for contact in contacts:
        if (wa_id and contact.wa_id == wa_id) or (user_id and contact.user_id == user_id):
            return contact
    if wa_id is None and user_id is None and len(contacts) == 1:
        return contacts[0]
    if wa_id or user_id:
        return ParsedContact(wa_id=wa_id, user_id=user_id, name=None)
    return None


def _parse_message(raw: dict[str, Any], contacts: list[ParsedContact], *, echo: bool) -> ParsedMessage | None:
    wamid = _id(raw.get("id"))
    if wamid is None:
        return None
    msg_type = _str(raw.get("type")) or "unknown"
    if echo:
        contact = _match_contact(_id(raw.get("to")), _id(raw.get("to_user_id")), contacts)
        direction, sender = "out", "agent"
    else:
        contact = _match_contact(_id(raw.get("from")), _id(raw.get("from_user_id")), contacts)
        direction, sender = "in", "system" if msg_type == "system" else "customer"
    if contact is None:
        return None

    context = _dict(raw.get("context"))
    message = ParsedMessage(
        wamid=wamid,
        direction=direction,
        sender=sender,
        type=msg_type,
        contact=contact,
        sent_at=parse_timestamp(raw.get("timestamp")),
        reply_to_wamid=_id(context.get("id")),
        forwarded=bool(context.get("forwarded") is True or context.get("frequently_forwarded") is True),
        error=parse_error(raw.get("errors")),
        payload=storable(raw),
    )
    _fill_content(message, msg_type, raw)
    if msg_type == "edit":
        edit = _dict(raw.get("edit"))
        message.target_wamid = _id(edit.get("original_message_id"))
        inner = _dict(edit.get("message"))
        _fill_content(message, _str(inner.get("type")) or "unknown", inner)
    elif msg_type == "revoke":
        message.target_wamid = _id(_dict(raw.get("revoke")).get("original_message_id"))
    return message


def _fill_content(message: ParsedMessage, msg_type: str, raw: dict[str, Any]) -> None:
    """Copy the fields of one message type (`raw[msg_type]`) onto `message`."""
    body = raw.get(msg_type)
    content = _dict(body)
    if msg_type == "text":
        message.text = _str(content.get("body"))
    elif msg_type in MEDIA_TYPES:
        message.media_id = _str(content.get("id"))
        message.media_mime_type = _str(content.get("mime_type"))
        message.media_sha256 = _str(content.get("sha256"))
        message.media_filename = _str(content.get("filename"))
        message.text = _str(content.get("caption"))
    elif msg_type == "location":
        message.latitude = _float(content.get("latitude"))
        message.longitude = _float(content.get("longitude"))
        message.location_name = _str(content.get("name"))
        message.location_address = _str(content.get("address"))
    elif msg_type == "contacts":
        names = [_str(_dict(c.get("name")).get("formatted_name")) for c in _list(body) if isinstance(c, dict)]
        message.text = ", ".join(n for n in names if n) or None
    elif msg_type == "interactive":
        kind = _str(content.get("type")) or ""
        reply = _dict(content.get(kind))
        message.text = _str(reply.get("title")) or _str(reply.get("body"))
    elif msg_type == "button":
        message.text = _str(content.get("text")) or _str(content.get("payload"))
    elif msg_type == "reaction":
        message.reaction_to_wamid = _id(content.get("message_id"))
        message.reaction_emoji = _str(content.get("emoji"))  # None: the reaction was removed
    elif msg_type == "order":
        message.text = _str(content.get("text"))
    elif msg_type == "system":
        message.text = _str(content.get("body"))
    elif msg_type == "unsupported" and message.error is None:
        message.error = ParsedError(code=131051, title="Message type unknown", details=None)


# --- the shapes renderers rely on --------------------------------------------------------
#
# The pages, the fragments and the API read a message's type object from its stored payload
# (`payload["contacts"]`, `payload["order"]`, …). A signed body may still carry `"phones": 5`;
# so those objects are normalised here, once: lists of objects where lists are expected,
# objects of strings (numbers written as strings) where objects are expected. Whatever else is
# there is dropped and reported in `problems`; the raw delivery keeps the original.

CARD_OBJECTS = ("name", "org")
CARD_LISTS = ("phones", "emails", "urls", "addresses")
INTERACTIVE_REPLIES = ("button_reply", "list_reply", "nfm_reply")
# Order items carry these as numbers (`"quantity": 2, "item_price": 10.5`): kept as numbers.
ORDER_ITEM_NUMBERS = frozenset({"quantity", "item_price"})


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _scalar_text(value: Any, where: str, problems: list[str]) -> str | None:
    """A string field: strings kept, numbers written as strings, anything else dropped."""
    if isinstance(value, str):
        return value
    if _is_number(value):
        return str(value)
    if value is not None:
        problems.append(f"{where} is not a string")
    return None


def _strings(value: Any, where: str, problems: list[str], numbers: frozenset[str] = frozenset()) -> dict[str, Any]:
    """An object whose values are strings (numbers for the keys in `numbers`)."""
    if not isinstance(value, dict):
        problems.append(f"{where} is not an object")
        return {}
    result: dict[str, Any] = {}
    for key, item in value.items():
        if key in numbers and _is_number(item):
            result[key] = item
            continue
        text = _scalar_text(item, f"{where}.{key}", problems)
        if text is not None:
            result[key] = text
    return result


def _records(
    value: Any, where: str, problems: list[str], numbers: frozenset[str] = frozenset()
) -> list[dict[str, Any]]:
    """A list of objects of strings; items that are not objects are dropped."""
    if not isinstance(value, list):
        problems.append(f"{where} is not a list")
        return []
    records = []
    for index, item in enumerate(value):
        if isinstance(item, dict):
            records.append(_strings(item, f"{where}[{index}]", problems, numbers))
        else:
            problems.append(f"{where}[{index}] is not an object")
    return records


def _card(card: dict[str, Any], where: str, problems: list[str]) -> dict[str, Any]:
    result = dict(card)  # keys we do not model are kept as sent
    for key in CARD_OBJECTS:
        if key in card:
            result[key] = _strings(card[key], f"{where}.{key}", problems)
    for key in CARD_LISTS:
        if key in card:
            result[key] = _records(card[key], f"{where}.{key}", problems)
    if "birthday" in card:
        birthday = _scalar_text(card["birthday"], f"{where}.birthday", problems)
        if birthday is None:
            del result["birthday"]
        else:
            result["birthday"] = birthday
    return result


def _object_with_strings(
    value: dict[str, Any], keys: tuple[str, ...], where: str, problems: list[str]
) -> dict[str, Any]:
    result = dict(value)
    for key in keys:
        if key in value:
            text = _scalar_text(value[key], f"{where}.{key}", problems)
            if text is None:
                del result[key]
            else:
                result[key] = text
    return result


def normalise_content(payload: dict[str, Any], msg_type: str, where: str, problems: list[str]) -> None:
    """Make `payload[msg_type]` the shape renderers expect (in place), reporting what was dropped."""
    if msg_type not in payload:
        return
    body = payload[msg_type]
    here = f"{where}.{msg_type}"
    if msg_type == "contacts":
        if not isinstance(body, list):
            problems.append(f"{here} is not a list")
            payload[msg_type] = []
            return
        cards = []
        for index, card in enumerate(body):
            if isinstance(card, dict):
                cards.append(_card(card, f"{here}[{index}]", problems))
            else:
                problems.append(f"{here}[{index}] is not an object")
        payload[msg_type] = cards
    elif msg_type in ("order", "interactive", "button", "system"):
        if not isinstance(body, dict):
            problems.append(f"{here} is not an object")
            payload[msg_type] = {}
        elif msg_type == "order":
            order = _object_with_strings(body, ("catalog_id", "text"), here, problems)
            if "product_items" in body:
                order["product_items"] = _records(
                    body["product_items"], f"{here}.product_items", problems, ORDER_ITEM_NUMBERS
                )
            payload[msg_type] = order
        elif msg_type == "interactive":
            interactive = _object_with_strings(body, ("type",), here, problems)
            for key in INTERACTIVE_REPLIES:
                if key in body:
                    interactive[key] = _strings(body[key], f"{here}.{key}", problems)
            payload[msg_type] = interactive
        else:  # button {payload, text}, system {body, wa_id, new_wa_id, type, …}: strings only
            payload[msg_type] = _strings(body, here, problems)


def _parse_status(raw: dict[str, Any]) -> ParsedStatus | None:
    wamid = _id(raw.get("id"))
    status = (_str(raw.get("status")) or "").lower()
    if wamid is None or not status or len(status) > MAX_STATUS_LENGTH:
        return None
    return ParsedStatus(
        wamid=wamid,
        status=status,
        occurred_at=parse_timestamp(raw.get("timestamp")),
        recipient_id=_str(raw.get("recipient_id")),
        error=parse_error(raw.get("errors")),
        payload=storable(raw),
    )
