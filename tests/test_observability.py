"""Structured logs: request ids, one access line per request, no personal data in webhook logs."""

from __future__ import annotations

import logging

import pytest

from tests import meta


def _events(caplog) -> list[dict]:  # type: ignore[no-untyped-def]
    return [r.msg for r in caplog.records if isinstance(r.msg, dict)]


def test_sane_inbound_request_id_is_echoed_and_logged(client, caplog):
    caplog.set_level(logging.INFO)
    response = client.get("/healthz", headers={"X-Request-ID": "req-42.a:b"})
    assert response.headers["X-Request-ID"] == "req-42.a:b"
    [access] = [e for e in _events(caplog) if e.get("event") == "request"]
    assert access["request_id"] == "req-42.a:b"
    assert access["route"] == "/healthz" and access["status"] == 200 and access["method"] == "GET"
    assert isinstance(access["duration_ms"], float)


@pytest.mark.parametrize("bad", ["has spaces", "x" * 200, "semi;colon", "ñ"])
def test_insane_request_id_is_replaced(client, bad):
    response = client.get("/healthz", headers={"X-Request-ID": bad})
    assert response.headers["X-Request-ID"] != bad and len(response.headers["X-Request-ID"]) == 32


def test_access_line_carries_the_agent(client, auth, agent, caplog):
    caplog.set_level(logging.INFO)
    client.get("/whatsapp/api/conversaciones", headers=auth)
    [access] = [e for e in _events(caplog) if e.get("event") == "request"]
    assert access["agent_id"] == agent.id and access["status"] == 200


def test_webhook_log_counts_outcomes_without_message_bodies_or_secrets(post_webhook, caplog):
    caplog.set_level(logging.DEBUG)
    secret_text = "mi número de tarjeta es 4111"
    post_webhook(meta.delivery(meta.value(messages=[meta.message(content={"body": secret_text})])))
    # On the access line: one line per delivery.
    [delivery] = [e for e in _events(caplog) if e.get("event") == "request" and e.get("route") == "/webhook/whatsapp"]
    assert delivery["outcome"] == "stored" and delivery["messages_stored"] == 1
    everything = " ".join(str(r.msg) + str(r.args) for r in caplog.records)
    assert secret_text not in everything and meta.APP_SECRET not in everything
    assert delivery["request_id"]


def test_gunicorns_own_lines_still_format_after_the_apps_logging_is_configured(app):
    """gunicorn's error log prints each line's process id; the app's logging set-up must not
    switch that field off (its lines would fail with "--- Logging error ---")."""
    from gunicorn.glogging import CONFIG_DEFAULTS

    record = logging.getLogger("gunicorn.error").makeRecord(
        "gunicorn.error", logging.INFO, __file__, 1, "Starting", (), None
    )
    fmt = CONFIG_DEFAULTS["formatters"]["generic"]["format"]
    assert "%(process)d" in fmt
    assert f"[{record.process}]" in logging.Formatter(fmt).format(record)
