"""`flask --app wsgi …` commands."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from app.extensions import db
from app.models import Agent, Conversation, Message, WebhookDelivery
from tests import meta


def test_agents_create_token_list_and_deactivate(runner, client):
    result = runner.invoke(
        args=["agents", "create", "Lucia@Example.com", "--name", "Lucía", "--admin", "--password-stdin"],
        input="una clave muy larga\n",
    )
    assert result.exit_code == 0, result.output
    agent = db.session.execute(select(Agent)).scalar_one()
    assert (agent.email, agent.name, agent.role, agent.active) == ("Lucia@Example.com", "Lucía", "admin", True)
    assert agent.check_password("una clave muy larga") and "una clave" not in agent.password_hash

    duplicate = runner.invoke(
        args=["agents", "create", "lucia@example.com", "--name", "Otra", "--password-stdin"],
        input="otra clave muy larga\n",
    )
    assert duplicate.exit_code != 0 and "already exists" in duplicate.output

    token = runner.invoke(args=["agents", "token", "lucia@example.com"]).output.strip()
    assert token.startswith("wai_")
    assert client.get("/whatsapp/api/conversaciones", headers={"Authorization": f"Bearer {token}"}).status_code == 200

    listing = runner.invoke(args=["agents", "list"]).output
    assert "Lucia@Example.com" in listing and "admin" in listing and "active" in listing

    assert runner.invoke(args=["agents", "deactivate", "lucia@example.com"]).exit_code == 0
    assert client.get("/whatsapp/api/conversaciones", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert "inactive" in runner.invoke(args=["agents", "list"]).output


def test_agents_create_refuses_short_passwords_and_bad_emails(runner):
    short = runner.invoke(
        args=["agents", "create", "a@example.com", "--name", "A", "--password-stdin"], input="corta\n"
    )
    assert short.exit_code != 0 and "at least 10" in short.output
    bad = runner.invoke(args=["agents", "create", "no-email", "--name", "A", "--password-stdin"], input="x" * 12 + "\n")
    assert bad.exit_code != 0 and "not an email" in bad.output
    assert db.session.execute(select(func.count()).select_from(Agent)).scalar_one() == 0


def test_token_for_unknown_agent_fails_clearly(runner):
    result = runner.invoke(args=["agents", "token", "nobody@example.com"])
    assert result.exit_code != 0 and "No active agent" in result.output


def test_demo_seed_fills_conversations_with_exact_summaries(runner, agent):
    result = runner.invoke(args=["demo", "seed", "--conversations", "40", "--messages-per-conversation", "6"])
    assert result.exit_code == 0, result.output
    assert db.session.execute(select(func.count()).select_from(Conversation)).scalar_one() == 40
    assert db.session.execute(select(func.count()).select_from(Message)).scalar_one() == 240
    # The denormalised summary agrees with the messages themselves.
    mismatches = db.session.execute(
        select(func.count())
        .select_from(Conversation)
        .where(
            Conversation.unread_count
            != select(func.count())
            .where(Message.conversation_id == Conversation.id, Message.direction == "in", Message.is_read.is_(False))
            .scalar_subquery()
        )
    ).scalar_one()
    assert mismatches == 0
    assert (
        db.session.execute(
            select(func.count()).select_from(Conversation).where(Conversation.last_message_id.is_(None))
        ).scalar_one()
        == 0
    )
    # The customers write Spanish (any one message may not carry an accent; the seed as a whole does).
    inbound = db.session.execute(select(Message.text).where(Message.direction == "in")).scalars().all()
    assert sum(any(ch in text for ch in "¿áéíóúñ") for text in inbound) >= len(inbound) // 4
    # seeding again adds instead of colliding
    assert (
        runner.invoke(args=["demo", "seed", "--conversations", "5", "--messages-per-conversation", "2"]).exit_code == 0
    )
    assert db.session.execute(select(func.count()).select_from(Conversation)).scalar_one() == 45


def test_maintenance_prune_removes_old_raw_deliveries_but_keeps_messages(runner, post_webhook):
    post_webhook(meta.delivery(meta.value(messages=[meta.message()])))
    post_webhook(meta.delivery(meta.value(messages=[meta.message()])))
    oldest = db.session.execute(select(func.min(WebhookDelivery.id))).scalar_one()
    db.session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == oldest)
        .values(last_received_at=datetime.now(UTC) - timedelta(days=31))
    )
    db.session.commit()
    result = runner.invoke(args=["maintenance", "prune"])
    assert result.exit_code == 0 and "Removed 1 raw deliveries older than 30 days" in result.output
    assert db.session.execute(select(func.count()).select_from(WebhookDelivery)).scalar_one() == 1
    assert db.session.execute(select(func.count()).select_from(Message)).scalar_one() == 2


def test_bootstrap_says_how_to_load_demo_conversations_while_the_inbox_is_empty(runner):
    first = runner.invoke(args=["bootstrap"])
    assert first.exit_code == 0, first.output
    assert "First admin created" in first.output and "make demo" in first.output
    assert "make demo" not in runner.invoke(args=["bootstrap", "--no-demo-hint"]).output

    seeded = runner.invoke(args=["demo", "seed", "--conversations", "3", "--messages-per-conversation", "2"])
    assert seeded.exit_code == 0, seeded.output
    again = runner.invoke(args=["bootstrap"])
    assert again.exit_code == 0 and "Log in at" in again.output and "make demo" not in again.output
