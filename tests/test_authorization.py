"""Authorisation sweep over every route the app registers (`app.url_map`), with every method.

Without credentials only the routes of PUBLIC answer anything but 401, 302 (to the login page)
or 403. The list of routes is never written down here: a route added without a guard fails
this test until it is guarded or added to PUBLIC with its reason. Path parameters are filled
with ids of rows that exist, so a route that looks its row up before checking who is asking
is caught too (a 404 for a missing id would hide it).

Then credentials that must not work: another agent's expired, revoked or deactivated token,
a deactivated agent's session cookie; an agent's (valid) token on the HTML pages; a non-admin
agent on the admin pages. Each request runs in its own app context (`fresh_app_context`),
as under gunicorn: otherwise Flask-Login's user cached in `g` by one request leaks into the
next and a revoked session would seem to work.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask, jsonify
from sqlalchemy import func, select, update
from werkzeug.routing import Rule

from app import create_app
from app.extensions import db
from app.inbox.assets import digest
from app.models import Agent, ApiToken, CannedResponse, Conversation, Label, Mention, Message
from app.models.agents import hash_token
from app.services import agents as agent_service
from tests import meta
from tests.conftest import TEST_CONFIG
from tests.fake_graph import POST_MESSAGES, error
from tests.test_pages import csrf_token

# Endpoints that answer without an agent's credentials, and why that is safe.
PUBLIC = {
    "auth.login": "the login form",
    "static": "static files (CSS, JS, images)",
    "assets.asset": "the same static files under content-hashed URLs",
    "health.healthz": "liveness probe, no data",
    "health.readyz": "readiness probe, no data",
    "api.openapi": "the OpenAPI document: routes, never data",
    "health.metrics": "Prometheus metrics, behind their own METRICS_TOKEN (404 while it is unset)",
    "webhook.verify": "Meta's handshake: 403 without the verify token",
    "webhook.receive": "Meta's deliveries: 401 unsigned, 403 wrongly signed",
    "inbox.preferences": "page language and time zone: the visitor's session, and the agent's row once logged in",
}
# The role matrix (README, Security): who may do each write. Every agent, admin or not, reads
# everything an agent reads (conversations, messages, media, templates, canned responses). A
# write route added without a row here fails `test_every_write_has_a_row_in_the_role_matrix`.
EVERY_AGENT = "every agent"
AUTHOR_OR_ADMIN = "its author or an admin"
ADMIN = "admins only"
WRITES = {
    "api.mark_read": EVERY_AGENT,
    "api.update_conversation": EVERY_AGENT,  # status, snooze, assignee (any active agent), mark unread, labels
    "api.bulk_update": EVERY_AGENT,  # the same actions (snooze included), on several conversations at once
    "api.create_label": ADMIN,
    "api.update_label": ADMIN,
    "api.delete_label": ADMIN,
    "api.send_message": EVERY_AGENT,
    "api.retry_message": EVERY_AGENT,
    "api.set_reaction": EVERY_AGENT,  # the business's reaction to a customer's message
    "api.remove_reaction": EVERY_AGENT,
    "api.add_note": EVERY_AGENT,
    "api.start_conversation": EVERY_AGENT,  # a template to a typed number
    "api.update_contact": EVERY_AGENT,  # the team's name, notes and attributes of a contact
    "api.create_canned_response": EVERY_AGENT,
    "api.delete_canned_response": AUTHOR_OR_ADMIN,
    "api.update_business_hours": ADMIN,
    "api.update_me": EVERY_AGENT,  # their own preferences only
    "api.mark_mention_read": EVERY_AGENT,  # their own mentions only (another's is a 404)
    "api.mark_all_mentions_read": EVERY_AGENT,  # their own mentions only
    "auth.logout": EVERY_AGENT,
    "auth.logout_everywhere": EVERY_AGENT,  # ends only their own sessions
    "admin.create_agent": ADMIN,
    "admin.change_role": ADMIN,
    "admin.deactivate": ADMIN,
    "admin.activate": ADMIN,
    "admin.reset_password": ADMIN,
    "admin.sync_templates": ADMIN,
    "admin.create_label": ADMIN,
    "admin.update_label": ADMIN,
    "admin.delete_label": ADMIN,
    "admin.save_hours": ADMIN,
}
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
DENIED = {302, 401, 403}
SECRET = "Mensaje privado 7f3c"  # in the seeded conversation: must never show in a refusal
PASSWORD = "correct horse battery"
OTHER_PASSWORD = "correct horse battery 2"


@dataclass
class Seeded:
    values: dict[str, Any]  # a value that exists for every path parameter name


@pytest.fixture
def seeded(app, fresh_app_context, client, agent, other_agent, graph, post_webhook) -> Seeded:  # type: ignore[no-untyped-def]
    """A conversation (with SECRET), a failed outbound message, a canned response."""
    message = meta.message(content={"body": SECRET})
    assert post_webhook(meta.delivery(meta.value(messages=[message]))).status_code == 200
    row = db.session.execute(select(Message.id, Message.conversation_id)).one()
    contact_id = db.session.execute(select(Conversation.contact_id)).scalar_one()
    token = agent_service.create_token(agent.email)
    auth = {"Authorization": f"Bearer {token}"}
    graph.script(POST_MESSAGES, error(131026))
    failed = client.post(
        f"/whatsapp/api/conversaciones/{row.conversation_id}/mensajes", json={"type": "text", "text": "x"}, headers=auth
    )
    assert failed.status_code == 502, failed.get_json()
    canned = client.post("/whatsapp/api/respuestas", json={"short_code": "hola", "text": "Hola"}, headers=auth)
    assert canned.status_code == 201
    label = client.post("/whatsapp/api/etiquetas", json={"name": "Factura", "color": "#1f883d"}, headers=auth)
    assert label.status_code == 201, label.get_json()
    note = client.post(
        f"/whatsapp/api/conversaciones/{row.conversation_id}/notas", json={"text": "@Beto mira esto"}, headers=auth
    )
    assert note.status_code == 201, note.get_json()
    mention_id = db.session.execute(select(Mention.id)).scalar_one()
    with app.test_request_context():
        version = digest("css/app.css")
    return Seeded(
        values={
            "conversation_id": row.conversation_id,
            "contact_id": contact_id,
            "message_id": failed.get_json()["message_id"],
            "canned_id": canned.get_json()["id"],
            "label_id": label.get_json()["id"],
            "mention_id": mention_id,
            "agent_id": other_agent.id,
            "filename": "css/app.css",
            "version": version,
        }
    )


def _rules(app: Flask) -> list[Rule]:
    return sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint))


def _url(rule: Rule, values: dict[str, Any]) -> str:
    missing = sorted(set(rule.arguments) - set(values))
    if missing:
        pytest.fail(f"{rule.rule}: no existing value for {missing}; add one to `seeded` in {__name__}")
    _, path = rule.build({name: values[name] for name in rule.arguments}, append_unknown=False)  # type: ignore[misc]
    return path


@dataclass
class Browser:
    """A session cookie and the CSRF token of its pages, replayed as they are on every request."""

    cookie: str | None = None
    csrf: str | None = None


def _visitor(app: Flask) -> Browser:
    """An anonymous visitor, with the CSRF token anyone gets from the login page."""
    client = app.test_client()
    token = csrf_token(client.get("/login").text)
    return Browser(client.get_cookie("session").value, token)  # type: ignore[union-attr]


def _log_in(app: Flask, email: str, password: str) -> Browser:
    client = app.test_client()
    page = client.get("/login")
    response = client.post("/login", data={"email": email, "password": password, "csrf_token": csrf_token(page.text)})
    assert response.status_code == 302, response.status_code
    token = csrf_token(client.get("/").text)
    return Browser(client.get_cookie("session").value, token)  # type: ignore[union-attr]


def sweep(
    app: Flask,
    values: dict[str, Any],
    browser: Browser | None = None,
    *,
    headers: dict[str, str] | None = None,
    allowed: set[int] = DENIED,
    only: Any = None,
) -> list[str]:
    """Request every route (but PUBLIC's) with every method; the answers not in `allowed`.

    Every request carries the same credentials (`browser`'s cookie and CSRF token, `headers`):
    a logout or a refreshed cookie along the way does not change what the next one sends.

    Flask answers OPTIONS itself for every rule (the view is not called): that answer must
    carry nothing but the `Allow` header. 302s must lead to the login page, and no refusal
    may contain the seeded conversation's text.
    """
    problems: list[str] = []
    client = app.test_client(use_cookies=False)
    browser = browser or Browser()
    for rule in _rules(app):
        if rule.endpoint in PUBLIC or (only is not None and not only(rule)):
            continue
        url = _url(rule, values)
        for method in sorted(rule.methods or ()):
            kwargs: dict[str, Any] = {"headers": {**(headers or {})}}
            if browser.cookie:
                kwargs["headers"]["Cookie"] = f"session={browser.cookie}"
            if browser.csrf and method not in ("GET", "HEAD", "OPTIONS"):
                kwargs["data"] = {"csrf_token": browser.csrf}
                kwargs["headers"]["X-CSRFToken"] = browser.csrf
            response = client.open(url, method=method, **kwargs)
            label = f"{method} {url} ({rule.endpoint})"
            if method == "OPTIONS" and getattr(rule, "provide_automatic_options", False):
                if response.status_code != 200 or response.get_data() or "Allow" not in response.headers:
                    problems.append(f"{label}: automatic OPTIONS answered {response.status_code} with a body")
                continue
            if response.status_code not in allowed:
                problems.append(f"{label}: {response.status_code}")
            elif response.status_code == 302 and not response.headers["Location"].startswith("/login"):
                problems.append(f"{label}: 302 to {response.headers['Location']}, not to the login page")
            if response.status_code in DENIED | {400} and SECRET in response.get_data(as_text=True):
                problems.append(f"{label}: the answer shows the conversation's text")
    return problems


# --- without credentials ----------------------------------------------------------------------


def test_every_public_endpoint_exists(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert set(PUBLIC) <= endpoints, f"stale entries in PUBLIC: {sorted(set(PUBLIC) - endpoints)}"


def test_without_credentials_every_route_but_the_public_ones_refuses(app, seeded):
    """An anonymous visitor with a valid CSRF token (any visitor gets one from /login), so
    the forms' CSRF check is passed and what answers is the authentication itself."""
    assert sweep(app, seeded.values, _visitor(app)) == []


def test_without_credentials_nor_csrf_token_nothing_is_served(app, seeded):
    """A bare request: CSRF-protected forms may stop it first (400), nothing else."""
    assert sweep(app, seeded.values, allowed=DENIED | {400}) == []


def test_a_route_added_without_a_guard_fails_the_sweep(database_url, graph_server, app, seeded):
    leaky = create_app(
        {**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": database_url, "WHATSAPP_GRAPH_URL": graph_server.base_url}
    )

    @leaky.get("/whatsapp/api/conversaciones/<int:conversation_id>/exportar")
    def export(conversation_id: int):  # type: ignore[no-untyped-def]
        return jsonify(text=SECRET)

    problems = sweep(leaky, seeded.values, _visitor(leaky))
    url = f"/whatsapp/api/conversaciones/{seeded.values['conversation_id']}/exportar"
    assert f"GET {url} (export): 200" in problems
    assert f"HEAD {url} (export): 200" in problems


def test_public_endpoints_refuse_what_they_must(app, client, agent, fresh_app_context):
    body = meta.encode(meta.delivery(meta.value(messages=[meta.message()])))
    assert client.post("/webhook/whatsapp", data=body).status_code == 401
    assert client.post("/webhook/whatsapp", data=body, headers=meta.signed_headers(body, "wrong")).status_code == 403
    handshake = {"hub.mode": "subscribe", "hub.challenge": "123"}
    assert client.get("/webhook/whatsapp", query_string={**handshake, "hub.verify_token": "wrong"}).status_code == 403
    assert client.get("/webhook/whatsapp", query_string={**handshake, "hub.verify_token": meta.VERIFY_TOKEN}).text == (
        "123"
    )
    assert client.get("/metrics").status_code == 404  # METRICS_TOKEN unset: not served at all
    app.config["METRICS_TOKEN"] = "metrics-token-for-the-sweep"
    try:
        agent_token = agent_service.create_token(agent.email)
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": f"Bearer {agent_token}"}).status_code == 401
        assert (
            client.get("/metrics", headers={"Authorization": "Bearer metrics-token-for-the-sweep"}).status_code == 200
        )
    finally:
        app.config["METRICS_TOKEN"] = None
    for path in ("/login", "/healthz", "/readyz", "/whatsapp/api/openapi.json", "/static/css/app.css"):
        assert client.get(path).status_code == 200, path


# --- credentials that must not work -------------------------------------------------------------


def _is_api(rule: Rule) -> bool:
    return rule.endpoint.startswith("api.")


def _counts() -> tuple[int, int, int]:
    return (
        db.session.execute(select(func.count()).select_from(Message)).scalar_one(),
        db.session.execute(select(func.count()).select_from(CannedResponse)).scalar_one(),
        db.session.execute(select(func.count()).select_from(Agent).where(Agent.active.is_(True))).scalar_one(),
    )


@pytest.fixture
def other_token(other_agent, seeded) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """Beto's token; the test then expires or revokes it, or deactivates Beto."""
    yield agent_service.create_token(other_agent.email)


def _works(app: Flask, token: str) -> bool:
    response = app.test_client().get("/whatsapp/api/conversaciones", headers={"Authorization": f"Bearer {token}"})
    return response.status_code == 200


def test_a_valid_token_passes_every_api_route(app, agent, seeded, other_token):
    """The sweeps below would prove nothing if the API refused everyone anyway. Beto is not an
    admin: the canned response he deletes is his own (another's is a 403, see the role tests),
    and the admins' API routes (labels) are swept with an admin's token."""
    headers = {"Authorization": f"Bearer {other_token}"}
    own = _create_canned(app, headers, "beto_propia")
    served = set(range(200, 500)) - DENIED
    values = {**seeded.values, "canned_id": own}
    for_agents = lambda rule: _is_api(rule) and WRITES.get(rule.endpoint) != ADMIN  # noqa: E731
    assert sweep(app, values, headers=headers, only=for_agents, allowed=served) == []
    admin = {"Authorization": f"Bearer {agent_service.create_token(agent.email)}"}
    for_admins = lambda rule: _is_api(rule) and WRITES.get(rule.endpoint) == ADMIN  # noqa: E731
    assert sweep(app, values, headers=admin, only=for_admins, allowed=served) == []


@pytest.mark.parametrize("how", ["expired", "revoked", "agent deactivated", "agent set inactive, token kept"])
def test_another_agents_dead_token_cannot_act_on_any_api_route(app, agent, other_agent, seeded, other_token, how):
    assert _works(app, other_token)
    if how == "expired":
        db.session.execute(
            update(ApiToken)
            .where(ApiToken.token_hash == hash_token(other_token))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    elif how == "revoked":
        db.session.execute(
            update(ApiToken).where(ApiToken.token_hash == hash_token(other_token)).values(revoked_at=datetime.now(UTC))
        )
    elif how == "agent deactivated":
        agent_service.deactivate_agent(other_agent.email)  # also revokes the agent's tokens
    else:
        db.session.execute(update(Agent).where(Agent.id == other_agent.id).values(active=False))
    db.session.commit()
    before = _counts()
    headers = {"Authorization": f"Bearer {other_token}"}
    assert sweep(app, seeded.values, headers=headers, only=_is_api, allowed={401}) == []
    assert _counts() == before, "a refused request changed something"
    # Ana's own credentials are untouched by all this.
    assert _works(app, agent_service.create_token(agent.email))


def test_a_deactivated_agents_session_cookie_stops_working(app, other_agent, seeded):
    browser = _log_in(app, other_agent.email, OTHER_PASSWORD)
    # While Beto is active his cookie opens the pages and the API (so the sweep below means something).
    served = sweep(app, seeded.values, browser, only=lambda rule: rule.endpoint in ("inbox.index", "api.conversations"))
    assert sorted(served) == [
        "GET / (inbox.index): 200",
        "GET /whatsapp/api/conversaciones (api.conversations): 200",
        "HEAD / (inbox.index): 200",
        "HEAD /whatsapp/api/conversaciones (api.conversations): 200",
    ]
    agent_service.deactivate_agent(other_agent.email)
    before = _counts()
    # The same cookie, replayed: every route but the public ones refuses it now.
    assert sweep(app, seeded.values, browser) == []
    assert _counts() == before


def test_api_tokens_do_not_open_the_pages(app, agent, seeded):
    """A token is for the API: with one, and no session, the HTML pages still refuse."""
    headers = {"Authorization": f"Bearer {agent_service.create_token(agent.email)}"}  # Ana is an admin
    assert sweep(app, seeded.values, _visitor(app), headers=headers, only=lambda rule: not _is_api(rule)) == []


def test_a_non_admin_agent_cannot_use_the_admin_pages(app, other_agent, seeded):
    assert other_agent.role != "admin"
    browser = _log_in(app, other_agent.email, OTHER_PASSWORD)
    before = _counts()
    admin_only = lambda rule: rule.endpoint.startswith("admin.")  # noqa: E731
    assert sweep(app, seeded.values, browser, allowed={403}, only=admin_only) == []
    assert _counts() == before


def test_the_admin_sweep_covers_the_admin_routes(app):
    admin_rules = [rule.rule for rule in _rules(app) if rule.endpoint.startswith("admin.")]
    assert admin_rules, "no admin routes: the admin sweep would prove nothing"
    assert all(re.match(r"^/admin(/|$)", rule) for rule in admin_rules)


# --- roles: who may do what (the matrix is WRITES) ------------------------------------------------


def _create_canned(app: Flask, headers: dict[str, str], short_code: str) -> int:
    response = app.test_client().post(
        "/whatsapp/api/respuestas", json={"short_code": short_code, "text": "Hola"}, headers=headers
    )
    assert response.status_code == 201, response.get_json()
    return int(response.get_json()["id"])


def _canned_exists(canned_id: int) -> bool:
    db.session.expire_all()
    return db.session.get(CannedResponse, canned_id) is not None


def test_every_write_has_a_row_in_the_role_matrix(app):
    writes = {
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if rule.endpoint not in PUBLIC and (rule.methods or set()) & WRITE_METHODS
    }
    assert writes - set(WRITES) == set(), "a write route without a role: add it to WRITES (and the README's matrix)"
    assert set(WRITES) - writes == set(), f"stale entries in WRITES: {sorted(set(WRITES) - writes)}"


def test_a_non_admin_agent_is_refused_every_admin_only_write(app, other_agent, seeded):
    """Template sync and agent management: 403 for an agent's session, nothing changes."""
    browser = _log_in(app, other_agent.email, OTHER_PASSWORD)
    before = _counts()
    admin_only = lambda rule: WRITES.get(rule.endpoint) == ADMIN  # noqa: E731
    assert sweep(app, seeded.values, browser, allowed={403}, only=admin_only) == []
    assert _counts() == before
    # With his API token the admin pages are not even reachable (they are pages: to the login),
    # and the admins' API routes answer 403 before reading the body.
    headers = {"Authorization": f"Bearer {agent_service.create_token(other_agent.email)}"}
    admin_pages = lambda rule: admin_only(rule) and not _is_api(rule)  # noqa: E731
    assert sweep(app, seeded.values, _visitor(app), headers=headers, allowed={302}, only=admin_pages) == []
    admin_api = lambda rule: admin_only(rule) and _is_api(rule)  # noqa: E731
    assert sweep(app, seeded.values, headers=headers, allowed={403}, only=admin_api) == []
    assert _counts() == before
    assert db.session.execute(select(func.count()).select_from(Label)).scalar_one() == 1


def test_an_agent_cannot_delete_another_agents_canned_response(app, agent, other_agent, seeded, other_token):
    """Ana (an admin) wrote the seeded one; Beto is refused 403 `forbidden` and it stays."""
    assert agent.is_admin and not other_agent.is_admin
    canned_id = seeded.values["canned_id"]
    response = app.test_client().delete(
        f"/whatsapp/api/respuestas/{canned_id}", headers={"Authorization": f"Bearer {other_token}"}
    )
    assert response.status_code == 403, response.get_json()
    assert response.get_json() == {
        "error": "forbidden",
        "message": "Only its author or an admin can delete a canned response.",
    }
    assert _canned_exists(canned_id)


def test_an_agents_session_cannot_delete_another_agents_canned_response_either(app, other_agent, seeded):
    browser = _log_in(app, other_agent.email, OTHER_PASSWORD)
    canned_id = seeded.values["canned_id"]
    response = app.test_client(use_cookies=False).delete(
        f"/whatsapp/api/respuestas/{canned_id}",
        headers={"Cookie": f"session={browser.cookie}", "X-CSRFToken": browser.csrf or ""},
    )
    assert response.status_code == 403 and response.get_json()["error"] == "forbidden"
    assert _canned_exists(canned_id)


def test_an_agent_deletes_their_own_canned_response(app, other_agent, seeded, other_token):
    headers = {"Authorization": f"Bearer {other_token}"}
    own = _create_canned(app, headers, "beto_saludo")
    response = app.test_client().delete(f"/whatsapp/api/respuestas/{own}", headers=headers)
    assert response.status_code == 204 and response.get_data() == b""
    assert not _canned_exists(own)
    # A canned response that is not there is a 404 for anyone, not a 403.
    again = app.test_client().delete(f"/whatsapp/api/respuestas/{own}", headers=headers)
    assert again.status_code == 404 and again.get_json()["error"] == "not_found"


def test_an_admin_deletes_any_canned_response(app, agent, other_agent, seeded, other_token):
    betos = _create_canned(app, {"Authorization": f"Bearer {other_token}"}, "beto_horario")
    admin = {"Authorization": f"Bearer {agent_service.create_token(agent.email)}"}
    response = app.test_client().delete(f"/whatsapp/api/respuestas/{betos}", headers=admin)
    assert response.status_code == 204
    assert not _canned_exists(betos)


def test_a_canned_response_without_an_author_is_an_admins_to_delete(app, agent, other_agent, seeded, other_token):
    """`created_by_id` is NULL once its author's row is gone (ON DELETE SET NULL)."""
    canned_id = seeded.values["canned_id"]
    db.session.execute(update(CannedResponse).where(CannedResponse.id == canned_id).values(created_by_id=None))
    db.session.commit()
    url = f"/whatsapp/api/respuestas/{canned_id}"
    refused = app.test_client().delete(url, headers={"Authorization": f"Bearer {other_token}"})
    assert refused.status_code == 403 and _canned_exists(canned_id)
    admin = {"Authorization": f"Bearer {agent_service.create_token(agent.email)}"}
    assert app.test_client().delete(url, headers=admin).status_code == 204
    assert not _canned_exists(canned_id)
