"""`GET|POST /webhook/whatsapp`: Meta's verify handshake and signed deliveries.

The HTTP edge only: the signature and the body are checked here, everything else is the
inbound service's (`app/services/inbound.py`).
"""

from __future__ import annotations

import hmac
import logging

from flask import Blueprint, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from app.api.docs import (
    DATABASE_UNAVAILABLE,
    INTERNAL_ERROR,
    PUBLIC,
    RATE_LIMITED,
    Body,
    documented,
    error_answer,
    header,
    json_response,
    query,
    text,
)
from app.api.errors import error_response
from app.api.responses import WebhookReceipt
from app.services import inbound
from app.webhook.signature import delivery_signature
from app.whatsapp.payloads import PayloadError, SignatureCheck, decode_body

log = logging.getLogger(__name__)

bp = Blueprint("webhook", __name__)


@bp.get("/webhook/whatsapp")
@documented(
    "verifyWebhook",
    tag="webhook",
    security=PUBLIC,
    parameters=[
        query("hub.mode", {"type": "string", "const": "subscribe"}, required=True),
        query(
            "hub.verify_token",
            {"type": "string"},
            "Must equal the configured `WHATSAPP_VERIFY_TOKEN` (compared in constant time).",
            required=True,
        ),
        query(
            "hub.challenge",
            {"type": "string", "minLength": 1},
            "Echoed back verbatim; must not be empty.",
            required=True,
        ),
    ],
    responses={
        200: text("The verify token matches; the body is `hub.challenge`."),
        403: text(
            "Wrong mode, wrong or unset verify token, or no challenge. The body is `Forbidden`.",
            {"type": "string", "const": "Forbidden"},
        ),
    },
)
def verify() -> ResponseReturnValue:
    """Meta's verify handshake

    Meta calls this once when the webhook is configured. The `hub.challenge` is echoed as
    plain text when `hub.mode` is `subscribe` and `hub.verify_token` equals
    `WHATSAPP_VERIFY_TOKEN`; anything else (including an unset verify token or an empty
    challenge) is 403.
    """
    expected = current_app.config["WHATSAPP_VERIFY_TOKEN"]
    token = request.args.get("hub.verify_token", "")
    challenge = request.args.get("hub.challenge", "")
    if (
        expected
        and request.args.get("hub.mode") == "subscribe"
        and hmac.compare_digest(token.encode(), expected.encode())
        and challenge
    ):
        return challenge, 200, {"Content-Type": "text/plain; charset=utf-8"}
    return "Forbidden", 403, {"Content-Type": "text/plain; charset=utf-8"}


@bp.post("/webhook/whatsapp")
@documented(
    "receiveWebhook",
    tag="webhook",
    security=PUBLIC,
    parameters=[
        header(
            "X-Hub-Signature-256",
            {"type": "string"},
            "`sha256=<hex HMAC-SHA256 of the raw body with the app secret>`. Missing: 401; wrong: 403.",
            required=True,
        )
        | {"example": "sha256=3f4e1c2b5a6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6b"}
    ],
    body=Body(
        {"application/json": {"type": "object"}},
        'Meta\'s delivery (`{"object": "whatsapp_business_account", "entry": [...]}`), at most 4 MB, UTF-8 '
        "JSON whose top level is an object. Fields other than `messages` and `smb_message_echoes` are kept in "
        "the raw delivery only; malformed parts are skipped and reported as `outcome: partial`.",
    ),
    responses={
        200: json_response("The delivery is committed (or was already, for `outcome` `duplicate`).", WebhookReceipt),
        400: error_answer("invalid_body", "The body is not UTF-8, not JSON, or not a JSON object (`invalid_body`)."),
        401: error_answer("signature_missing", "No `X-Hub-Signature-256` header (`signature_missing`)."),
        403: error_answer(
            "signature_invalid",
            "The signature does not match the body, or no app secret is configured (`signature_invalid`).",
        ),
        413: error_answer(
            "request_entity_too_large",
            "The body is larger than 4 MB (`MAX_CONTENT_LENGTH`); refused before it is read "
            "(`request_entity_too_large`).",
        ),
        429: RATE_LIMITED,
        500: INTERNAL_ERROR,
        503: DATABASE_UNAVAILABLE,
    },
)
def receive() -> ResponseReturnValue:
    """A signed delivery from Meta

    The raw body is checked against `X-Hub-Signature-256` (HMAC-SHA256 with
    `WHATSAPP_APP_SECRET`) before it is parsed. The raw delivery, every message and every
    status in it are written in one transaction; the 200 is sent only after the commit.

    Idempotent: a message id (`wamid`) is stored once however often Meta redelivers it,
    and an identical body is recognised as a duplicate delivery. Message statuses never
    move backwards (`sent` → `delivered` → `read` → `played`; `failed` outranks `sent`
    but not `delivered` or `read`). A status for a message not stored yet is kept and
    applied when that message arrives (`statuses_waiting`).

    A 503 with `Retry-After` means nothing was stored: Meta retries the delivery.
    """
    check = delivery_signature()
    body = request.get_data(cache=True)
    if check is SignatureCheck.MISSING:
        log.warning("webhook refused: no X-Hub-Signature-256 header")
        inbound.refused("missing_signature")
        return error_response(401, "signature_missing", "X-Hub-Signature-256 header is required.")
    if check is SignatureCheck.INVALID:
        log.warning("webhook refused: signature does not match")
        inbound.refused("bad_signature")
        return error_response(403, "signature_invalid", "X-Hub-Signature-256 does not match the body.")
    try:
        data = decode_body(body)
    except PayloadError as exc:
        inbound.refused("invalid_body")
        return error_response(400, "invalid_body", str(exc))
    result = inbound.receive_delivery(body, data)
    return jsonify(
        status="ok",
        outcome=result.outcome,
        messages_stored=result.messages_stored,
        messages_duplicate=result.messages_duplicate,
        statuses_applied=result.statuses_applied,
        statuses_waiting=result.statuses_waiting,
    ), 200
