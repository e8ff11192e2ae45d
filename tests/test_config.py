"""Configuration from the environment."""

from __future__ import annotations

import pytest

from config import (
    ConfigError,
    connection_budget,
    engine_options,
    load_config,
    normalise_database_url,
    pool_ping_idle_seconds,
)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@db.internal:5432/inbox", "postgresql+psycopg2://u:p@db.internal:5432/inbox"),
        ("postgresql://u@h/inbox", "postgresql+psycopg2://u@h/inbox"),
        ("postgresql+psycopg2://u@h/inbox", "postgresql+psycopg2://u@h/inbox"),
    ],
)
def test_database_url_is_normalised_to_psycopg2(given, expected):
    assert normalise_database_url(given) == expected
    assert load_config({"DATABASE_URL": given})["SQLALCHEMY_DATABASE_URI"] == expected


def test_production_without_secret_key_refuses_to_start():
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_config({"APP_ENV": "production", "DATABASE_URL": "postgres://h/db"})
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_config({"FLASK_ENV": "production", "DATABASE_URL": "postgres://h/db"})


def test_production_without_database_url_refuses_to_start():
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        load_config({"APP_ENV": "production", "SECRET_KEY": "x" * 64})


def test_production_cookies_are_secure():
    config = load_config({"APP_ENV": "production", "SECRET_KEY": "x" * 64, "DATABASE_URL": "postgres://h/db"})
    assert config["SESSION_COOKIE_SECURE"] is True
    assert config["SESSION_COOKIE_HTTPONLY"] is True and config["SESSION_COOKIE_SAMESITE"] == "Lax"


def test_development_without_database_url_uses_the_embedded_server():
    assert load_config({})["SQLALCHEMY_DATABASE_URI"] is None


def test_pool_defaults_follow_the_thread_count_and_fit_rendes_connection_budget():
    options = engine_options({"GUNICORN_THREADS": "4"})
    assert options["pool_size"] == 4 and options["max_overflow"] == 2
    # 2 instances during a deploy overlap × 2 workers × (4 + 2) = 24, far under ~90 usable
    assert 2 * 2 * (options["pool_size"] + options["max_overflow"]) <= 90
    # Tested before use, but not within a second of its last use (app/pool_ping.py).
    assert options["pool_pre_ping"] is False and pool_ping_idle_seconds({}) == 1.0
    assert options["connect_args"]["connect_timeout"] == 5
    assert "statement_timeout=15000" in options["connect_args"]["options"]
    assert "sslmode" not in options["connect_args"]


def test_pool_settings_come_from_the_environment():
    options = engine_options(
        {
            "DB_POOL_SIZE": "3",
            "DB_MAX_OVERFLOW": "0",
            "DB_POOL_TIMEOUT": "2",
            "DB_POOL_RECYCLE": "120",
            "DB_POOL_PRE_PING": "false",
            "DB_CONNECT_TIMEOUT": "3",
            "DB_STATEMENT_TIMEOUT_MS": "5000",
            "DB_SSLMODE": "require",
        }
    )
    assert (options["pool_size"], options["max_overflow"], options["pool_timeout"], options["pool_recycle"]) == (
        3,
        0,
        2,
        120,
    )
    assert options["pool_pre_ping"] is False
    assert options["connect_args"]["sslmode"] == "require"
    assert options["connect_args"]["connect_timeout"] == 3
    assert "statement_timeout=5000" in options["connect_args"]["options"]


@pytest.mark.parametrize("env", [{"DB_POOL_SIZE": "many"}, {"DB_POOL_SIZE": "0"}, {"DB_POOL_PRE_PING": "perhaps"}])
def test_malformed_settings_fail_with_a_clear_message(env):
    with pytest.raises(ConfigError, match=next(iter(env))):
        engine_options(env)


def test_graph_url_defaults_to_v25_and_can_point_at_a_local_server():
    assert load_config({})["WHATSAPP_GRAPH_URL"] == "https://graph.facebook.com/v25.0"
    assert load_config({"WHATSAPP_GRAPH_URL": "http://127.0.0.1:9999/v25.0/"})["WHATSAPP_GRAPH_URL"] == (
        "http://127.0.0.1:9999/v25.0"
    )


def test_connection_budget_counts_instances_workers_pool_and_a_deploy_overlap():
    total, limit, explain = connection_budget({"WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "4"})
    # 2 × (2 × (4 + 2 + the inbox version's LISTEN) + the jobs worker's 3 pool + 1 LISTEN + 2 jobs + 1 sweep)
    assert (total, limit) == (42, 90) and "+ 1 listen) + 7 jobs worker) = 42 connections" in explain
    without_jobs, _, _ = connection_budget({"WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "4", "JOBS_IN_WEB": "false"})
    assert without_jobs == 28
    unlistened, _, _ = connection_budget({"WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "4", "INBOX_VERSION_LISTEN": "0"})
    assert unlistened == 38
    # the analysis' pool (10 + 20) with four workers: far over Render's budget
    over, _, _ = connection_budget({"WEB_CONCURRENCY": "4", "DB_POOL_SIZE": "10", "DB_MAX_OVERFLOW": "20"})
    assert over == 262 > limit


def test_one_process_serves_unless_gunicorn_says_how_many_workers_do():
    assert load_config({})["WEB_CONCURRENCY"] == 1  # flask run, CLI commands
    assert load_config({"WEB_CONCURRENCY": "3"})["WEB_CONCURRENCY"] == 3  # set by gunicorn.conf.py
