"""Schemathesis against the OpenAPI document: generated requests to every documented operation.

The document is the one the app serves at /whatsapp/api/openapi.json (`openapi_document(app)`
of an app with the tests' configuration, built in a child process and checked below to be
what is served), and every request goes to the Flask app in-process (schemathesis' WSGI
transport), inside the test's rolled-back transaction. Requests carry valid credentials: an agent's bearer token for the
API, `METRICS_TOKEN` for /metrics, and a logged-in session cookie for the HTML pages. Before
generation, the webhook stores a text and an image, an agent sends a message that Graph
refuses, and a canned response and a template are saved; half of the generated path ids are
replaced by the ids of those rows, so operations are exercised on things that exist, not only
on 404s.

Checks on every answer: no 5xx; a documented status code, content type and headers; a body
that validates against the documented schema. Schemathesis also generates requests that
violate the document (negative mode): those must be refused with a 4xx; a required header
that is dropped (the credentials) must be refused; an undocumented method must be 405; and
a request without its credentials must not be served (`ignored_auth`).

Left out: the webhook POST (it needs a valid signature over the body; fuzzing it is
tests/test_fuzz.py's job; its GET, Meta's handshake, is generated like any other operation),
and the rule that schema-valid requests are accepted: the API refuses valid-looking data on
grounds a schema cannot state (an agent id that is not an active agent, a `before` cursor
from another conversation, an Idempotency-Key already used, an unknown template), with
documented 4xx answers that the checks above validate. On the HTML pages, negative mode and
`ignored_auth` are not applied (see PAGE_CHECKS): tests/test_authorization.py covers their
authentication.

Login and logout forms carry a CSRF token valid for their session (any visitor gets one from
the page), so generated forms reach the views instead of all stopping at the CSRF check.

SCHEMATHESIS_EXAMPLES sets the examples per operation: 200 by default (about a minute and a
quarter on 2 cores), 1000 in `make drills`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from jsonschema import Draft202012Validator
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import AcceptedNegativeData
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.meta import negated_parameters
from schemathesis.specs.openapi import checks
from schemathesis.transport.wsgi import WSGI_TRANSPORT
from sqlalchemy import select
from werkzeug.test import EnvironBuilder

from app.extensions import db
from app.models import ApiToken, Message
from app.models.agents import hash_token
from app.ratelimits import rate_limiter
from tests import meta
from tests.conftest import PROJECT_ROOT, store_approved_template
from tests.fake_graph import POST_MESSAGES, error

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "200"))
OPENAPI_URL = "/whatsapp/api/openapi.json"
METRICS_TOKEN = "schemathesis-metrics-token"
PASSWORD = "correct horse battery"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) + b"\xff\xd9"


def _document_of_a_test_app() -> dict[str, Any]:
    """The document (generated from the routes) of an app with the tests' configuration.

    Schemathesis needs it to collect the tests, before any fixture runs, so it is built in a
    child process: the first app a process creates takes its request metrics (see
    app/metrics.py), and that must stay the session's `app`. The database named is never
    connected to.
    """
    script = (
        "import json, sys\n"
        "from app import create_app\n"
        "from app.api.docs import openapi_document\n"
        "from tests.conftest import TEST_CONFIG\n"
        "app = create_app({**TEST_CONFIG, 'SQLALCHEMY_DATABASE_URI': 'postgresql://unused@127.0.0.1/unused'})\n"
        "with open(sys.argv[1], 'w', encoding='utf-8') as out:\n"
        "    json.dump(openapi_document(app), out)\n"
    )
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "openapi.json"
        subprocess.run([sys.executable, "-c", script, str(path)], cwd=PROJECT_ROOT, check=True, capture_output=True)
        document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


DOCUMENT = _document_of_a_test_app()
schema = schemathesis.openapi.from_dict(DOCUMENT).exclude(method="POST", path="/webhook/whatsapp")

CHECKS = [
    not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
    checks.missing_required_header,
    checks.unsupported_method,
    checks.ignored_auth,
]
# The HTML pages are documented as lenient (unknown parameter values fall back to their
# defaults), and their forms check the CSRF token, bound to the session, before the login: a
# form posted without its session cookie is a 400, not a 401. tests/test_authorization.py
# sweeps the pages' authentication instead, with a visitor's valid CSRF token.
PAGE_CHECKS = [check for check in CHECKS if check not in (checks.negative_data_rejection, checks.ignored_auth)]

# Query parameters the server reads leniently, as their descriptions say: surrounding spaces
# are ignored (`status`, `assignee`, `q`, `unread`) and `unread` is case-insensitive. A schema
# cannot say "any spelling that strips to a valid value", so an accepted value that the
# schema refuses is not a failure when, read as the server documents it, it is valid.
LENIENT_QUERY: dict[str, Callable[[str], str]] = {
    "status": str.strip,
    "assignee": str.strip,
    "q": str.strip,
    "unread": lambda value: value.strip().lower(),
}


def _query_parameter(operation: Any, name: str) -> dict[str, Any]:
    [parameter] = [
        p for p in operation.definition.raw.get("parameters", []) if p.get("in") == "query" and p.get("name") == name
    ]
    return parameter


def _documented_query_value(operation: Any, name: str, value: str) -> bool:
    parameter = _query_parameter(operation, name)
    if value == "":
        return parameter.get("allowEmptyValue") is True
    # On the wire every value is text: digits are a valid string parameter (a 'negative' integer
    # sent as `q=5` is a search for "5") as well as a valid integer one.
    instances: list[Any] = [value, int(value)] if value.isdecimal() and value.isascii() else [value]
    validator = Draft202012Validator(parameter["schema"])
    return any(validator.is_valid(instance) for instance in instances)


def _query_sent(case: Any) -> str:
    """The query string the app received: the one the WSGI transport sent, not the one reported.

    The report (`response.request.url`) is encoded by `requests`, which drops an empty object or
    array inside a list, where werkzeug sends it as text: `q=[{}, "w\\x00"]` reaches the app as
    `q=%7B%7D&q=w%00` (its first value, "{}", a valid search) but is reported as `q=w%00`.
    """
    sent = WSGI_TRANSPORT.serialize_case(case)["query_string"]
    query: str = EnvironBuilder(path="/", query_string=sent).query_string
    return query


@schema.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Keep every failure but an accepted 'negative' query value that is a documented spelling
    or absent from the request sent (an optional parameter left out), or an accepted 'negative'
    multipart form: every part of a form is text (a caption of digits is a caption, whatever
    type the generator meant) and an empty array is no part at all, so such a form is a valid
    one on the wire; a repeated part is refused (400) by the view."""
    if not isinstance(failure, AcceptedNegativeData):
        return True
    if (
        case.media_type == "multipart/form-data"
        and case.meta is not None
        and case.meta.is_negative_at(ParameterLocation.BODY)
    ):
        return False
    negated = list(negated_parameters(case.meta))
    if not negated or any(where is not ParameterLocation.QUERY for _, where in negated):
        return True
    sent = parse_qs(_query_sent(case), keep_blank_values=True)
    for name, _ in negated:
        values = sent.get(name, [])
        if not values:
            # A 'negative' value with nothing of it on the wire (an empty array, or an object the
            # form style spreads into other names): the request sent omits an optional
            # parameter, which is valid; a required one stays a failure.
            if _query_parameter(case.operation, name).get("required") is True:
                return True
            continue
        # A parameter given twice counts once, by its first value (app/api/schemas.py
        # `_first_value`, as `request.args.get` reads it): the first is the one to judge.
        lenient = LENIENT_QUERY.get(name)
        if lenient is None or not _documented_query_value(case.operation, name, lenient(values[0])):
            return True
    return False


# The agent's API token is this fixed value (`seeded` stores its hash), because schemathesis
# sets credentials on cases it builds before any fixture runs (the schema's own examples).
API_TOKEN = "wai_schemathesis-agent-token"
# The session cookie is made per test: cases carry this stand-in, replaced before each call.
SESSION_STAND_IN = "session-of-the-logged-in-agent"


class Credentials:
    """Valid credentials for each operation, unless schemathesis is testing their absence."""

    def get(self, case: Any, context: Any) -> tuple[str, str, str] | None:
        security = case.operation.definition.raw.get("security", [{"bearerAuth": []}])
        schemes = {name for requirement in security for name in requirement}
        if "metricsToken" in schemes:
            return ("header", "Authorization", f"Bearer {METRICS_TOKEN}")
        if "bearerAuth" in schemes:
            return ("header", "Authorization", f"Bearer {API_TOKEN}")
        if "sessionCookie" in schemes:
            return ("cookie", "session", SESSION_STAND_IN)
        return None  # a public operation

    def set(self, case: Any, data: tuple[str, str, str], context: Any) -> None:
        where, name, value = data
        if where == "header":
            case.headers = {**(case.headers or {}), name: value}
        else:
            case.cookies = {**(case.cookies or {}), name: value}


def _csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]* value="([^"]+)"', html)
    assert match, "no CSRF token on the login page"
    return match.group(1)


@pytest.fixture
def seeded(app, fresh_app_context, client, agent, other_agent, graph, post_webhook) -> Iterator[dict[str, Any]]:
    """Rows for path parameters to name, and credentials: API_TOKEN, METRICS_TOKEN, a session."""
    db.session.add(ApiToken(agent_id=agent.id, token_hash=hash_token(API_TOKEN), name="schemathesis"))
    db.session.commit()
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    graph.media["8801"] = (JPEG, "image/jpeg")
    now = int(time.time())
    messages = [
        meta.message(ts=now - 120, content={"body": "Hola, ¿tienen turnos?"}),
        meta.message("image", ts=now - 60, content={"id": "8801", "mime_type": "image/jpeg", "caption": "foto"}),
    ]
    assert post_webhook(meta.delivery(meta.value(messages=messages))).status_code == 200
    inbound = list(db.session.execute(select(Message.id, Message.conversation_id).order_by(Message.id)))
    conversation_id = inbound[0].conversation_id

    graph.script(POST_MESSAGES, error(131026))
    failed = client.post(
        f"/whatsapp/api/conversaciones/{conversation_id}/mensajes",
        json={"type": "text", "text": "No llega"},
        headers=auth,
    )
    assert failed.status_code == 502, failed.get_json()
    canned = client.post("/whatsapp/api/respuestas", json={"short_code": "hola", "text": "¡Hola!"}, headers=auth)
    assert canned.status_code == 201, canned.get_json()
    components = [{"type": "BODY", "text": "Hola {{1}}, tu turno es el {{2}}."}]
    store_approved_template("turno", components)

    login_page = client.get("/login")
    logged_in = client.post(
        "/login", data={"email": agent.email, "password": PASSWORD, "csrf_token": _csrf_token(login_page.text)}
    )
    assert logged_in.status_code == 302, logged_in.text
    session = client.get_cookie("session")
    assert session is not None
    session_csrf = _csrf_token(client.get("/").text)
    visitor = app.test_client()  # not logged in: for the login form
    visitor_csrf = _csrf_token(visitor.get("/login").text)
    visitor_session = visitor.get_cookie("session")
    assert visitor_session is not None

    app.config["METRICS_TOKEN"] = METRICS_TOKEN
    try:
        yield {
            "session": session.value,
            "csrf": {"visitor": (visitor_session.value, visitor_csrf), "agent": (session.value, session_csrf)},
            "ids": {
                "conversation_id": [conversation_id],
                "message_id": [row.id for row in inbound] + [failed.get_json()["message_id"]],
                "canned_id": [canned.get_json()["id"]],
                "agent_id": [other_agent.id],  # the admin pages act on Beto, not on Ana who is logged in
            },
        }
    finally:
        app.config["METRICS_TOKEN"] = None


def test_the_document_tested_is_the_one_served(client):
    assert client.get(OPENAPI_URL).get_json() == DOCUMENT


def _use_existing_ids(case: Any, ids: dict[str, list[int]]) -> None:
    """Half of the generated ids (the even ones) become ids of seeded rows; a path that
    schemathesis made invalid on purpose is left as it is."""
    if not case.path_parameters or (case.meta is not None and case.meta.is_negative_at(ParameterLocation.PATH)):
        return
    for name, value in case.path_parameters.items():
        existing = ids.get(name)
        if existing and isinstance(value, int) and value % 2 == 0:
            case.path_parameters[name] = existing[value // 2 % len(existing)]


def _use_a_valid_csrf_token(case: Any, tokens: dict[str, tuple[str, str]]) -> None:
    """Forms carry a CSRF token valid for their session (what a visitor gets from the page), so
    generated forms reach the views instead of all stopping at the CSRF check: the login form
    and the public ones a visitor's, the others the logged-in agent's."""
    if not isinstance(case.body, dict) or "csrf_token" not in case.body:
        return
    if case.meta is not None and case.meta.is_negative_at(ParameterLocation.BODY):
        return
    security = case.operation.definition.raw.get("security", [])
    logged_in = any("sessionCookie" in requirement for requirement in security)
    session, token = tokens["agent" if logged_in else "visitor"]
    case.body["csrf_token"] = token
    case.cookies = {**(case.cookies if isinstance(case.cookies, dict) else {}), "session": session}


@pytest.mark.drill
@schema.auth.apply(Credentials, refresh_interval=None)
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_answers_are_documented(case, app, seeded):  # type: ignore[no-untyped-def]
    with app.app_context():
        rate_limiter().reset()  # thousands of requests a minute: the 429 budget is not under test here
    _use_existing_ids(case, seeded["ids"])
    if isinstance(case.cookies, dict) and case.cookies.get("session") == SESSION_STAND_IN:
        case.cookies["session"] = seeded["session"]
    _use_a_valid_csrf_token(case, seeded["csrf"])
    case.operation.app = case.operation.schema.app = app  # in-process (WSGI), the checks' probes too
    is_page = "pages" in case.operation.definition.raw.get("tags", [])
    case.call_and_validate(checks=PAGE_CHECKS if is_page else CHECKS)


# --- what schemathesis found, kept as plain tests -------------------------------------------------


@pytest.mark.parametrize(
    "template",
    [
        {"name": "tur\x00no"},
        {"name": "turno", "language": "e\x00s"},
        {"name": "turno", "parameters": {"body.1": "A\x00na", "body.2": "lunes"}},
    ],
)
def test_a_template_with_a_nul_character_is_400_not_500(client, seeded, template):
    conversation_id = seeded["ids"]["conversation_id"][0]
    response = client.post(
        f"/whatsapp/api/conversaciones/{conversation_id}/mensajes",
        json={"type": "template", "template": template},
        headers={"Authorization": f"Bearer {API_TOKEN}"},
    )
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_body"


@pytest.mark.parametrize("field", ["email", "name"])
def test_an_admin_creating_an_agent_with_a_nul_character_gets_400_not_500(app, seeded, field):
    """Found by hand beside the above: the same NUL on the admin form."""
    session, token = seeded["csrf"]["agent"]
    form = {"email": "nuevo@example.com", "name": "Nuevo", "role": "agent", "csrf_token": token}
    form[field] = form[field].replace("@", "\x00@") if field == "email" else form[field] + "\x00"
    response = app.test_client(use_cookies=False).post(
        "/admin/agents", data=form, headers={"Cookie": f"session={session}"}
    )
    assert response.status_code == 400


def test_a_login_with_a_nul_character_in_the_email_is_refused_not_500(app, agent):
    visitor = app.test_client()
    token = _csrf_token(visitor.get("/login").text)
    response = visitor.post("/login", data={"email": f"{agent.email}\x00", "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 401


@pytest.mark.parametrize("name", ["page", "per_page", "status", "assignee", "q", "unread"])
def test_an_empty_list_parameter_means_its_default_as_documented(client, seeded, name):
    response = client.get(
        "/whatsapp/api/conversaciones", query_string={name: ""}, headers={"Authorization": f"Bearer {API_TOKEN}"}
    )
    assert response.status_code == 200
    operation = DOCUMENT["paths"]["/whatsapp/api/conversaciones"]["get"]
    [documented] = [p for p in operation["parameters"] if p.get("name") == name]
    assert documented.get("allowEmptyValue") is True


def test_a_failure_is_judged_by_the_query_the_app_received(app, seeded):
    """Found by a fresh-clone run: a 'negative' `q` of `[{}, "w\\x00"]` was answered 200 (the app
    reads the first value, "{}", a valid search) and reported as `?q=w%00`, a NUL refused with 400
    when sent alone; the filter must judge the query sent, not the one reported."""
    operation = schema["/whatsapp/api/respuestas"]["GET"]
    case = operation.Case(query={"q": [{}, "w\x00"]}, headers={"Authorization": f"Bearer {API_TOKEN}"})
    case.operation.app = case.operation.schema.app = app
    response = case.call()
    assert response.status_code == 200
    assert parse_qs(urlsplit(response.request.url).query)["q"] == ["w\x00"]  # what the report shows
    assert parse_qs(_query_sent(case))["q"] == ["{}", "w\x00"]  # what the app received
