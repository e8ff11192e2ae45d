"""Per-route rate limits (Flask-Limiter).

- Webhook: only requests whose signature check *fails* are limited and counted, per client
  address. A validly signed delivery is exempt before any counting, so Meta is never
  throttled — not even behind a proxy that makes Meta and an attacker share one address.
- Login: failed attempts per account and per address.
- API: per token (or logged-in agent, or address).
- Pages: per agent or address.
Storage is Redis when REDIS_URL is set, memory otherwise; when Redis goes away, traffic goes
through on an in-memory fallback and it is logged.
"""

from __future__ import annotations

import hashlib
import logging
import time

from flask import Blueprint, Flask, Response, current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import current_user

from app.whatsapp.payloads import SignatureCheck, verify_signature

log = logging.getLogger(__name__)


def client_address() -> str:
    return get_remote_address() or "unknown"


def signature_is_valid() -> bool:
    body = request.get_data(cache=True)
    secret = current_app.config["WHATSAPP_APP_SECRET"]
    return verify_signature(secret, body, request.headers.get("X-Hub-Signature-256")) is SignatureCheck.OK


def failed_signature(response: Response) -> bool:
    return response.status_code in (401, 403)


def failed_login(response: Response) -> bool:
    return response.status_code == 401


def login_account() -> str:
    return "login:" + (request.form.get("email", "") or "").strip().lower()[:254]


def api_identity() -> str:
    header = request.headers.get("Authorization", "")
    if header:
        return "token:" + hashlib.sha256(header.encode()).hexdigest()[:32]
    if current_user.is_authenticated:
        return f"agent:{current_user.id}"
    return "addr:" + client_address()


def page_identity() -> str:
    if current_user.is_authenticated:
        return f"agent:{current_user.id}"
    return "addr:" + client_address()


def rate_limiter() -> Limiter:
    return current_app.extensions["rate_limiter"]


def retry_after_seconds() -> int:
    current = rate_limiter().current_limit
    if current is None:
        return 60
    return max(1, int(current.reset_at - time.time()) + 1)


def init_rate_limits(app: Flask, *, webhook: Blueprint, api: Blueprint, auth: Blueprint, inbox: Blueprint) -> Limiter:
    """A limiter for this app (its storage and limits are per app), with the limits per blueprint."""
    config = app.config
    limiter = Limiter(key_func=client_address)
    limiter.init_app(app)
    app.extensions["rate_limiter"] = limiter
    limiter.limit(
        config["RATELIMIT_WEBHOOK_BAD_SIGNATURE"],
        key_func=client_address,
        exempt_when=signature_is_valid,
        deduct_when=failed_signature,
        methods=["POST"],
    )(webhook)
    limiter.limit(config["RATELIMIT_API"], key_func=api_identity)(api)
    limiter.limit(config["RATELIMIT_PAGES"], key_func=page_identity, methods=["GET"])(inbox)
    for key_func, limit in (
        (login_account, config["RATELIMIT_LOGIN_ACCOUNT"]),
        (client_address, config["RATELIMIT_LOGIN_ADDRESS"]),
    ):
        limiter.limit(limit, key_func=key_func, methods=["POST"], deduct_when=failed_login)(auth)

    storage = config["RATELIMIT_STORAGE_URI"]
    workers = int(config.get("WEB_CONCURRENCY") or 1)
    if storage.startswith("memory://") and workers > 1 and not app.testing:
        log.warning("rate limits are counted in memory by each of %d workers: set REDIS_URL to share them", workers)
    return limiter
