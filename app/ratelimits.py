"""Per-route rate limits (Flask-Limiter).

- Webhook: only requests whose signature check *fails* are limited and counted, per client
  address. A validly signed delivery is exempt before any counting, so Meta is never
  throttled — not even behind a proxy that makes Meta and an attacker share one address.
- Login (LoginThrottle, called by the login view): failed attempts per account *from one
  address* with longer windows behind the short one (backoff), per address whatever the account,
  and a ceiling per account from everywhere that blocks only addresses which failed for that
  account: an attacker elsewhere can never lock an agent out of their own address.
- API: per parsed token (or logged-in agent, or address), and the answers 401 per address (a
  budget of failed authentications: bogus tokens cost a query each).
- Pages: per agent or address.
Storage is Redis when REDIS_URL is set, memory otherwise (`SweptMemoryStorage`, scheme
`swept-memory://`); when Redis goes away, traffic goes through on an in-memory fallback and it
is logged.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from flask import Blueprint, Flask, Response, current_app, g, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import current_user
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter, RateLimiter

from app.services.tokens import bearer_token
from app.webhook.signature import delivery_signature
from app.whatsapp.payloads import SignatureCheck

log = logging.getLogger(__name__)
T = TypeVar("T")
MEMORY_STORAGE_URI = "swept-memory://"
SWEEP_SECONDS = 1.0


class SweptMemoryStorage(MemoryStorage):
    """limits' MemoryStorage without a thread per hit (scheme `swept-memory://`).

    limits (5.x) schedules its sweep of expired counters on a `threading.Timer` of 10 ms after
    every counted hit: nearly every request starts, and soon ends, one more thread (tens of
    microseconds of CPU and a lock handshake each). The sweep is only memory hygiene: every read
    (`get`, `acquire_entry`) already ignores expired counters and entries. So here the sweep runs
    on the calling thread, at most once per `SWEEP_SECONDS`. It overrides the one name-mangled
    private method (`limits==5.8.0` is pinned; tests/test_ratelimits.py checks no thread is
    started and the limits still hold).
    """

    STORAGE_SCHEME = ["swept-memory"]  # noqa: RUF012 (limits declares it a list; its registry reads it)

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: str) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self._next_sweep = time.monotonic() + SWEEP_SECONDS
        self._sweep_lock = threading.Lock()

    def _MemoryStorage__schedule_expiry(self) -> None:  # the parent's mangled name
        now = time.monotonic()
        if now < self._next_sweep or not self._sweep_lock.acquire(blocking=False):
            return
        try:
            self._next_sweep = now + SWEEP_SECONDS
            self._MemoryStorage__expire_events()  # type: ignore[attr-defined]
        finally:
            self._sweep_lock.release()


def client_address() -> str:
    return get_remote_address() or "unknown"


def signature_is_valid() -> bool:
    return delivery_signature() is SignatureCheck.OK


# The blueprints with limits (init_rate_limits); nothing else is counted by Flask-Limiter.
LIMITED_BLUEPRINTS = frozenset({"webhook", "api", "inbox"})


def outside_limits() -> bool:
    """A request no limit applies to (health checks, login pages, admin, static files): exempt
    before Flask-Limiter resolves anything (its request filter; the same answer, for less)."""
    return request.blueprint not in LIMITED_BLUEPRINTS


def signed_delivery() -> bool:
    """A validly signed webhook POST: exempt from every limit before Flask-Limiter resolves any
    (its request filter; cheaper than resolving the webhook's limit to exempt it)."""
    return request.method == "POST" and request.endpoint == "webhook.receive" and signature_is_valid()


def failed_signature(response: Response) -> bool:
    return response.status_code in (401, 403)


def failed_authentication(response: Response) -> bool:
    return response.status_code == 401


def api_identity() -> str:
    """The budget a request draws on: its token as the guard parses it (every spelling of
    `Bearer <token>` is one token), else the logged-in agent, else the address."""
    header = request.headers.get("Authorization", "")
    if header:
        token = bearer_token(header)
        if token is None:
            return "addr:" + client_address()  # malformed: answered 401, nothing looked up
        return "token:" + hashlib.sha256(token.encode()).hexdigest()[:32]
    if current_user.is_authenticated:
        return f"agent:{current_user.id}"
    return "addr:" + client_address()


def page_identity() -> str:
    """The logged-in agent, else the address. An unchanged poll names its agent from the session
    (app/inbox/polls.py), so counting it loads no agent row."""
    poll_agent_id = g.get("poll_agent_id")
    if poll_agent_id is not None:
        return f"agent:{poll_agent_id}"
    if current_user.is_authenticated:
        return f"agent:{current_user.id}"
    return "addr:" + client_address()


def unchanged_poll_counted(agent_id: int) -> bool:
    """Count an unchanged poll (answered 304 before Flask-Limiter runs, app/inbox/polls.py) on
    the agent's budget of unchanged polls: RATELIMIT_PAGES' limits, counted apart from the pages'
    in the same storage by the limits library directly. False when that budget is spent or the
    storage is unreachable: the poll then goes through Flask-Limiter (its pages' budget, its
    in-memory fallback)."""
    try:
        strategy = rate_limiter().limiter
        hits = [strategy.hit(item, "unchanged-poll", str(agent_id)) for item in current_app.extensions["poll_limits"]]
    except Exception:
        global _poll_storage_warned
        now = time.monotonic()
        if now - _poll_storage_warned > 60:  # once a minute, not on every poll of every agent
            _poll_storage_warned = now
            log.warning("rate-limit storage unreachable for an unchanged poll; counting it as a page", exc_info=True)
        return False
    return all(hits)


_poll_storage_warned = -60.0


def auth_failure_identity() -> str:
    return "authfail:" + client_address()


def _digest(value: str) -> str:
    """Counters are keyed on digests: the storage never holds an e-mail address."""
    return hashlib.sha256(value.encode()).hexdigest()[:32]


class LoginThrottle:
    """Failed logins of one e-mail address from one client address.

    - pair (RATELIMIT_LOGIN_ACCOUNT, default 5 per 5 minutes; 20 per hour; 50 per day): wrong
      passwords for this account from this address. Each window is longer than the one before:
      an address that keeps guessing waits minutes, then an hour, then a day (the backoff).
    - address (RATELIMIT_LOGIN_ADDRESS): failures from this address whatever the account, so
      guessing across many accounts (or random e-mails) is throttled too — for that address only.
    - ceiling (RATELIMIT_LOGIN_ACCOUNT_CEILING, default 50 per hour): failures for this account
      from everywhere. When it is reached, the account takes attempts only from addresses that
      have not failed for it within the ceiling's window: a botnet gets one guess per address,
      while the agent typing the right password at their own desk still gets in.
    """

    def __init__(self, email: str, address: str) -> None:
        config = current_app.config
        self.account = _digest(email.strip().lower()[:254])
        self.address = address
        self.pair_limits = parse_many(config["RATELIMIT_LOGIN_ACCOUNT"])
        self.address_limits = parse_many(config["RATELIMIT_LOGIN_ADDRESS"])
        self.ceiling_limits = parse_many(config["RATELIMIT_LOGIN_ACCOUNT_CEILING"])

    @classmethod
    def for_request(cls, email: str) -> LoginThrottle:
        return cls(email, client_address())

    def _counters(self) -> list[tuple[RateLimitItem, tuple[str, ...]]]:
        """Every counter a failure adds to."""
        return [
            *((item, self._pair_key) for item in self.pair_limits),
            *((item, self._address_key) for item in self.address_limits),
            *((item, self._account_key) for item in self.ceiling_limits),
            *((item, self._account_from_key) for item in self.ceiling_limits),
        ]

    @property
    def _pair_key(self) -> tuple[str, ...]:
        return ("login-pair", self.account, self.address)

    @property
    def _address_key(self) -> tuple[str, ...]:
        return ("login-addr", self.address)

    @property
    def _account_key(self) -> tuple[str, ...]:
        return ("login-account", self.account)

    @property
    def _account_from_key(self) -> tuple[str, ...]:
        return ("login-account-from", self.account, self.address)

    def retry_after(self) -> int | None:
        """Seconds until this address may try this account again, or None: it may now."""
        return _guarded(self._retry_after, None)

    def _retry_after(self, strategy: RateLimiter) -> int | None:
        spent = [
            (item, key)
            for item, key in (
                *((item, self._pair_key) for item in self.pair_limits),
                *((item, self._address_key) for item in self.address_limits),
            )
            if not strategy.test(item, *key)
        ]
        for item in self.ceiling_limits:
            failed_here = strategy.get_window_stats(item, *self._account_from_key).remaining < item.amount
            if failed_here and not strategy.test(item, *self._account_key):
                spent.append((item, self._account_key))
        if not spent:
            return None
        reset_at = max(strategy.get_window_stats(item, *key).reset_time for item, key in spent)
        return max(1, int(reset_at - time.time()) + 1)

    def failed(self) -> None:
        def hit(strategy: RateLimiter) -> None:
            for item, key in self._counters():
                strategy.hit(item, *key)

        _guarded(hit, None)

    def succeeded(self) -> None:
        """The right password: this address's failures for the account are forgotten."""

        def clear(strategy: RateLimiter) -> None:
            for item in self.pair_limits:
                strategy.clear(item, *self._pair_key)

        _guarded(clear, None)


def _guarded(action: Callable[[RateLimiter], T], default: T) -> T:
    """Run against the shared storage; when it is unreachable, against this process's memory."""
    try:
        return action(rate_limiter().limiter)
    except Exception:
        log.warning("rate-limit storage unreachable for login throttling; counting in memory", exc_info=True)
    try:
        return action(current_app.extensions["login_throttle_fallback"])
    except Exception:
        log.exception("login throttling failed")
        return default


def rate_limiter() -> Limiter:
    return current_app.extensions["rate_limiter"]


def retry_after_seconds() -> int:
    current = rate_limiter().current_limit
    if current is None:
        return 60
    return max(1, int(current.reset_at - time.time()) + 1)


def init_rate_limits(app: Flask, *, webhook: Blueprint, api: Blueprint, inbox: Blueprint) -> Limiter:
    """A limiter for this app (its storage and limits are per app), with the limits per blueprint."""
    config = app.config
    limiter = Limiter(key_func=client_address)
    limiter.init_app(app)
    app.extensions["rate_limiter"] = limiter
    limiter.request_filter(outside_limits)
    limiter.request_filter(signed_delivery)
    limiter.limit(
        config["RATELIMIT_WEBHOOK_BAD_SIGNATURE"],
        key_func=client_address,
        exempt_when=signature_is_valid,
        deduct_when=failed_signature,
        methods=["POST"],
    )(webhook)
    limiter.limit(config["RATELIMIT_API"], key_func=api_identity)(api)
    # Checked before the view runs: once an address has spent its budget of 401s, its requests
    # are refused without a token lookup.
    limiter.limit(
        config["RATELIMIT_API_AUTH_FAILURES"], key_func=auth_failure_identity, deduct_when=failed_authentication
    )(api)
    limiter.limit(config["RATELIMIT_PAGES"], key_func=page_identity, methods=["GET"])(inbox)
    if {webhook.name, api.name, inbox.name} != LIMITED_BLUEPRINTS:
        raise RuntimeError("outside_limits() must name every blueprint with limits")
    app.extensions["poll_limits"] = parse_many(config["RATELIMIT_PAGES"])  # unchanged_poll_counted
    # Failed logins: LoginThrottle, called by the login view (it needs the form's e-mail and the
    # outcome). Its in-memory fallback when the shared storage is unreachable:
    app.extensions["login_throttle_fallback"] = FixedWindowRateLimiter(SweptMemoryStorage())
    for name in ("RATELIMIT_LOGIN_ACCOUNT", "RATELIMIT_LOGIN_ADDRESS", "RATELIMIT_LOGIN_ACCOUNT_CEILING"):
        parse_many(config[name])  # a malformed limit stops start-up, as Flask-Limiter's own do

    storage = config["RATELIMIT_STORAGE_URI"]
    workers = int(config.get("WEB_CONCURRENCY") or 1)
    if "memory://" in storage and workers > 1 and not app.testing:
        log.warning("rate limits are counted in memory by each of %d workers: set REDIS_URL to share them", workers)
    return limiter
