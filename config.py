"""Configuration from the environment.

Every setting is documented in README.md and `.env.example`. `load_config()` returns a plain
dict that `create_app()` merges into `app.config`; tests pass overrides on top of it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

DEFAULT_GRAPH_URL = "https://graph.facebook.com/v25.0"
# Where Graph's media download URLs point (https://lookaside.fbsbx.com/whatsapp_business/...).
DEFAULT_MEDIA_HOSTS = "lookaside.fbsbx.com"


class ConfigError(RuntimeError):
    """A required setting is missing or malformed; start-up must stop with this message."""


def normalise_database_url(url: str) -> str:
    """Accept Render's `postgres://` and plain `postgresql://`, always select psycopg2.

    SQLAlchemy rejects `postgres://`, and SQLAlchemy 2.1 maps a bare `postgresql://` to
    psycopg 3 (installed, but for the jobs worker and the inbox version listener only: on the
    web path it costs the workers more CPU than psycopg2, README "Per-request overhead").
    """
    url = url.strip()
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url


def _int(env: Mapping[str, str], key: str, default: int, minimum: int = 0) -> int:
    raw = env.get(key)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(f"{key} must be an integer, got {raw!r}") from exc
    if value < minimum:
        raise ConfigError(f"{key} must be at least {minimum}, got {value}")
    return value


def _bool(env: Mapping[str, str], key: str, default: bool) -> bool:
    raw = env.get(key)
    if raw is None or raw.strip() == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{key} must be true or false, got {raw!r}")


def media_hosts(env: Mapping[str, str], production: bool) -> tuple[str, ...]:
    """`WHATSAPP_MEDIA_HOSTS`: the hosts media downloads may be fetched from with the token.

    Comma-separated; a bare `host[:port]` means https only, `http://host[:port]` must be written
    out (tests allow their local fake Graph server so) and is refused in production. Without a
    port, any port of the host matches. Normalised to origins: `https://lookaside.fbsbx.com`.
    """
    raw = env.get("WHATSAPP_MEDIA_HOSTS")
    if raw is None or raw.strip() == "":
        raw = DEFAULT_MEDIA_HOSTS
    origins: list[str] = []
    for item in raw.split(","):
        entry = item.strip().lower()
        if not entry:
            continue
        problem = f"WHATSAPP_MEDIA_HOSTS: {entry!r} is not a host name or an http(s) origin"
        try:
            parts = urlsplit(entry if "://" in entry else f"https://{entry}")
            port = parts.port
        except ValueError as exc:
            raise ConfigError(problem) from exc
        host = parts.hostname
        if parts.scheme not in ("http", "https") or not host or "@" in parts.netloc:
            raise ConfigError(problem)
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ConfigError(problem)
        if parts.scheme == "http" and production:
            raise ConfigError(f"WHATSAPP_MEDIA_HOSTS: {entry!r} would send the access token unencrypted")
        host = f"[{host}]" if ":" in host else host
        origins.append(f"{parts.scheme}://{host}" + (f":{port}" if port else ""))
    if not origins:
        raise ConfigError(f"WHATSAPP_MEDIA_HOSTS names no host: {raw!r}")
    return tuple(origins)


def app_env(env: Mapping[str, str]) -> str:
    return (env.get("APP_ENV") or env.get("FLASK_ENV") or "development").strip().lower()


def engine_options(env: Mapping[str, str]) -> dict[str, Any]:
    """SQLAlchemy engine options sized to one worker process.

    Each gthread worker runs `GUNICORN_THREADS` request threads; a pool of that size plus a
    small overflow serves them without queueing, and keeps instances × workers × (pool_size +
    max_overflow) well under Render's ~100 connections (the analysis' 10/20 would need 120
    with four workers).
    """
    threads = _int(env, "GUNICORN_THREADS", 4, minimum=1)
    connect_args: dict[str, Any] = {
        "connect_timeout": _int(env, "DB_CONNECT_TIMEOUT", 5, minimum=1),
        "options": f"-c statement_timeout={_int(env, 'DB_STATEMENT_TIMEOUT_MS', 15000, minimum=0)}",
        "application_name": env.get("DB_APPLICATION_NAME", "whatsapp-inbox"),
    }
    sslmode = env.get("DB_SSLMODE", "").strip()
    if sslmode:
        connect_args["sslmode"] = sslmode
    return {
        "pool_size": _int(env, "DB_POOL_SIZE", threads, minimum=1),
        "max_overflow": _int(env, "DB_MAX_OVERFLOW", max(1, threads // 2)),
        "pool_timeout": _int(env, "DB_POOL_TIMEOUT", 5, minimum=1),
        "pool_recycle": _int(env, "DB_POOL_RECYCLE", 300, minimum=-1),
        # Pinged on checkout by SQLAlchemy itself only without an idle window (app/pool_ping.py).
        "pool_pre_ping": _bool(env, "DB_POOL_PRE_PING", True) and pool_ping_idle_seconds(env) is None,
        "connect_args": connect_args,
    }


def pool_ping_idle_seconds(env: Mapping[str, str]) -> float | None:
    """With the pre-ping on (DB_POOL_PRE_PING), a connection checked in less than
    DB_POOL_PING_IDLE_MS ago is handed out without its `SELECT 1` (app/pool_ping.py); None: no
    window (0, every checkout pinged by SQLAlchemy's pool_pre_ping; or no pre-ping at all)."""
    window_ms = _int(env, "DB_POOL_PING_IDLE_MS", 1000)
    if not _bool(env, "DB_POOL_PRE_PING", True) or window_ms == 0:
        return None
    return window_ms / 1000


# The live stream's route (app/inbox/live.py); gunicorn.conf.py's RequestSlots lets it past.
LIVE_STREAM_PATH = "/inbox/events"

# gunicorn restarts a worker after this many requests (± the jitter, so two never restart
# together): a guard against slow memory growth. A restart costs about half a second of CPU (the
# old worker's exit, the new one's connections and first statements; measured, bench/RESULTS.md),
# which at 1,000 was 15 % of the webhook's CPU under load; a worker's memory stays flat over
# 15,000 requests, so 10,000 loses nothing the guard is for.
GUNICORN_MAX_REQUESTS = 10_000
GUNICORN_MAX_REQUESTS_JITTER = 1_000


def live_streams_per_worker(env: Mapping[str, str]) -> int:
    """The live streams one web worker holds open at most (app/inbox/live.py); gunicorn.conf.py
    reads it too, for the threads it adds to GUNICORN_THREADS."""
    return _int(env, "LIVE_STREAMS_PER_WORKER", 10)


def connection_budget(env: Mapping[str, str]) -> tuple[int, int, str]:
    """PostgreSQL connections this deployment may open at most, the limit, and the arithmetic.

    instances × (workers × (pool_size + max_overflow) + the jobs worker's), doubled for a deploy
    overlap (the old and the new version both run for a while), against DB_MAX_CONNECTIONS
    (Render's basic plans allow ~100; leave room for psql and migrations). The jobs worker, when
    it runs inside the web service (JOBS_IN_WEB), holds its queue pool (JOBS_DB_POOL_SIZE), one
    LISTEN connection, and one connection per concurrent job plus one for the sweep. Each web
    worker has one LISTEN connection of its own too (INBOX_VERSION_LISTEN).
    """
    options = engine_options(env)
    instances = _int(env, "INSTANCE_COUNT", 1, minimum=1)
    workers = _int(env, "WEB_CONCURRENCY", 2, minimum=1)
    listen = 1 if _bool(env, "INBOX_VERSION_LISTEN", True) else 0
    per_worker = options["pool_size"] + options["max_overflow"] + listen
    jobs = 0
    if _bool(env, "JOBS_IN_WEB", True):
        jobs = _int(env, "JOBS_DB_POOL_SIZE", 3, minimum=2) + 1 + _int(env, "JOBS_CONCURRENCY", 2, minimum=1) + 1
    total = 2 * instances * (workers * per_worker + jobs)
    limit = _int(env, "DB_MAX_CONNECTIONS", 90, minimum=1)
    explain = (
        f"2 (deploy overlap) × {instances} instance(s) × ({workers} worker(s) × "
        f"({options['pool_size']} pool + {options['max_overflow']} overflow + {listen} listen) + {jobs} jobs worker) "
        f"= {total} connections"
    )
    return total, limit, explain


def load_config(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    env = os.environ if env is None else env
    environment = app_env(env)
    production = environment == "production"

    secret_key = env.get("SECRET_KEY", "").strip()
    if not secret_key:
        if production:
            raise ConfigError(
                "SECRET_KEY is not set. In production the app refuses to start without it: "
                "set SECRET_KEY to a long random value (render.yaml generates one)."
            )
        # Development only: a per-process random key (sessions end on restart).
        secret_key = os.urandom(32).hex()

    database_url = env.get("DATABASE_URL", "").strip()
    if database_url:
        database_url = normalise_database_url(database_url)
    elif production:
        raise ConfigError("DATABASE_URL is not set. In production it must name the PostgreSQL server.")

    return {
        "APP_ENV": environment,
        "SECRET_KEY": secret_key,
        # None means: start the embedded PostgreSQL under instance/ (development and tests).
        "SQLALCHEMY_DATABASE_URI": database_url or None,
        "SQLALCHEMY_ENGINE_OPTIONS": engine_options(env),
        "DB_POOL_PING_IDLE_SECONDS": pool_ping_idle_seconds(env),
        "SQLALCHEMY_TRACK_MODIFICATIONS": False,
        "WHATSAPP_APP_SECRET": env.get("WHATSAPP_APP_SECRET", ""),
        "WHATSAPP_VERIFY_TOKEN": env.get("WHATSAPP_VERIFY_TOKEN", ""),
        "WHATSAPP_ACCESS_TOKEN": env.get("WHATSAPP_ACCESS_TOKEN", ""),
        "WHATSAPP_PHONE_NUMBER_ID": env.get("WHATSAPP_PHONE_NUMBER_ID", ""),
        "WHATSAPP_BUSINESS_ACCOUNT_ID": env.get("WHATSAPP_BUSINESS_ACCOUNT_ID", ""),
        # Numbers typed without a country code (starting a conversation) are read in this region.
        "DEFAULT_PHONE_REGION": (env.get("DEFAULT_PHONE_REGION") or "ES").strip().upper(),
        "WHATSAPP_GRAPH_URL": (env.get("WHATSAPP_GRAPH_URL") or DEFAULT_GRAPH_URL).rstrip("/"),
        # The Graph token goes only to the Graph host and to media downloads on these hosts.
        "WHATSAPP_MEDIA_HOSTS": media_hosts(env, production),
        "GRAPH_CONNECT_TIMEOUT": float(env.get("GRAPH_CONNECT_TIMEOUT") or 5),
        "GRAPH_READ_TIMEOUT": float(env.get("GRAPH_READ_TIMEOUT") or 10),
        "GRAPH_MAX_RETRIES": _int(env, "GRAPH_MAX_RETRIES", 2),
        "GRAPH_RETRY_BACKOFF": float(env.get("GRAPH_RETRY_BACKOFF") or 0.5),
        # JSON lines in production (for Render's log stream), readable lines in development.
        "LOG_FORMAT": (env.get("LOG_FORMAT") or ("json" if production else "console")).strip().lower(),
        "LOG_LEVEL": (env.get("LOG_LEVEL") or "INFO").strip().upper(),
        "REDIS_URL": env.get("REDIS_URL", "").strip() or None,
        # The conversation list may be served from a cache this many seconds old at most
        # (0 turns it off); every write that changes the list invalidates it at once.
        "LIST_CACHE_SECONDS": _int(env, "LIST_CACHE_SECONDS", 5),
        # /metrics answers only `Authorization: Bearer <METRICS_TOKEN>`; unset, it does not exist.
        "METRICS_TOKEN": env.get("METRICS_TOKEN", "").strip() or None,
        # Processes serving this app, each with its own memory (rate-limit counters, the list
        # cache): under gunicorn, its workers (gunicorn.conf.py sets WEB_CONCURRENCY to their
        # final number before the app loads); elsewhere one (`flask run`, CLI commands, tests).
        "WEB_CONCURRENCY": _int(env, "WEB_CONCURRENCY", 1, minimum=1),
        # Without Redis: limits' memory storage without its thread per hit (app/ratelimits.py).
        "RATELIMIT_STORAGE_URI": env.get("REDIS_URL", "").strip() or "swept-memory://",
        "RATELIMIT_STORAGE_OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        "RATELIMIT_SWALLOW_ERRORS": True,
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "RATELIMIT_HEADERS_ENABLED": False,  # Retry-After is set on 429 answers only
        "RATELIMIT_WEBHOOK_BAD_SIGNATURE": env.get("RATELIMIT_WEBHOOK_BAD_SIGNATURE") or "30 per minute",
        # Failed logins (app/ratelimits.py, LoginThrottle): per account *from one address*, with
        # longer windows behind the short one (the backoff); per address whatever the account;
        # and a ceiling per account from everywhere that only addresses which failed for it meet.
        "RATELIMIT_LOGIN_ACCOUNT": env.get("RATELIMIT_LOGIN_ACCOUNT") or "5 per 5 minutes;20 per hour;50 per day",
        "RATELIMIT_LOGIN_ADDRESS": env.get("RATELIMIT_LOGIN_ADDRESS") or "30 per 5 minutes;100 per hour",
        "RATELIMIT_LOGIN_ACCOUNT_CEILING": env.get("RATELIMIT_LOGIN_ACCOUNT_CEILING") or "50 per hour",
        "RATELIMIT_API": env.get("RATELIMIT_API") or "600 per minute",
        # API requests answered 401 (no, malformed, unknown, revoked or expired credentials), per address.
        "RATELIMIT_API_AUTH_FAILURES": env.get("RATELIMIT_API_AUTH_FAILURES") or "30 per minute",
        "RATELIMIT_PAGES": env.get("RATELIMIT_PAGES") or "300 per minute",
        "RAW_DELIVERY_RETENTION_DAYS": _int(env, "RAW_DELIVERY_RETENTION_DAYS", 30, minimum=1),
        # Our copies of inbound media: a directory (None: instance/media, set by create_app), or
        # an S3-compatible bucket when MEDIA_S3_BUCKET is set (boto3's credential chain applies
        # when the keys are unset).
        "MEDIA_STORAGE_PATH": env.get("MEDIA_STORAGE_PATH", "").strip() or None,
        "MEDIA_S3_BUCKET": env.get("MEDIA_S3_BUCKET", "").strip() or None,
        "MEDIA_S3_PREFIX": env.get("MEDIA_S3_PREFIX", "").strip(),
        "MEDIA_S3_ENDPOINT_URL": env.get("MEDIA_S3_ENDPOINT_URL", "").strip() or None,
        "MEDIA_S3_REGION": env.get("MEDIA_S3_REGION", "").strip() or None,
        "MEDIA_S3_ACCESS_KEY_ID": env.get("MEDIA_S3_ACCESS_KEY_ID", "").strip() or None,
        "MEDIA_S3_SECRET_ACCESS_KEY": env.get("MEDIA_S3_SECRET_ACCESS_KEY", "").strip() or None,
        # 0 (the default): keep media forever; else `maintenance prune-media` removes older copies.
        "MEDIA_RETENTION_DAYS": _int(env, "MEDIA_RETENTION_DAYS", 0),
        # The jobs worker (`flask --app wsgi jobs worker`): jobs run at once, its own connections.
        "JOBS_CONCURRENCY": _int(env, "JOBS_CONCURRENCY", 2, minimum=1),
        "JOBS_DB_POOL_SIZE": _int(env, "JOBS_DB_POOL_SIZE", 3, minimum=2),
        # The worker's CPU priority (nice 0-19): downloads yield the CPU to the webhook and pages.
        "JOBS_NICE": _int(env, "JOBS_NICE", 10, minimum=0),
        # gunicorn.conf.py reads it too: start the worker beside the web workers (Render's default).
        "JOBS_IN_WEB": _bool(env, "JOBS_IN_WEB", True),
        "DB_RETRY_AFTER_SECONDS": _int(env, "DB_RETRY_AFTER_SECONDS", 5, minimum=1),
        # The webhook's hot statements as server-side prepared statements (app/prepared.py);
        # false behind a pooler that shares server connections between transactions.
        "DB_PREPARED_STATEMENTS": _bool(env, "DB_PREPARED_STATEMENTS", True),
        # Each web worker LISTENs for inbox version bumps on one connection of its own, so an
        # unchanged poll needs no database round trip (app/version_listener.py).
        "INBOX_VERSION_LISTEN": _bool(env, "INBOX_VERSION_LISTEN", True),
        # The inbox's live stream (app/inbox/live.py): streams one web worker holds open at most
        # (gunicorn.conf.py starts as many threads more than GUNICORN_THREADS; 0: polls only),
        # how long one stays open before the browser reconnects, and how often it says it is alive.
        "LIVE_STREAMS_PER_WORKER": live_streams_per_worker(env),
        "LIVE_STREAM_SECONDS": _int(env, "LIVE_STREAM_SECONDS", 300, minimum=5),
        "LIVE_HEARTBEAT_SECONDS": _int(env, "LIVE_HEARTBEAT_SECONDS", 15, minimum=1),
        # Meta's deliveries are at most 3 MB; anything larger is refused with 413 before reading.
        "MAX_CONTENT_LENGTH": 4 * 1024 * 1024,
        # CSRF tokens live as long as the session: agents keep the inbox open all day.
        "WTF_CSRF_TIME_LIMIT": None,
        # Sessions end after this long without a request, and this long after logging in whatever
        # happens (app/auth/sessions.py); Flask also refuses a cookie signed longer ago than that.
        "SESSION_IDLE_SECONDS": _int(env, "SESSION_IDLE_HOURS", 12, minimum=1) * 3600,
        "SESSION_MAX_SECONDS": _int(env, "SESSION_MAX_DAYS", 7, minimum=1) * 86400,
        "PERMANENT_SESSION_LIFETIME": timedelta(days=_int(env, "SESSION_MAX_DAYS", 7, minimum=1)),
        # Proxies in front of the app that append to X-Forwarded-For / set X-Forwarded-Proto:
        # Render's one in production, none otherwise (then those headers are ignored).
        "TRUSTED_PROXY_HOPS": _int(env, "TRUSTED_PROXY_HOPS", 1 if production else 0),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        # Browsers then refuse plain http for a year; in development it would lock them out of
        # http://127.0.0.1, so only production sends it.
        "STRICT_TRANSPORT_SECURITY": "max-age=31536000; includeSubDomains" if production else None,
        "SESSION_COOKIE_SECURE": production,
        "REMEMBER_COOKIE_SECURE": production,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "JSON_SORT_KEYS": False,
    }
