"""Meta payloads the project did not write: pywa's corpus of real-world webhook deliveries.

The corpus lives beside the repository, in ../shared/fixtures/meta-webhooks (see its
README.md). Each JSON file maps a variant name to one complete delivery body. Every variant
must be answered 200 once signed, and what it carries must be stored: messages (and echoes)
as Message rows of the right type, statuses as StatusEvent rows, other fields in the raw
WebhookDelivery row.

Many variants reuse one message id (`wamid.xyzxyz`) or a placeholder such as
"<WHATSAPP_MESSAGE_ID>"; those are real strings in the files, so before delivering a variant
every message, echo and status id, and every reference to one (reply context, reaction
target, edited or revoked original), is replaced by a fresh id, consistently within the
variant. Other placeholders ("<BUSINESS_PHONE_NUMBER_ID>", "<WHATSAPP_USER_PHONE_NUMBER>")
are kept: to the webhook they are opaque identifiers like any other.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import BusinessNumber, Contact, Conversation, Message, StatusEvent, WebhookDelivery
from app.whatsapp.payloads import parse_timestamp
from tests import meta

# The same folder as conftest.SHARED_FIXTURES: ../shared next to the repository.
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "meta-webhooks"
MISSING_REASON = f"Meta webhook corpus not found at {CORPUS} (a clone without ../shared)"
MESSAGE_FIELDS = ("messages", "smb_message_echoes")
MEDIA_TYPES = ("image", "video", "audio", "document", "sticker")


def _load_variants() -> list[tuple[str, str, dict[str, Any]]]:
    if not CORPUS.is_dir():
        return []
    variants = []
    for path in sorted(CORPUS.glob("*.json")):
        for name, body in json.loads(path.read_text(encoding="utf-8")).items():
            variants.append((path.name, name, body))
    return variants


VARIANTS = _load_variants()
VARIANT_PARAMS = [pytest.param(body, id=f"{file}:{name}") for file, name, body in VARIANTS] or [
    pytest.param(None, id="corpus-missing", marks=pytest.mark.skip(reason=MISSING_REASON))
]
needs_corpus = pytest.mark.skipif(not VARIANTS, reason=MISSING_REASON)


# --- helpers --------------------------------------------------------------------------------


def count(model) -> int:  # type: ignore[no-untyped-def]
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def stored(wamid: str) -> Message:
    return db.session.execute(select(Message).where(Message.wamid == wamid)).scalar_one()


def changes(body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for entry in body["entry"]:
        yield from entry["changes"]


def items_key(change: dict[str, Any]) -> str:
    return "message_echoes" if change["field"] == "smb_message_echoes" else "messages"


def messages_of(body: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(change, message) for every message and echo the delivery carries."""
    return [
        (change, message)
        for change in changes(body)
        if change["field"] in MESSAGE_FIELDS
        for message in change["value"].get(items_key(change), [])
    ]


def statuses_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        status
        for change in changes(body)
        if change["field"] in MESSAGE_FIELDS
        for status in change["value"].get("statuses", [])
    ]


def uniquified(body: dict[str, Any]) -> dict[str, Any]:
    """A copy in which every message/echo/status id, and every reference to one, is fresh."""
    body = copy.deepcopy(body)
    fresh: dict[str, str] = {}

    def new(old: str) -> str:
        return fresh.setdefault(old, f"wamid.CORPUS{uuid.uuid4().hex}")

    for _change, message in messages_of(body):
        message["id"] = new(message["id"])
        context = message.get("context")
        if isinstance(context, dict) and "id" in context:
            context["id"] = new(context["id"])
        reaction = message.get("reaction")
        if isinstance(reaction, dict) and "message_id" in reaction:
            reaction["message_id"] = new(reaction["message_id"])
        for kind in ("edit", "revoke"):
            target = message.get(kind)
            if isinstance(target, dict) and "original_message_id" in target:
                target["original_message_id"] = new(target["original_message_id"])
    for status in statuses_of(body):
        status["id"] = new(status["id"])
    return body


def original_for(body: dict[str, Any], change: dict[str, Any], message: dict[str, Any], target: str) -> dict:
    """The variant's delivery, carrying instead the message its edit or revoke applies to."""
    original = {key: message[key] for key in ("from", "to", "to_user_id", "from_user_id") if key in message} | {
        "id": target,
        "timestamp": str(int(message["timestamp"]) - 60),
        "type": "text",
        "text": {"body": "the original, before the change"},
    }
    delivery = copy.deepcopy(body)
    for other in changes(delivery):
        if other["field"] in MESSAGE_FIELDS:
            other["value"].pop("statuses", None)
            other["value"][items_key(other)] = []
    # the change holding `message` sits at the same position in the copy
    position = list(changes(body)).index(change)
    target_change = list(changes(delivery))[position]
    target_change["value"][items_key(target_change)] = [original]
    return delivery


def check_message_stored(change: dict[str, Any], raw: dict[str, Any]) -> None:
    row = stored(raw["id"])
    msg_type = raw.get("type", "unknown")
    content = raw.get(msg_type)
    assert row.type == msg_type
    assert row.direction == ("out" if change["field"] == "smb_message_echoes" else "in")
    assert row.sent_at == parse_timestamp(raw["timestamp"])
    conversation = db.session.get(Conversation, row.conversation_id)
    number = db.session.get(BusinessNumber, conversation.business_number_id)
    assert number.phone_number_id == change["value"]["metadata"]["phone_number_id"]
    contact = db.session.get(Contact, conversation.contact_id)
    identity = raw.get("to") if row.direction == "out" else raw.get("from")
    assert contact.wa_id == identity
    assert row.payload["id"] == raw["id"]

    context = raw.get("context", {})
    assert row.reply_to_wamid == context.get("id")
    assert row.forwarded is bool(context.get("forwarded") or context.get("frequently_forwarded"))

    if msg_type == "text":
        assert row.text == content["body"]
    elif msg_type in MEDIA_TYPES:
        assert (row.media_id, row.media_mime_type, row.media_sha256) == (
            content["id"],
            content["mime_type"],
            content["sha256"],
        )
        assert row.text == content.get("caption")
        assert row.media_filename == content.get("filename")
    elif msg_type == "reaction":
        assert row.reaction_to_wamid == content["message_id"]
        assert row.reaction_emoji == (content.get("emoji") or None)  # none or "": the reaction was removed
    elif msg_type == "location":
        assert (row.latitude, row.longitude) == (content["latitude"], content["longitude"])
        assert (row.location_name, row.location_address) == (content.get("name"), content.get("address"))
    elif msg_type == "contacts":
        assert row.text == ", ".join(card["name"]["formatted_name"] for card in content)
    elif msg_type == "interactive" and content is not None:
        reply = content[content["type"]]
        if content["type"] in ("button_reply", "list_reply"):
            assert row.text == reply["title"]
        elif content["type"] == "nfm_reply":
            assert row.text == reply["body"]
        assert row.payload["interactive"] == content
    elif msg_type == "button":
        assert row.text == content["text"]
    elif msg_type == "order":
        assert row.text == (content.get("text") or None)
        assert row.payload["order"]["product_items"] == content["product_items"]
    elif msg_type == "system":
        assert row.sender == "system"
        assert row.text == content["body"]
    elif msg_type == "unsupported":
        assert (row.error_code, row.error_title) == (raw["errors"][0]["code"], raw["errors"][0]["title"])
    elif msg_type == "edit":
        original = stored(content["original_message_id"])
        edited = content["message"]
        inner = edited[edited["type"]]
        assert original.text == (inner.get("body") if edited["type"] == "text" else inner.get("caption"))
        assert original.edited_at == row.sent_at
        assert original.deleted_at is None
    elif msg_type == "revoke":
        original = stored(content["original_message_id"])
        assert original.deleted_at == row.sent_at
        assert original.text == "the original, before the change"
    if msg_type != "system":
        assert row.sender == ("agent" if row.direction == "out" else "customer")


# --- the corpus is there and complete -------------------------------------------------------


@needs_corpus
def test_corpus_yields_one_case_per_variant():
    assert len(VARIANTS) > 70
    assert len(VARIANT_PARAMS) == len(VARIANTS)
    assert len({(file, name) for file, name, _ in VARIANTS}) == len(VARIANTS)
    fields = {change["field"] for _, _, body in VARIANTS for change in changes(body)}
    assert {"messages", "smb_message_echoes", "account_update", "calls"} <= fields
    types = {message.get("type") for _, _, body in VARIANTS for _, message in messages_of(body)}
    key_types = {
        "text",
        "reaction",
        "location",
        "contacts",
        "interactive",
        "button",
        "order",
        "system",
        "edit",
        "revoke",
    }
    assert key_types | set(MEDIA_TYPES) | {"unsupported"} <= types


@needs_corpus
def test_uniquified_variants_share_no_message_or_status_id():
    ids: list[str] = []
    for _, _, body in VARIANTS:
        fresh = uniquified(body)
        ids += [message["id"] for _, message in messages_of(fresh)]
        ids += [status["id"] for status in statuses_of(fresh)]
    assert len(ids) > 40
    assert len(ids) == len(set(ids))
    assert not any(i.startswith("<") for i in ids)


# --- each variant on its own ----------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANT_PARAMS)
def test_variant_is_accepted_and_what_it_carries_is_stored(post_webhook, variant):
    body = uniquified(variant)
    messages = messages_of(body)
    statuses = statuses_of(body)
    other_fields = sorted({c["field"] for c in changes(body) if c["field"] not in MESSAGE_FIELDS})

    # An edit or revoke is checked against its original, delivered first.
    originals = []
    for change, message in messages:
        if message.get("type") not in ("edit", "revoke"):
            continue
        target = message[message["type"]].get("original_message_id")
        if target:
            response = post_webhook(original_for(body, change, message, target))
            assert response.status_code == 200 and response.json["messages_stored"] == 1
            originals.append(target)

    raw = meta.encode(body)
    response = post_webhook(raw)
    assert response.status_code == 200, response.json
    assert response.json["messages_stored"] == len(messages)
    assert response.json["messages_duplicate"] == 0
    assert response.json["statuses_applied"] + response.json["statuses_waiting"] == len(statuses)

    delivery = db.session.execute(select(WebhookDelivery).where(WebhookDelivery.body == raw.decode())).scalar_one()
    assert delivery.summary["messages"] == len(messages)
    assert delivery.summary["statuses"] == len(statuses)
    assert delivery.summary["other_fields"] == other_fields

    assert messages or statuses or other_fields, "the variant carries nothing this test checks"
    assert count(Message) == len(messages) + len(originals)
    for change, message in messages:
        check_message_stored(change, message)

    assert count(StatusEvent) == len(statuses)
    for status in statuses:
        event = db.session.execute(select(StatusEvent).where(StatusEvent.wamid == status["id"])).scalar_one()
        assert event.status == status["status"]
        assert event.occurred_at == parse_timestamp(status["timestamp"])
        assert event.recipient_id == status["recipient_id"]
        if status.get("errors"):
            assert event.error_code == status["errors"][0]["code"]
            assert event.error_title == status["errors"][0]["title"]

    if other_fields:
        # kept raw only: nothing else is made of an account, template, call or preference update
        assert not messages and not statuses
        assert count(Message) == 0 and count(StatusEvent) == 0 and count(Conversation) == 0
        assert delivery.outcome == "stored"
        assert json.loads(delivery.body) == body


# --- all variants into one database ---------------------------------------------------------


@needs_corpus
def test_every_variant_delivered_in_sequence_stores_one_row_per_distinct_message(post_webhook):
    bodies = [uniquified(body) for _, _, body in VARIANTS]
    expected_ids = {message["id"] for body in bodies for _, message in messages_of(body)}
    expected_statuses = {(status["id"], status["status"]) for body in bodies for status in statuses_of(body)}
    assert len(expected_ids) > 35 and len(expected_statuses) > 5

    for body in bodies:
        response = post_webhook(body)
        assert response.status_code == 200, response.json
    assert set(db.session.execute(select(Message.wamid)).scalars()) == expected_ids
    assert count(Message) == len(expected_ids)
    assert count(StatusEvent) == len(expected_statuses)
    assert count(WebhookDelivery) == len(bodies)

    # Meta's retries of the same bodies change nothing.
    for body in bodies:
        response = post_webhook(body)
        assert response.status_code == 200 and response.json["outcome"] == "duplicate"
    assert count(Message) == len(expected_ids)
    assert set(db.session.execute(select(WebhookDelivery.attempts)).scalars()) == {2}

    # The files as they are: their shared ids ("wamid.xyzxyz", placeholders) each make one row.
    raw_ids = {message["id"] for _, _, body in VARIANTS for _, message in messages_of(body)}
    assert len(raw_ids) < sum(len(messages_of(body)) for _, _, body in VARIANTS)  # the corpus does repeat ids
    for _, _, body in VARIANTS:
        response = post_webhook(body)
        assert response.status_code == 200, response.json
    assert count(Message) == len(expected_ids) + len(raw_ids)
    assert set(db.session.execute(select(Message.wamid)).scalars()) == expected_ids | raw_ids
    orphans = db.session.execute(
        select(func.count())
        .select_from(Message)
        .outerjoin(Conversation, Conversation.id == Message.conversation_id)
        .where(Conversation.id.is_(None))
    ).scalar_one()
    assert orphans == 0
