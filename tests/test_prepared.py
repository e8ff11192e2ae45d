"""The webhook's hot statements run as server-side prepared statements (app/prepared.py), and a
connection that lost them, or holds one PostgreSQL can no longer run, still stores the delivery."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text

from app.extensions import db
from app.models import Message, WebhookDelivery
from app.prepared import PREPARED, plan_for
from tests import meta


@pytest.fixture(autouse=True)
def _as_found_afterwards(db_session):
    """These tests leave their connection's prepared statements stale or forgotten on purpose;
    the pooled connection goes to the next test with none, and the process knowing it."""
    yield
    db.session.rollback()
    connection = db.session.connection()
    connection.exec_driver_sql("DEALLOCATE ALL")
    connection.connection.info.pop("prepared_statements", None)
    connection.connection.info.pop("stale_prepared_statements", None)


def _prepared() -> dict[str, int]:
    """The connection's prepared statements: name → executions (custom and generic plans)."""
    rows = db.session.execute(
        text("SELECT name, generic_plans + custom_plans FROM pg_prepared_statements WHERE name LIKE 'hot_%'")
    )
    return {name: runs for name, runs in rows}


def _messages(wamid: str) -> int:
    return db.session.execute(select(func.count()).select_from(Message).where(Message.wamid == wamid)).scalar_one()


def test_a_delivery_prepares_its_statements_once_and_executes_them_after(post_webhook, db_session):
    first = meta.message(content={"body": "Hola"})
    assert post_webhook(meta.delivery(meta.value(messages=[first]))).status_code == 200
    held = _prepared()
    second = meta.message(content={"body": "¿Siguen abiertos?"})
    assert post_webhook(meta.delivery(meta.value(messages=[second]))).status_code == 200
    again = _prepared()
    assert again.keys() == held.keys()  # nothing prepared twice (earlier tests' kinds of message may be held too)
    ran = [name for name in held if again[name] == held[name] + 1]
    assert len(ran) == 2 and all(again[name] == held[name] for name in held if name not in ran)
    statements = db.session.execute(
        text("SELECT statement FROM pg_prepared_statements WHERE name = ANY(:names)"), {"names": ran}
    ).scalars()
    prepared = " ".join(statements)
    assert "INSERT INTO webhook_deliveries" in prepared and "INSERT INTO messages" in prepared
    assert _messages(first["id"]) == 1 and _messages(second["id"]) == 1


def _retries(caplog, sqlstate: str) -> int:
    return sum(1 for r in caplog.records if "webhook delivery retried" in r.getMessage() and sqlstate in r.getMessage())


def test_a_connection_that_lost_its_prepared_statements_still_stores_the_delivery(post_webhook, db_session, caplog):
    assert post_webhook(meta.delivery(meta.value(messages=[meta.message()]))).status_code == 200
    db.session.execute(text("DEALLOCATE ALL"))  # as a server-side reset would
    db.session.commit()
    message = meta.message(content={"body": "después del reinicio"})
    response = post_webhook(meta.delivery(meta.value(messages=[message])))
    assert response.status_code == 200
    assert response.json["messages_stored"] == 1
    assert _messages(message["id"]) == 1
    assert _prepared()  # prepared again
    assert _retries(caplog, "26000") == 1  # all of them forgotten at the first refusal


def test_a_plan_a_migration_invalidated_is_prepared_again_and_the_delivery_stored(post_webhook, db_session, caplog):
    assert post_webhook(meta.delivery(meta.value(messages=[meta.message()]))).status_code == 200
    # A migration while the app runs changes the type of a column the first statement returns:
    # PostgreSQL refuses the old plan ("cached plan must not change result type").
    db.session.execute(text("ALTER TABLE webhook_deliveries ALTER COLUMN attempts TYPE bigint"))
    db.session.commit()
    message = meta.message(content={"body": "después de la migración"})
    payload = meta.delivery(meta.value(messages=[message]))
    response = post_webhook(payload)
    assert response.status_code == 200
    assert response.json["outcome"] == "stored" and response.json["messages_stored"] == 1
    assert _messages(message["id"]) == 1
    assert db.session.execute(select(func.count()).select_from(WebhookDelivery)).scalar_one() == 2
    assert _retries(caplog, "0A000") == 1
    # And a redelivery of the same body is still recognised as one.
    assert post_webhook(payload).json["outcome"] == "duplicate"


def test_a_prepare_declares_every_parameter_once_and_executes_them_in_order():
    from sqlalchemy import bindparam
    from sqlalchemy.dialects import postgresql

    statement = select(bindparam("a", type_=db.Integer) + bindparam("b", type_=db.Integer) + bindparam("a"))
    compiled = statement.compile(dialect=postgresql.psycopg2.dialect())
    plan = plan_for(compiled.string, compiled)
    assert plan.prepare.startswith(f"PREPARE {plan.name} (INTEGER, INTEGER) AS SELECT $1 + $2 + $1")
    assert plan.execute == f"EXECUTE {plan.name} (%(a)s, %(b)s)"
    assert PREPARED == {"server_prepared": True}


def test_a_statement_the_connection_holds_unbeknown_to_the_process_is_taken_as_held(post_webhook, db_session, caplog):
    assert post_webhook(meta.delivery(meta.value(messages=[meta.message()]))).status_code == 200
    held = _prepared()
    db.session.connection().connection.info["prepared_statements"] = set()  # as if another process prepared them
    db.session.commit()
    message = meta.message(content={"body": "otra vez"})
    response = post_webhook(meta.delivery(meta.value(messages=[message])))
    assert response.status_code == 200 and _messages(message["id"]) == 1
    assert _retries(caplog, "42P05") >= 1
    again = _prepared()
    assert again.keys() == held.keys()  # the same statements, executed again
    assert len([name for name in held if again[name] > held[name]]) == 2  # (one ran in a retried attempt too)


def test_a_connection_that_already_holds_them_is_asked_once_not_prepared_again(post_webhook, db_session, caplog):
    assert post_webhook(meta.delivery(meta.value(messages=[meta.message()]))).status_code == 200
    held = _prepared()
    db.session.connection().connection.info.pop("prepared_statements")  # a process that never knew
    db.session.commit()
    message = meta.message(content={"body": "de nuevo"})
    assert post_webhook(meta.delivery(meta.value(messages=[message]))).status_code == 200
    assert _retries(caplog, "42P05") == 0  # read from pg_prepared_statements, not tried again
    assert _prepared().keys() == held.keys()


def test_prepared_statements_can_be_switched_off(database_url):
    from app import create_app

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "DB_PREPARED_STATEMENTS": False, "TESTING": True})
    with app.app_context():
        from sqlalchemy import event

        from app.prepared import _before_cursor_execute

        assert not event.contains(db.engine, "before_cursor_execute", _before_cursor_execute)
        db.engine.dispose()


def test_the_list_runs_prepared_and_a_lost_statement_is_a_503_then_prepared_again(client, auth, db_session):
    url = "/whatsapp/api/conversaciones?page=1&per_page="  # another page size each time: not the list's cache
    assert client.get(url + "50", headers=auth).status_code == 200
    held = _prepared()
    statements = " ".join(
        db.session.execute(text("SELECT statement FROM pg_prepared_statements WHERE name = ANY(:n)"), {"n": list(held)})
        .scalars()
        .all()
    )
    assert "FROM conversations" in statements
    db.session.execute(text("DEALLOCATE ALL"))
    db.session.commit()
    refused = client.get(url + "49", headers=auth)
    assert refused.status_code == 503 and refused.headers["Retry-After"]
    assert refused.json["error"] == "database_unavailable"
    assert client.get(url + "48", headers=auth).status_code == 200  # prepared again
    assert _prepared()
