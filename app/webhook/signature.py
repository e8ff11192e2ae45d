"""The webhook request's signature, checked once per request.

Flask-Limiter asks before the view whether a delivery is validly signed (a signed one is exempt
from every limit; unsigned ones spend the bad-signature budget), and the view refuses the
unsigned: both read the answer kept in the request's environ (not `g`, which an app context
spanning several requests would share) instead of hashing the body again.
"""

from __future__ import annotations

from flask import current_app, request

from app.whatsapp.payloads import SignatureCheck, verify_signature

_KEY = "inbox.delivery_signature"


def delivery_signature() -> SignatureCheck:
    """`X-Hub-Signature-256` against HMAC-SHA256(app secret, raw body), for this request."""
    check = request.environ.get(_KEY)
    if check is None:
        check = request.environ[_KEY] = verify_signature(
            current_app.config["WHATSAPP_APP_SECRET"],
            request.get_data(cache=True),  # over MAX_CONTENT_LENGTH: 413 before reading
            request.headers.get("X-Hub-Signature-256"),
        )
    return check
