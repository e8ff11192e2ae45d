"""`GET|POST /webhook/whatsapp`: Meta's verify handshake and signed deliveries.

The HTTP edge only: the signature and the body are checked here, everything else is the
inbound service's (`app/services/inbound.py`).
"""

from __future__ import annotations

import hmac
import logging

from flask import Blueprint, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from app.api.errors import error_response
from app.services import inbound
from app.whatsapp.payloads import PayloadError, SignatureCheck, decode_body, verify_signature

log = logging.getLogger(__name__)

bp = Blueprint("webhook", __name__)


@bp.get("/webhook/whatsapp")
def verify() -> ResponseReturnValue:
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
def receive() -> ResponseReturnValue:
    body = request.get_data(cache=True)  # over MAX_CONTENT_LENGTH: 413 before reading
    check = verify_signature(
        current_app.config["WHATSAPP_APP_SECRET"], body, request.headers.get("X-Hub-Signature-256")
    )
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
