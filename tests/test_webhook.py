"""The webhook through HTTP: handshake, signatures, every message type, idempotency, statuses."""

from __future__ import annotations

import time

import psycopg2
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from app.errors import _is_connection_problem
from app.extensions import db
from app.models import Contact, Conversation, Message, StatusEvent, WebhookDelivery
from app.services import inbound
from tests import meta


def count(model) -> int:  # type: ignore[no-untyped-def]
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def stored(wamid: str) -> Message:
    return db.session.execute(select(Message).where(Message.wamid == wamid)).scalar_one()


# --- handshake ------------------------------------------------------------------------------


def test_verify_handshake_echoes_challenge_as_plain_text(client):
    response = client.get(
        "/webhook/whatsapp",
        query_string={"hub.mode": "subscribe", "hub.verify_token": meta.VERIFY_TOKEN, "hub.challenge": "1158201444"},
    )
    assert response.status_code == 200
    assert response.data == b"1158201444"
    assert response.mimetype == "text/plain"


def test_verify_handshake_refuses_wrong_token_or_mode(client):
    for params in (
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": meta.VERIFY_TOKEN, "hub.challenge": "1"},
        {},
    ):
        assert client.get("/webhook/whatsapp", query_string=params).status_code == 403


# --- signatures and bad bodies --------------------------------------------------------------


def test_missing_signature_is_401_and_stores_nothing(client):
    body = meta.encode(meta.delivery(meta.value(messages=[meta.message()])))
    response = client.post("/webhook/whatsapp", data=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 401
    assert response.json["error"] == "signature_missing"
    assert count(WebhookDelivery) == 0 and count(Message) == 0


def test_wrong_signature_is_403_and_stores_nothing(post_webhook):
    response = post_webhook(meta.delivery(meta.value(messages=[meta.message()])), secret="not-the-secret")
    assert response.status_code == 403
    assert count(WebhookDelivery) == 0 and count(Message) == 0


def test_signature_of_reserialised_json_does_not_match(client):
    """The HMAC is over the raw bytes: signing a re-serialised copy of non-ASCII JSON fails."""
    payload = meta.delivery(meta.value(messages=[meta.message(content={"body": "¡Hola, señor Núñez! 🙂"})]))
    raw = meta.encode(payload)  # UTF-8 characters as they are
    ascii_copy = meta.encode(payload).decode().encode("ascii", "backslashreplace")
    headers = meta.signed_headers(ascii_copy)
    response = client.post("/webhook/whatsapp", data=raw, headers=headers)
    assert response.status_code == 403


def test_body_that_is_not_json_is_400(post_webhook):
    response = post_webhook(b"{not json")
    assert response.status_code == 400
    assert response.json["error"] == "invalid_body"
    assert count(WebhookDelivery) == 0


def test_json_that_is_not_an_object_is_400(post_webhook):
    assert post_webhook(b"[1, 2, 3]").status_code == 400
    assert post_webhook(b'"text"').status_code == 400
    assert count(WebhookDelivery) == 0


def test_body_that_is_not_utf8_is_400(post_webhook):
    assert post_webhook('{"a": "ñ"}'.encode("latin-1")).status_code == 400


# --- every message type ---------------------------------------------------------------------


def test_text_message_creates_contact_conversation_and_message(post_webhook):
    ts = int(time.time()) - 60
    msg = meta.message(ts=ts, content={"body": "¿Tienen envío a Córdoba? 📦"})
    response = post_webhook(meta.delivery(meta.value(messages=[msg], contacts=[meta.contact(name="José Núñez")])))
    assert response.status_code == 200
    assert response.json["messages_stored"] == 1
    row = stored(msg["id"])
    assert row.direction == "in" and row.sender == "customer" and row.type == "text"
    assert row.text == "¿Tienen envío a Córdoba? 📦"
    assert int(row.sent_at.timestamp()) == ts
    contact = db.session.execute(select(Contact)).scalar_one()
    assert (contact.wa_id, contact.profile_name) == ("5491155550001", "José Núñez")
    conversation = db.session.execute(select(Conversation)).scalar_one()
    assert conversation.unread_count == 1
    assert conversation.last_message_id == row.id
    assert int(conversation.last_customer_message_at.timestamp()) == ts
    delivery = db.session.execute(select(WebhookDelivery)).scalar_one()
    assert delivery.outcome == "stored" and "Córdoba" in delivery.body


def test_media_types_keep_id_mime_caption_and_filename(post_webhook):
    messages = [
        meta.message("image", content={"id": "img-1", "mime_type": "image/jpeg", "sha256": "abc=", "caption": "Foto"}),
        meta.message("video", content={"id": "vid-1", "mime_type": "video/mp4", "sha256": "def="}),
        meta.message("audio", content={"id": "aud-1", "mime_type": "audio/ogg; codecs=opus", "voice": True}),
        meta.message(
            "document",
            content={"id": "doc-1", "mime_type": "application/pdf", "filename": "factura.pdf", "caption": "La factura"},
        ),
        meta.message("sticker", content={"id": "stk-1", "mime_type": "image/webp", "animated": False}),
    ]
    assert post_webhook(meta.delivery(meta.value(messages=messages))).status_code == 200
    image, video, audio, document, sticker = (stored(m["id"]) for m in messages)
    assert (image.media_id, image.media_mime_type, image.media_sha256, image.text) == (
        "img-1",
        "image/jpeg",
        "abc=",
        "Foto",
    )
    assert video.media_id == "vid-1"
    assert audio.media_mime_type == "audio/ogg; codecs=opus" and audio.payload["audio"]["voice"] is True
    assert (document.media_filename, document.text) == ("factura.pdf", "La factura")
    assert sticker.type == "sticker" and sticker.media_id == "stk-1"


def test_location_contacts_interactive_button_order_system_types(post_webhook):
    messages = [
        meta.message(
            "location",
            content={"latitude": -34.6037, "longitude": -58.3816, "name": "Obelisco", "address": "Av. 9 de Julio s/n"},
        ),
        meta.message(
            "contacts",
            content=[{"name": {"formatted_name": "Rachel Green"}, "phones": [{"phone": "+1 777", "type": "WORK"}]}],
        ),
        meta.message("interactive", content={"type": "button_reply", "button_reply": {"id": "si", "title": "Sí"}}),
        meta.message(
            "interactive",
            content={"type": "list_reply", "list_reply": {"id": "r1", "title": "Retiro", "description": "En local"}},
        ),
        meta.message("button", content={"payload": "STOP", "text": "Dejar de recibir"}),
        meta.message("order", content={"catalog_id": "1", "text": "Mi pedido", "product_items": []}),
        meta.message("system", content={"body": "User A changed number", "type": "user_changed_number"}),
    ]
    assert post_webhook(meta.delivery(meta.value(messages=messages))).status_code == 200
    location, contacts, button_reply, list_reply, button, order, system = (stored(m["id"]) for m in messages)
    assert (location.latitude, location.longitude, location.location_name) == (-34.6037, -58.3816, "Obelisco")
    assert location.location_address == "Av. 9 de Julio s/n"
    assert contacts.text == "Rachel Green" and contacts.payload["contacts"][0]["phones"][0]["phone"] == "+1 777"
    assert button_reply.text == "Sí" and list_reply.text == "Retiro"
    assert button.text == "Dejar de recibir"
    assert order.text == "Mi pedido"
    assert system.sender == "system" and system.text == "User A changed number"
    # system messages neither count as unread nor open the 24-hour window
    conversation = db.session.execute(select(Conversation)).scalar_one()
    assert conversation.unread_count == 6


def test_unsupported_and_unknown_future_types_are_kept_with_raw_json(post_webhook):
    unsupported = meta.message(
        "unsupported",
        errors=[{"code": 131051, "title": "Message type unknown", "error_data": {"details": "not supported"}}],
    )
    future = meta.message("hologram", content={"frames": [1, 2, 3], "note": "algo nuevo"})
    no_type = meta.message("text")
    del no_type["type"]
    response = post_webhook(meta.delivery(meta.value(messages=[unsupported, future, no_type])))
    assert response.status_code == 200
    row = stored(unsupported["id"])
    assert (row.type, row.error_code, row.error_title, row.error_details) == (
        "unsupported",
        131051,
        "Message type unknown",
        "not supported",
    )
    hologram = stored(future["id"])
    assert hologram.type == "hologram" and hologram.payload["hologram"] == {"frames": [1, 2, 3], "note": "algo nuevo"}
    assert stored(no_type["id"]).type == "unknown"


def test_reply_context_and_forwarded_flag(post_webhook):
    original = meta.message(content={"body": "¿Precio?"})
    reply = meta.message(content={"body": "Respondo"}, context={"from": meta.DISPLAY_NUMBER, "id": original["id"]})
    forwarded = meta.message(content={"body": "Reenviado"}, context={"forwarded": True})
    assert post_webhook(meta.delivery(meta.value(messages=[original, reply, forwarded]))).status_code == 200
    assert stored(reply["id"]).reply_to_wamid == original["id"]
    assert stored(forwarded["id"]).forwarded is True


def test_reaction_and_its_removal_are_stored_without_counting_as_unread(post_webhook):
    target = meta.message(content={"body": "Gracias"})
    reaction = meta.message("reaction", content={"message_id": target["id"], "emoji": "👍"})
    removal = meta.message("reaction", content={"message_id": target["id"], "emoji": ""})
    assert post_webhook(meta.delivery(meta.value(messages=[target, reaction]))).status_code == 200
    assert post_webhook(meta.delivery(meta.value(messages=[removal]))).status_code == 200
    assert stored(reaction["id"]).reaction_to_wamid == target["id"]
    assert stored(reaction["id"]).reaction_emoji == "👍"
    assert stored(removal["id"]).reaction_emoji is None
    conversation = db.session.execute(select(Conversation)).scalar_one()
    assert conversation.unread_count == 1
    assert conversation.last_message_id == stored(target["id"]).id


def test_edit_and_revoke_change_the_original_message(post_webhook):
    original = meta.message(content={"body": "Quiero 2 cajas"})
    edit = meta.message(
        "edit",
        content={
            "original_message_id": original["id"],
            "message": {"type": "text", "text": {"body": "Quiero 3 cajas"}},
        },
    )
    other = meta.message(content={"body": "borrar esto"})
    revoke = meta.message("revoke", content={"original_message_id": other["id"]})
    assert post_webhook(meta.delivery(meta.value(messages=[original, other]))).status_code == 200
    assert post_webhook(meta.delivery(meta.value(messages=[edit, revoke]))).status_code == 200
    assert stored(original["id"]).text == "Quiero 3 cajas"
    assert stored(original["id"]).edited_at is not None
    assert stored(other["id"]).deleted_at is not None


# --- batching and idempotency ---------------------------------------------------------------


def test_every_entry_change_and_message_of_a_batch_is_stored(post_webhook):
    first = [meta.message(content={"body": f"m{i}"}) for i in range(3)]
    second = [meta.message(sender="5491155550002", content={"body": f"n{i}"}) for i in range(2)]
    payload = meta.delivery(
        meta.value(messages=first), meta.value(messages=second, contacts=[meta.contact("5491155550002", "Bea")])
    )
    payload["entry"].append(
        {
            "id": meta.WABA_ID,
            "changes": [
                {
                    "field": "messages",
                    "value": meta.value(
                        messages=[meta.message(sender="5491155550003")],
                        contacts=[meta.contact("5491155550003", "Ciro")],
                    ),
                }
            ],
        }
    )
    response = post_webhook(payload)
    assert response.status_code == 200 and response.json["messages_stored"] == 6
    assert count(Message) == 6
    assert count(Conversation) == 3


def test_same_delivery_posted_twice_stores_each_message_once(post_webhook):
    payload = meta.delivery(meta.value(messages=[meta.message(), meta.message()]))
    assert post_webhook(payload).status_code == 200
    second = post_webhook(payload)
    assert second.status_code == 200 and second.json["outcome"] == "duplicate"
    assert count(Message) == 2
    assert db.session.execute(select(WebhookDelivery.attempts)).scalar_one() == 2
    assert db.session.execute(select(Conversation.unread_count)).scalar_one() == 2


def test_same_message_in_a_different_delivery_is_stored_once(post_webhook):
    msg = meta.message()
    assert post_webhook(meta.delivery(meta.value(messages=[msg]))).json["messages_stored"] == 1
    # Meta's retry may differ in bytes (another batch, other statuses) but carry the same wamid.
    response = post_webhook(meta.delivery(meta.value(messages=[msg, meta.message()])))
    assert response.json["messages_stored"] == 1 and response.json["messages_duplicate"] == 1
    assert count(Message) == 2
    assert db.session.execute(select(Conversation.unread_count)).scalar_one() == 2


# --- statuses -------------------------------------------------------------------------------


def _echo(wamid: str, ts: int) -> dict:
    """A message the business sent (echoed by Meta): the outbound row statuses apply to."""
    return meta.delivery(
        meta.value(messages=None, contacts=[meta.contact()])
        | {
            "message_echoes": [
                {
                    "from": meta.DISPLAY_NUMBER,
                    "to": "5491155550001",
                    "id": wamid,
                    "timestamp": str(ts),
                    "type": "text",
                    "text": {"body": "Hola, te ayudo"},
                }
            ]
        },
        field="smb_message_echoes",
    )


def test_statuses_move_forward_and_never_back(post_webhook):
    ts = int(time.time()) - 100
    wamid = meta.wamid()
    assert post_webhook(_echo(wamid, ts)).status_code == 200
    assert stored(wamid).direction == "out" and stored(wamid).status == "sent"
    for value, expected in (("delivered", "delivered"), ("read", "read"), ("delivered", "read"), ("sent", "read")):
        post_webhook(meta.delivery(meta.value(statuses=[meta.status(wamid, value, ts=ts + 10)])))
        db.session.expire_all()
        assert stored(wamid).status == expected


def test_status_before_its_message_is_kept_and_applied_later(post_webhook):
    ts = int(time.time()) - 100
    wamid = meta.wamid()
    response = post_webhook(meta.delivery(meta.value(statuses=[meta.status(wamid, "delivered", ts=ts + 5)])))
    assert response.status_code == 200 and response.json["statuses_waiting"] == 1
    assert db.session.execute(select(StatusEvent.status).where(StatusEvent.wamid == wamid)).scalar_one() == "delivered"
    post_webhook(_echo(wamid, ts))
    assert stored(wamid).status == "delivered"


def test_failed_status_keeps_metas_error(post_webhook):
    wamid = meta.wamid()
    post_webhook(_echo(wamid, int(time.time())))
    errors = [
        {
            "code": 131026,
            "title": "Message undeliverable",
            "message": "Message undeliverable",
            "error_data": {"details": "Receiver is incapable of receiving this message"},
        }
    ]
    post_webhook(meta.delivery(meta.value(statuses=[meta.status(wamid, "failed", errors=errors)])))
    row = stored(wamid)
    assert (row.status, row.error_code, row.error_title) == ("failed", 131026, "Message undeliverable")
    assert row.error_details == "Receiver is incapable of receiving this message"
    # a late "sent" does not hide the failure
    post_webhook(meta.delivery(meta.value(statuses=[meta.status(wamid, "sent")])))
    db.session.expire_all()
    assert stored(wamid).status == "failed"


# --- contacts and conversations -------------------------------------------------------------


def test_contact_with_only_user_id_is_handled(post_webhook):
    msg = meta.message(sender=None, from_user_id="US.13491208655302741918")
    payload = meta.delivery(
        meta.value(messages=[msg], contacts=[meta.contact(None, "Sin Número", user_id="US.13491208655302741918")])
    )
    assert post_webhook(payload).status_code == 200
    contact = db.session.execute(select(Contact)).scalar_one()
    assert (contact.wa_id, contact.user_id, contact.profile_name) == (None, "US.13491208655302741918", "Sin Número")
    # Later the same user arrives with a phone number: the same contact, now with wa_id.
    later = meta.message(sender="5491100000099")
    payload = meta.delivery(
        meta.value(
            messages=[later], contacts=[meta.contact("5491100000099", "Sin Número", user_id="US.13491208655302741918")]
        )
    )
    assert post_webhook(payload).status_code == 200
    contact = db.session.execute(select(Contact)).scalar_one()
    assert contact.wa_id == "5491100000099"
    assert count(Conversation) == 1


def test_new_customer_message_reopens_a_resolved_conversation(post_webhook):
    post_webhook(meta.delivery(meta.value(messages=[meta.message()])))
    conversation = db.session.execute(select(Conversation)).scalar_one()
    conversation.status = "resolved"
    db.session.commit()
    post_webhook(meta.delivery(meta.value(messages=[meta.message()])))
    db.session.expire_all()
    assert db.session.execute(select(Conversation.status)).scalar_one() == "open"


def test_out_of_order_messages_keep_the_newest_as_last_message(post_webhook):
    now = int(time.time())
    newer = meta.message(ts=now, content={"body": "segundo"})
    older = meta.message(ts=now - 300, content={"body": "primero"})
    post_webhook(meta.delivery(meta.value(messages=[newer])))
    post_webhook(meta.delivery(meta.value(messages=[older])))
    conversation = db.session.execute(select(Conversation)).scalar_one()
    assert conversation.last_message_id == stored(newer["id"]).id
    assert int(conversation.last_customer_message_at.timestamp()) == now


def test_fields_other_than_messages_are_kept_raw(post_webhook):
    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": meta.WABA_ID,
                "changes": [
                    {
                        "field": "message_template_status_update",
                        "value": {"event": "APPROVED", "message_template_name": "x"},
                    }
                ],
            }
        ],
    }
    response = post_webhook(payload)
    assert response.status_code == 200
    delivery = db.session.execute(select(WebhookDelivery)).scalar_one()
    assert delivery.summary["other_fields"] == ["message_template_status_update"]
    assert "APPROVED" in delivery.body


def test_wrong_types_inside_a_signed_body_never_fail(post_webhook):
    payloads = [
        {"object": "whatsapp_business_account", "entry": "nope"},
        {"entry": [{"changes": [{"field": "messages", "value": {"metadata": "x", "messages": [1, None]}}]}]},
        {
            "entry": [
                {
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "metadata": {"phone_number_id": meta.PHONE_NUMBER_ID},
                                "messages": [{"id": ["x"], "from": {"a": 1}, "timestamp": "later", "type": 5}],
                                "statuses": [{"id": "w", "status": 7}, "junk"],
                            },
                        }
                    ]
                }
            ]
        },
        meta.delivery(meta.value(messages=[meta.message(ts=99999999999999, content={"body": "a\u0000b"})])),
    ]
    for payload in payloads:
        response = post_webhook(payload)
        assert response.status_code == 200, response.json
    assert stored(payloads[-1]["entry"][0]["changes"][0]["value"]["messages"][0]["id"]).text == "ab"


def test_oversized_body_is_413_and_stores_nothing(client):
    body = b'{"object": "' + b"x" * (5 * 1024 * 1024) + b'"}'
    response = client.post("/webhook/whatsapp", data=body, headers=meta.signed_headers(body))
    assert response.status_code == 413
    assert response.is_json
    assert count(WebhookDelivery) == 0


def test_database_errors_are_503_only_when_retrying_can_help(app):
    """A permanent data error (e.g. an index row too large) is a 500, not a 503 Meta retries forever."""

    def error_with(pgcode: str | None) -> OperationalError:
        orig = psycopg2.OperationalError("x")
        if pgcode is not None:
            # psycopg2 exposes the SQLSTATE read-only; a subclass stands in for the server's answer.
            orig = type("PgError", (psycopg2.OperationalError,), {"pgcode": pgcode})("x")
        return OperationalError("SELECT 1", {}, orig)

    assert _is_connection_problem(error_with(None))  # connection refused: no SQLSTATE
    for transient in ("08006", "53300", "57P01", "57014", "40P01"):
        assert _is_connection_problem(error_with(transient)), transient
    assert not _is_connection_problem(error_with("54000"))  # program_limit_exceeded


def test_a_delivery_that_loses_a_deadlock_is_run_again_and_stored_once(post_webhook, monkeypatch):
    """Fault injection: PostgreSQL aborts the first attempt with deadlock_detected (40P01)."""
    real_ingest = inbound.ingest_delivery
    calls = {"n": 0}

    def deadlocked_once(session, body, parsed):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        result = real_ingest(session, body, parsed)  # the writes happen, then the abort
        if calls["n"] == 1:
            orig = type("DeadlockDetected", (psycopg2.OperationalError,), {"pgcode": "40P01"})("deadlock detected")
            raise OperationalError("UPDATE conversations …", {}, orig)
        return result

    monkeypatch.setattr(inbound, "ingest_delivery", deadlocked_once)
    msg = meta.message(content={"body": "tras el deadlock"})
    response = post_webhook(meta.delivery(meta.value(messages=[msg])))
    assert response.status_code == 200 and calls["n"] == 2
    assert count(Message) == 1 and count(WebhookDelivery) == 1
    assert db.session.execute(select(Conversation.unread_count)).scalar_one() == 1
