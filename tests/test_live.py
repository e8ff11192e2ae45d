"""Against a real gunicorn and committed data: concurrent duplicates and the database going away."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import create_engine, text

from app import create_app
from app.extensions import db
from app.services import agents as agent_service
from tests import media_samples, meta
from tests.conftest import TEST_CONFIG
from tests.fake_graph import MEDIA_UPLOAD, POST_MESSAGES, delay
from tests.live import Gunicorn, proxied

pytestmark = [pytest.mark.live, pytest.mark.drill]


def _scalar(database_url: str, sql: str) -> int:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql)).scalar_one()
    finally:
        engine.dispose()


@pytest.mark.parametrize("preload", [False, True], ids=["fork-then-load", "preload-as-on-render"])
def test_same_delivery_posted_50_times_concurrently_stores_one_row_per_message(committed_db, preload):
    """Also under Render's --preload: no database connection is shared across the fork."""
    messages = [meta.message(content={"body": f"simultáneo {i}"}) for i in range(3)]
    body = meta.encode(meta.delivery(meta.value(messages=messages)))
    args = ("--preload", "--access-logfile", "-") if preload else ()
    with Gunicorn(committed_db, extra_args=args) as server, ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(lambda _: server.post_webhook(body), range(50)))
    assert [r.status_code for r in responses] == [200] * 50
    assert _scalar(committed_db, "SELECT count(*) FROM messages") == 3
    assert _scalar(committed_db, "SELECT attempts FROM webhook_deliveries") == 50
    assert _scalar(committed_db, "SELECT unread_count FROM conversations") == 3


def test_same_messages_in_different_deliveries_concurrently_are_stored_once(committed_db):
    """Retries need not be byte-identical: each body differs, the wamids repeat."""
    shared = [meta.message(content={"body": f"repetido {i}"}) for i in range(5)]
    bodies = [
        meta.encode(meta.delivery(meta.value(messages=[*shared, meta.message(content={"body": f"único {n}"})])))
        for n in range(40)
    ]
    with Gunicorn(committed_db) as server, ThreadPoolExecutor(max_workers=40) as pool:
        responses = list(pool.map(server.post_webhook, bodies))
    assert [r.status_code for r in responses] == [200] * 40
    assert sum(r.json()["messages_stored"] for r in responses) == 45
    assert _scalar(committed_db, "SELECT count(*) FROM messages") == 45
    assert _scalar(committed_db, "SELECT count(DISTINCT wamid) FROM messages") == 45
    assert _scalar(committed_db, "SELECT unread_count FROM conversations") == 45


def test_database_outage_answers_503_and_redelivery_stores_everything(committed_db):
    before = meta.encode(meta.delivery(meta.value(messages=[meta.message(content={"body": "antes"})])))
    during = meta.encode(meta.delivery(meta.value(messages=[meta.message(content={"body": "durante"})])))
    with proxied(committed_db) as proxy, Gunicorn(proxy.url()) as server:
        session = requests.Session()
        assert server.post_webhook(before, session).status_code == 200

        proxy.cut()
        failed = server.post_webhook(during, session)
        assert failed.status_code == 503
        assert failed.headers["Retry-After"].isdigit()
        assert failed.json()["error"] == "database_unavailable"
        assert "Traceback" not in failed.text
        ready = session.get(server.base_url + "/readyz", timeout=10)
        assert ready.status_code == 503
        assert session.get(server.base_url + "/healthz", timeout=10).status_code == 200

        proxy.restore()
        # Meta redelivers; the service recovers without a restart.
        assert server.post_webhook(during, session).status_code == 200
        assert server.post_webhook(before, session).status_code == 200
        assert session.get(server.base_url + "/readyz", timeout=10).status_code == 200
    assert _scalar(committed_db, "SELECT count(*) FROM messages") == 2
    assert _scalar(committed_db, "SELECT count(*) FROM messages WHERE text = 'durante'") == 1


def test_concurrent_sends_with_one_idempotency_key_go_out_once(committed_db, graph):
    """A double click or a client retry on a bad connection: ten identical requests at once."""
    app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": committed_db})
    with app.app_context():
        agent = agent_service.create_agent("live@example.com", "Live", "correct horse battery")
        token = agent_service.create_token(agent.email)
        db.engine.dispose()
    env = {"WHATSAPP_GRAPH_URL": graph.base_url, "WHATSAPP_ACCESS_TOKEN": TEST_CONFIG["WHATSAPP_ACCESS_TOKEN"]}
    graph.script(POST_MESSAGES, delay(1.0))  # Graph is slow: the other requests arrive meanwhile
    with Gunicorn(committed_db, env=env) as server:
        assert server.post_webhook(meta.encode(meta.delivery(meta.value(messages=[meta.message()])))).ok
        conversation_id = _scalar(committed_db, "SELECT id FROM conversations")
        url = f"{server.base_url}/whatsapp/api/conversaciones/{conversation_id}/mensajes"
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "doble-clic-1"}

        def post(_: int) -> requests.Response:
            return requests.post(url, json={"type": "text", "text": "Una vez"}, headers=headers, timeout=30)

        with ThreadPoolExecutor(max_workers=10) as pool:
            responses = list(pool.map(post, range(10)))
    assert [r.status_code for r in responses] == [201] * 10
    assert len({r.json()["message"]["wamid"] for r in responses}) == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == 9
    assert len(graph.sent(POST_MESSAGES)) == 1
    assert _scalar(committed_db, "SELECT count(*) FROM messages WHERE direction = 'out'") == 1


def test_concurrent_file_sends_with_one_idempotency_key_upload_and_keep_the_file_once(committed_db, graph, tmp_path):
    """The same photo sent ten times at once with one key: one stored file, one upload, one send."""
    app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": committed_db})
    with app.app_context():
        agent = agent_service.create_agent("live-media@example.com", "Live", "correct horse battery")
        token = agent_service.create_token(agent.email)
        db.engine.dispose()
    media_root = tmp_path / "media"
    env = {
        "WHATSAPP_GRAPH_URL": graph.base_url,
        "WHATSAPP_ACCESS_TOKEN": TEST_CONFIG["WHATSAPP_ACCESS_TOKEN"],
        "MEDIA_STORAGE_PATH": str(media_root),
    }
    graph.script(MEDIA_UPLOAD, delay(1.0))  # the upload is slow: the other requests arrive meanwhile
    photo = media_samples.png(16, 16)
    with Gunicorn(committed_db, env=env) as server:
        assert server.post_webhook(meta.encode(meta.delivery(meta.value(messages=[meta.message()])))).ok
        conversation_id = _scalar(committed_db, "SELECT id FROM conversations")
        url = f"{server.base_url}/whatsapp/api/conversaciones/{conversation_id}/mensajes"
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "doble-clic-foto"}

        def post(_: int) -> requests.Response:
            files = {"file": ("foto.png", photo, "image/png")}
            return requests.post(url, files=files, data={"caption": "Una vez"}, headers=headers, timeout=30)

        with ThreadPoolExecutor(max_workers=10) as pool:
            responses = list(pool.map(post, range(10)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] * 10, [r.text for r in responses if r.status_code != 201]
    assert len({r.json()["message"]["id"] for r in responses}) == 1
    assert len(graph.uploads) == 1 and graph.uploads[0].content == photo
    assert len(graph.sent(POST_MESSAGES)) == 1
    assert _scalar(committed_db, "SELECT count(*) FROM messages WHERE direction = 'out'") == 1
    assert [path.read_bytes() for path in media_root.rglob("*") if path.is_file()] == [photo]


def test_pool_exhaustion_answers_503_within_the_pool_timeout_and_recovers(committed_db):
    """Slow requests hold every pooled connection: others get 503 fast, then service resumes."""
    first = meta.encode(meta.delivery(meta.value(messages=[meta.message(content={"body": "primero"})])))
    env = {"DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "1"}
    with Gunicorn(committed_db, workers=1, threads=4, env=env) as server:
        assert server.post_webhook(first).status_code == 200
        engine = create_engine(committed_db)
        with engine.connect() as blocker:
            # Hold the conversation's row lock: the next delivery for it waits inside its transaction,
            # keeping the worker's only pooled connection checked out.
            blocker.execute(text("SELECT id FROM conversations FOR UPDATE"))
            slow_body = meta.encode(meta.delivery(meta.value(messages=[meta.message(content={"body": "lento"})])))
            with ThreadPoolExecutor(max_workers=1) as pool:
                slow = pool.submit(server.post_webhook, slow_body)
                time.sleep(0.5)
                started = time.monotonic()
                starved = requests.get(server.base_url + "/readyz", timeout=30)
                waited = time.monotonic() - started
                assert starved.status_code == 503 and starved.headers["Retry-After"]
                assert waited < 5, f"503 took {waited:.1f} s"
                blocker.rollback()
                assert slow.result(timeout=30).status_code == 200
        engine.dispose()
        assert requests.get(server.base_url + "/readyz", timeout=30).status_code == 200
        again = meta.encode(meta.delivery(meta.value(messages=[meta.message(content={"body": "después"})])))
        assert server.post_webhook(again).status_code == 200
    assert _scalar(committed_db, "SELECT count(*) FROM messages") == 3


@pytest.mark.parametrize("keep", [False, True], ids=["one-line-per-request", "gunicorn-lines-kept"])
def test_one_access_line_per_request_under_renders_access_logfile(committed_db, tmp_path, keep):
    """Render starts gunicorn with --access-logfile -; the app writes its own access line, so
    gunicorn's is switched off (gunicorn.conf.py on_starting) unless GUNICORN_ACCESS_LOG=true."""
    log = tmp_path / "gunicorn.log"
    env = {"APP_ENV": "production", **({"GUNICORN_ACCESS_LOG": "true"} if keep else {})}
    body = meta.encode(meta.delivery(meta.value(messages=[meta.message()])))
    with Gunicorn(committed_db, extra_args=("--preload", "--access-logfile", "-"), env=env, log_path=log) as server:
        for _ in range(3):
            assert server.post_webhook(body).status_code == 200
    lines = log.read_text(errors="replace").splitlines()
    app_lines = [line for line in lines if '"app.access"' in line and "/webhook/whatsapp" in line]
    gunicorn_lines = [line for line in lines if '"logger": "gunicorn.access"' in line and "/webhook/whatsapp" in line]
    assert len(app_lines) == 3
    assert len(gunicorn_lines) == (3 if keep else 0)
