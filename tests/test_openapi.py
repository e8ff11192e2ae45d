"""The OpenAPI document (generated from the routes and their declarations by app/api/docs.py)
is valid 3.1, lists exactly the app's routes, and real answers validate against the documented
response schemas.

Schemas are checked with jsonschema (Draft 2020-12, formats checked), with the whole document
registered as one resource so `#/components/...` references resolve as in the document.
Object schemas are closed (`additionalProperties: false`) and list every always-present
field as required, so renaming a field or changing its type fails here.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from jsonschema import Draft202012Validator, FormatChecker
from openapi_spec_validator import OpenAPIV31SpecValidator
from openapi_spec_validator import validate as validate_openapi
from referencing import Registry
from referencing.jsonschema import DRAFT202012
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from app import create_app
from app.api.docs import build_document, openapi_document
from app.api.schemas import INPUTS
from app.converters import MAX_BIG_ID, MAX_ID
from app.extensions import db
from app.models import Contact, Conversation, Message
from app.models.conversations import CONVERSATION_STATUSES
from app.models.messages import DELIVERY_STATUSES, DIRECTIONS
from app.services import agents as agent_service
from tests import meta
from tests.conftest import TEST_CONFIG, store_approved_template
from tests.fake_graph import POST_MESSAGES, error

# The document the tests' app serves, generated from its routes; filled in by `_document` below,
# not at import: the first app a process creates takes its request metrics (app/metrics.py),
# and that must stay the session's `app`.
SPEC: dict[str, Any] = {}
DOCUMENT_URI = "urn:whatsapp-inbox:openapi"
REGISTRY: Registry[Any] = Registry()
FORMATS = FormatChecker()
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
IMPLICIT_METHODS = {"HEAD", "OPTIONS"}  # added by Flask to every rule

API = "/whatsapp/api"
LIST = f"{API}/conversaciones"
ONE = f"{API}/conversaciones/{{conversation_id}}"
THREAD = f"{API}/conversaciones/{{conversation_id}}/mensajes"
RETRY = f"{API}/conversaciones/{{conversation_id}}/mensajes/{{message_id}}/reintentar"
WEBHOOK = "/webhook/whatsapp"
CUSTOMER = "5491188880001"


# --- helpers ----------------------------------------------------------------------------------


def _load(document: dict[str, Any]) -> None:
    global REGISTRY
    SPEC.update(document)
    REGISTRY = Registry().with_resource(DOCUMENT_URI, DRAFT202012.create_resource(SPEC))


@pytest.fixture(scope="module", autouse=True)
def _document(app: Flask) -> None:
    _load(openapi_document(app))


def _load_for_another_module() -> None:
    """Other modules use `assert_documented` without `_document`: their tests have a `client`,
    so the session's app exists by then and an app made here with the same configuration (its
    document, checked above to be the one served) no longer takes the request metrics."""
    if not SPEC:
        _load(
            openapi_document(
                create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": "postgresql://unused@127.0.0.1/unused"})
            )
        )


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def _lookup(pointer: str) -> Any:
    node: Any = SPEC
    for part in pointer.lstrip("/").split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def _resolve(pointer: str) -> tuple[str, Any]:
    """Follow local `$ref`s from `pointer`; the pointer and the object finally reached."""
    node = _lookup(pointer)
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        pointer = ref[1:]
        node = _lookup(pointer)
    return pointer, node


def _validator(pointer: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": f"{DOCUMENT_URI}#{pointer}"}, registry=REGISTRY, format_checker=FORMATS)


def _errors(pointer: str, instance: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
        for e in sorted(_validator(pointer).iter_errors(instance), key=lambda e: list(map(str, e.absolute_path)))
    ]


def _operation_pointer(path: str, method: str) -> str:
    assert path in SPEC["paths"], f"{path} is not documented"
    assert method in SPEC["paths"][path], f"{method.upper()} {path} is not documented"
    return f"/paths/{_escape(path)}/{method}"


def assert_documented(response, path: str, method: str = "get") -> Any:  # type: ignore[no-untyped-def]
    """The answer's status, media type, body and headers are as documented; returns the body."""
    _load_for_another_module()
    operation = _operation_pointer(path, method)
    status = str(response.status_code)
    responses = _lookup(f"{operation}/responses")
    assert status in responses, f"{method.upper()} {path} answered {status}, documented: {sorted(responses)}"
    pointer, documented = _resolve(f"{operation}/responses/{status}")
    for name, header in documented.get("headers", {}).items():
        header_pointer, header = _resolve(f"{pointer}/headers/{_escape(name)}")
        value = response.headers.get(name)
        if header.get("required"):
            assert value is not None, f"{status} lacks the documented header {name}"
        if value is not None:
            instance: Any = int(value) if _lookup(f"{header_pointer}/schema").get("type") == "integer" else value
            assert not _errors(f"{header_pointer}/schema", instance), (name, value)
    content = documented.get("content")
    if not content:
        if not 300 <= response.status_code < 400:  # Werkzeug's redirects carry a short HTML note
            assert not response.get_data(), f"{status} has a body but no documented content"
        return None
    media_type = response.mimetype
    if media_type not in content:  # a documented range, e.g. image/* for the media download
        media_type = next((r for r in (f"{media_type.partition('/')[0]}/*", "*/*") if r in content), media_type)
    assert media_type in content, f"{status} is {response.mimetype}, documented: {sorted(content)}"
    # Binary bodies (media) are checked as text too, undecodable bytes replaced.
    body = response.get_json() if response.mimetype == "application/json" else response.data.decode("utf-8", "replace")
    errors = _errors(f"{pointer}/content/{_escape(media_type)}/schema", body)
    assert not errors, f"{method.upper()} {path} {status}:\n" + "\n".join(errors)
    return body


def _openapi_path(rule: str) -> str:
    return re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", r"{\1}", rule)


# --- (a) the document itself -----------------------------------------------------------------------


def test_the_document_is_valid_openapi_3_1():
    assert re.fullmatch(r"3\.1\.\d+", SPEC["openapi"])
    validate_openapi(SPEC, cls=OpenAPIV31SpecValidator)
    for schema in SPEC["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    # Timestamps are checked as RFC 3339 only when rfc3339-validator is installed.
    assert "date-time" in FORMATS.checkers


def test_enums_follow_the_models():
    schemas = SPEC["components"]["schemas"]
    assert schemas["DeliveryStatus"]["enum"] == [*DELIVERY_STATUSES, None]
    assert schemas["ConversationSummary"]["properties"]["status"]["enum"] == list(CONVERSATION_STATUSES)
    assert schemas["Message"]["properties"]["direction"]["enum"] == list(DIRECTIONS)


def test_the_document_survives_json_unchanged():
    # YAML 1.1 would turn unquoted 200 into an int, yes/no into booleans and dates into dates.
    assert json.loads(json.dumps(SPEC)) == SPEC


def test_every_reference_resolves():
    refs = re.findall(r'"\$ref": "([^"]+)"', json.dumps(SPEC))
    assert refs
    for ref in set(refs):
        assert ref.startswith("#/"), ref
        _lookup(ref[1:])


def test_generated_schemas_link_to_the_written_ones():
    # app/api/responses.py marks schemas it cannot reference directly; every mark became a $ref.
    assert "x-component" not in json.dumps(SPEC)
    schemas = SPEC["components"]["schemas"]
    assert schemas["LastMessage"]["properties"]["status"] == {"$ref": "#/components/schemas/DeliveryStatus"}
    assert schemas["SendFailure"]["properties"]["stored_message"] == {"$ref": "#/components/schemas/Message"}


def test_what_the_api_accepts_is_documented_from_the_models_that_validate_it():
    paths = SPEC["paths"].values()
    operations = {op["operationId"]: op for item in paths for op in item.values() if "operationId" in op}
    for operation_id, (query, body) in INPUTS.items():
        documented = {p["name"] for p in operations[operation_id].get("parameters", []) if p.get("in") == "query"}
        assert documented == (set(query.model_fields) if query else set()), operation_id
        if body is not None:
            ref = operations[operation_id]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            assert ref == f"#/components/schemas/{body.__name__}"


def test_the_document_is_served_as_json_without_credentials(client):
    response = client.get(f"{API}/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.get_json() == SPEC
    assert build_document(client.application) == SPEC  # built afresh, the same document
    assert_documented(response, f"{API}/openapi.json")


# --- (b) the same routes as the app ----------------------------------------------------------------


def test_documented_routes_and_methods_are_exactly_the_apps(app):
    registered: set[tuple[str, str]] = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        registered |= {(_openapi_path(rule.rule), m.lower()) for m in (rule.methods or set()) - IMPLICIT_METHODS}
    documented = {(path, method) for path, item in SPEC["paths"].items() for method in item if method in HTTP_METHODS}
    assert sorted(registered - documented) == [], "registered but not documented"
    assert sorted(documented - registered) == [], "documented but not registered"


def test_a_route_without_a_declaration_stops_the_document_from_being_built():
    undeclared = Flask(__name__)
    undeclared.add_url_rule("/undocumented", "undocumented", lambda: "")
    with pytest.raises(LookupError, match="undocumented"):
        build_document(undeclared)


def test_path_parameters_match_the_rules(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = _openapi_path(rule.rule)
        for method in (rule.methods or set()) - IMPLICIT_METHODS:
            operation = _operation_pointer(path, method.lower())
            count = len(_lookup(operation).get("parameters", []))
            parameters = [_resolve(f"{operation}/parameters/{i}")[1] for i in range(count)]
            in_path = {p["name"]: p for p in parameters if p["in"] == "path"}
            assert set(in_path) == set(rule.arguments), (path, method)
            for converter, name in re.findall(r"<(?:([^<>:]+):)?([^<>]+)>", rule.rule):
                assert in_path[name]["required"] is True
                if converter == "int":
                    assert in_path[name]["schema"]["type"] == "integer", (path, name)
                bounds = {"id": MAX_ID, "bigid": MAX_BIG_ID}
                if converter in bounds:
                    schema = in_path[name]["schema"]
                    assert (schema["type"], schema["minimum"], schema["maximum"]) == ("integer", 1, bounds[converter])
                elif converter in ("", "string", "path"):
                    assert in_path[name]["schema"]["type"] == "string", (path, name)
                else:
                    raise AssertionError(f"{path}: no rule for the converter {converter}")


def test_api_operations_require_the_documented_credentials(client):
    for path, item in SPEC["paths"].items():
        for method, operation in item.items():
            if method not in HTTP_METHODS or not path.startswith(API):
                continue
            url = re.sub(r"\{[^{}]+\}", "1", path)
            response = client.open(url, method=method.upper())
            if operation["security"] == []:
                assert response.status_code != 401, path
            else:
                assert {"bearerAuth", "sessionCookie"} <= {k for s in operation["security"] for k in s}
                assert response.status_code == 401, path
                assert_documented(response, path, method)


def test_rate_limited_routes_document_429():
    # The limiter covers the whole API blueprint and the webhook's POST (see app/ratelimits.py).
    for path, item in SPEC["paths"].items():
        for method, operation in item.items():
            if path.startswith(f"{API}/") or (path == WEBHOOK and method == "post"):
                assert "429" in operation["responses"], f"{method.upper()} {path} does not document 429"


# --- (c) real answers validate ---------------------------------------------------------------------


def _ts(offset: int) -> int:
    return int(time.time()) - 3600 + offset


def _echo_delivery(wamid: str, ts: int) -> dict:
    value = meta.value(contacts=[meta.contact(CUSTOMER, "Esquema")])
    value["message_echoes"] = [
        {
            "from": meta.DISPLAY_NUMBER,
            "to": CUSTOMER,
            "id": wamid,
            "timestamp": str(ts),
            "type": "text",
            "text": {"body": "Respuesta desde la app"},
        }
    ]
    return meta.delivery(value, field="smb_message_echoes")


@pytest.fixture
def thread(post_webhook, agent) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """One conversation with a message of every shape the serializer produces."""
    m = {
        "question": meta.message(sender=CUSTOMER, ts=_ts(1), content={"body": "¿Tienen envío?"}),
        "ad": meta.message(
            sender=CUSTOMER,
            ts=_ts(2),
            content={"body": "Vi el anuncio"},
            referral={"source_url": "https://fb.me/x", "source_type": "ad", "source_id": "1", "headline": "Promo"},
        ),
        "image": meta.message(
            "image", sender=CUSTOMER, ts=_ts(3), content={"id": "m-1", "mime_type": "image/jpeg", "caption": "Así"}
        ),
        "voice": meta.message(
            "audio", sender=CUSTOMER, ts=_ts(4), content={"id": "m-2", "mime_type": "audio/ogg", "voice": True}
        ),
        "document": meta.message(
            "document",
            sender=CUSTOMER,
            ts=_ts(5),
            content={"id": "m-3", "mime_type": "application/pdf", "sha256": "abc", "filename": "factura.pdf"},
        ),
        "location": meta.message(
            "location",
            sender=CUSTOMER,
            ts=_ts(6),
            content={"latitude": -34.6, "longitude": -58.4, "name": "Obelisco", "url": "https://maps.example"},
        ),
        "contacts": meta.message(
            "contacts",
            sender=CUSTOMER,
            ts=_ts(7),
            content=[{"name": {"formatted_name": "Beto Díaz"}, "phones": [{"phone": "+54 9 11 5555 0002"}]}],
        ),
        "interactive": meta.message(
            "interactive",
            sender=CUSTOMER,
            ts=_ts(8),
            content={"type": "button_reply", "button_reply": {"id": "si", "title": "Sí"}},
            context={"id": "wamid.unknown-to-us"},
        ),
        "button": meta.message(
            "button", sender=CUSTOMER, ts=_ts(9), content={"payload": "stop", "text": "Dejar de recibir"}
        ),
        "order": meta.message(
            "order",
            sender=CUSTOMER,
            ts=_ts(10),
            content={"catalog_id": "c1", "text": "Quiero esto", "product_items": [{"product_retailer_id": "p1"}]},
        ),
        "system": meta.message(
            "system",
            sender=CUSTOMER,
            ts=_ts(11),
            content={"body": "El cliente cambió de número", "type": "user_changed_number"},
        ),
        "unsupported": meta.message(
            "unsupported",
            sender=CUSTOMER,
            ts=_ts(12),
            errors=[{"code": 131051, "title": "Message type unknown", "error_data": {"details": "no soportado"}}],
        ),
        "unknown": meta.message("request_welcome", sender=CUSTOMER, ts=_ts(13)),
        "reply": meta.message(sender=CUSTOMER, ts=_ts(14), content={"body": "Era esto"}),
        "edited": meta.message(sender=CUSTOMER, ts=_ts(15), content={"body": "Hoal"}),
        "deleted": meta.message("image", sender=CUSTOMER, ts=_ts(16), content={"id": "m-4", "mime_type": "image/png"}),
    }
    m["reply"]["context"] = {"id": m["question"]["id"], "forwarded": True}
    events = [
        meta.message("reaction", sender=CUSTOMER, ts=_ts(17), content={"message_id": m["image"]["id"], "emoji": "❤️"}),
        meta.message(
            "edit",
            sender=CUSTOMER,
            ts=_ts(18),
            content={"original_message_id": m["edited"]["id"], "message": {"type": "text", "text": {"body": "Hola"}}},
        ),
        meta.message("revoke", sender=CUSTOMER, ts=_ts(19), content={"original_message_id": m["deleted"]["id"]}),
    ]
    response = post_webhook(
        meta.delivery(meta.value(messages=[*m.values(), *events], contacts=[meta.contact(CUSTOMER, "Esquema")]))
    )
    body = assert_documented(response, WEBHOOK, "post")
    assert body["outcome"] == "stored" and body["messages_stored"] == len(m) + len(events)

    echo = meta.wamid()
    response = post_webhook(_echo_delivery(echo, _ts(20)))
    assert assert_documented(response, WEBHOOK, "post")["messages_stored"] == 1
    statuses = [meta.status(echo, "delivered", ts=_ts(21)), meta.status(echo, "sent", ts=_ts(22))]
    statuses.append(meta.status(meta.wamid(), "read"))
    response = post_webhook(meta.delivery(meta.value(statuses=statuses)))
    body = assert_documented(response, WEBHOOK, "post")
    assert (body["statuses_applied"], body["statuses_waiting"]) == (2, 1)  # "sent" is applied but cannot go back

    conversation_id = db.session.execute(
        select(Conversation.id).join(Contact, Contact.id == Conversation.contact_id).where(Contact.wa_id == CUSTOMER)
    ).scalar_one()
    # An agent's own message and reaction (the inbox has no send endpoint yet): stored directly.
    sent_at = datetime.fromtimestamp(_ts(23), tz=UTC)
    by_agent = Message(
        wamid=meta.wamid(),
        conversation_id=conversation_id,
        direction="out",
        sender="agent",
        agent_id=agent.id,
        type="text",
        text="Sí, enviamos a todo el país",
        sent_at=sent_at,
        status="failed",
        error_code=131047,
        error_title="Re-engagement message",
        error_details="More than 24 hours have passed since the customer last replied.",
    )
    agent_reaction = Message(
        wamid=meta.wamid(),
        conversation_id=conversation_id,
        direction="out",
        sender="agent",
        agent_id=agent.id,
        type="reaction",
        reaction_to_wamid=m["question"]["id"],
        reaction_emoji="👍",
        sent_at=sent_at,
    )
    template = Message(
        wamid=meta.wamid(),
        conversation_id=conversation_id,
        direction="out",
        sender="agent",
        agent_id=agent.id,
        type="template",
        text="Hola Esquema, tu pedido está listo.",
        template_name="pedido_listo",
        template_language="es",
        sent_at=sent_at,
        status="accepted",
    )
    db.session.add_all([by_agent, agent_reaction, template])
    db.session.flush()
    db.session.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id)
        .values(assignee_id=agent.id, status="pending", last_agent_message_id=by_agent.id)
    )
    db.session.commit()
    # Snoozed until the customer writes, then back to pending: two events in the thread.
    bearer = {"Authorization": f"Bearer {agent_service.create_token(agent.email)}"}
    for change in ({"snoozed_until": None}, {"status": "pending"}):
        response = post_webhook.client.patch(f"{LIST}/{conversation_id}", json=change, headers=bearer)
        assert response.status_code == 200, response.json
    return {"id": conversation_id, "messages": m, "echo": echo}


def test_webhook_answers_validate(client, post_webhook):
    verify = {"hub.mode": "subscribe", "hub.verify_token": meta.VERIFY_TOKEN, "hub.challenge": "1158201444"}
    assert assert_documented(client.get(WEBHOOK, query_string=verify), WEBHOOK) == "1158201444"
    wrong = {**verify, "hub.verify_token": "nope"}
    assert assert_documented(client.get(WEBHOOK, query_string=wrong), WEBHOOK) == "Forbidden"

    delivery = meta.delivery(meta.value(messages=[meta.message(sender=CUSTOMER)]))
    assert assert_documented(post_webhook(delivery), WEBHOOK, "post")["outcome"] == "stored"
    assert assert_documented(post_webhook(delivery), WEBHOOK, "post")["outcome"] == "duplicate"
    partial = meta.delivery(meta.value(messages=[{"type": "text"}]))
    assert assert_documented(post_webhook(partial), WEBHOOK, "post")["outcome"] == "partial"

    body = meta.encode(delivery)
    answers = {
        400: post_webhook(b"[1, 2]"),
        401: client.post(WEBHOOK, data=body, headers={"Content-Type": "application/json"}),
        403: post_webhook(delivery, secret="another-secret"),
        413: client.post(WEBHOOK, data=b" " * (4 * 1024 * 1024 + 1), headers={"Content-Type": "application/json"}),
    }
    for status, response in answers.items():
        assert response.status_code == status
        assert_documented(response, WEBHOOK, "post")


def test_conversation_list_and_detail_validate(client, auth, thread):
    body = assert_documented(client.get(LIST, headers=auth), LIST)
    assert body["counts"] == {"mine": 1, "unassigned": 0, "all": 1}
    summary = body["conversations"][0]
    assert summary["assignee"] is not None and summary["last_agent_message"]["agent"] is not None
    assert summary["window_expires_at"] is not None
    for params in (
        {"assignee": "me", "status": "open,pending", "unread": "true", "q": "esquema", "per_page": "1"},
        {"assignee": "unassigned", "status": "resolved", "unread": "no"},
        {"page": "9"},
    ):
        assert_documented(client.get(LIST, headers=auth, query_string=params), LIST)

    detail = assert_documented(client.get(f"{LIST}/{thread['id']}", headers=auth), ONE)
    assert detail == summary


def test_conditional_gets_answer_304_as_documented(client, auth, thread):
    for url, template in (
        (LIST, LIST),
        (f"{LIST}/{thread['id']}", ONE),
        (f"{LIST}/{thread['id']}/mensajes", THREAD),
    ):
        first = client.get(url, headers=auth)
        assert_documented(first, template)
        again = client.get(url, headers={**auth, "If-None-Match": first.headers["ETag"]})
        assert again.status_code == 304, url
        assert_documented(again, template)


def test_a_conversation_without_agent_or_assignee_validates(client, auth, post_webhook):
    # The nullable branches: no assignee, no agent message, a user_id-only contact.
    value = meta.value(
        messages=[meta.message(sender=None, from_user_id="AR.123456")],
        contacts=[meta.contact(wa_id=None, name=None, user_id="AR.123456")],
    )
    assert post_webhook(meta.delivery(value)).status_code == 200
    summary = assert_documented(client.get(LIST, headers=auth), LIST)["conversations"][0]
    assert summary["assignee"] is None and summary["last_agent_message"] is None
    assert summary["contact"] == {
        "id": summary["contact"]["id"],
        "wa_id": None,
        "user_id": "AR.123456",
        "name": None,
        "display_name": None,
    }
    assert_documented(client.get(f"{LIST}/{summary['id']}", headers=auth), ONE)


def test_thread_validates_and_shows_every_documented_field(client, auth, thread):
    url = f"{LIST}/{thread['id']}/mensajes"
    body = assert_documented(client.get(url, headers=auth), THREAD)
    assert body["next_cursor"] is None
    by_wamid = {message["wamid"]: message for message in body["messages"]}
    m = thread["messages"]
    assert by_wamid[m["deleted"]["id"]]["deleted"] is True and "media" not in by_wamid[m["deleted"]["id"]]
    assert by_wamid[m["edited"]["id"]]["edited_at"] is not None
    assert by_wamid[m["reply"]["id"]]["reply_to"]["id"] is not None
    assert by_wamid[m["interactive"]["id"]]["reply_to"]["id"] is None  # quoted message not stored
    assert by_wamid[thread["echo"]]["sender"] == {"type": "agent", "agent": None}
    assert by_wamid[thread["echo"]]["status"] == "delivered"
    assert {r["from"] for m_ in body["messages"] for r in m_["reactions"]} == {"customer", "agent"}

    # Every documented property appears in a real answer, so the schema describes what is sent.
    documented = set(SPEC["components"]["schemas"]["Message"]["properties"])
    seen = {key for message in body["messages"] for key in message}
    assert seen == documented

    first = assert_documented(client.get(url, headers=auth, query_string={"limit": "2"}), THREAD)
    assert first["next_cursor"] is not None
    older = client.get(url, headers=auth, query_string={"limit": "2", "before": str(first["next_cursor"])})
    assert len(assert_documented(older, THREAD)["messages"]) == 2


def test_error_answers_validate(client, auth, thread):
    url = f"{LIST}/{thread['id']}/mensajes"
    for params in ({"page": "0"}, {"per_page": "x"}, {"status": "closed"}, {"assignee": "x"}, {"unread": "maybe"}):
        response = client.get(LIST, headers=auth, query_string=params)
        assert response.status_code == 400
        assert assert_documented(response, LIST)["parameter"] == next(iter(params))
    for params in ({"limit": "0"}, {"before": str(2**31 - 1)}):  # no message of this conversation
        response = client.get(url, headers=auth, query_string=params)
        assert response.status_code == 400
        assert_documented(response, THREAD)
    missing = thread["id"] + 1000
    for path, template in ((f"{LIST}/{missing}", ONE), (f"{LIST}/{missing}/mensajes", THREAD)):
        response = client.get(path, headers=auth)
        assert response.status_code == 404
        assert_documented(response, template)
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic x"}):
        response = client.get(LIST, headers=headers)
        assert response.status_code == 401
        assert_documented(response, LIST)


def test_rate_limited_answers_validate(client):
    body = meta.encode(meta.delivery(meta.value(messages=[meta.message()])))
    bad = {"Content-Type": "application/json", "X-Hub-Signature-256": "sha256=" + "0" * 64}
    # The exact budgets are tested in test_ratelimits.py; here only the shape of the refusal.
    for _ in range(100):  # 30 per minute: still breached if a window boundary passes
        response = client.post(WEBHOOK, data=body, headers=bad)
        if response.status_code == 429:
            break
    assert response.status_code == 429
    assert_documented(response, WEBHOOK, "post")

    # 600 per minute in fixed windows: enough requests to cross a window boundary and still breach.
    for _ in range(1300):
        response = client.get(LIST)
        if response.status_code == 429:
            break
    assert response.status_code == 429
    assert assert_documented(response, LIST)["error"] == "rate_limited"


def test_health_answers_validate(client, monkeypatch):
    assert_documented(client.get("/healthz"), "/healthz")
    assert_documented(client.get("/readyz"), "/readyz")

    def unreachable(*args: object, **kwargs: object) -> None:
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))

    monkeypatch.setattr(db.session, "execute", unreachable)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert assert_documented(response, "/readyz")["error"] == "database_unavailable"


def test_metrics_answers_validate(app, client, monkeypatch):
    assert_documented(client.get("/metrics"), "/metrics")  # no METRICS_TOKEN: 404
    monkeypatch.setitem(app.config, "METRICS_TOKEN", "metrics-secret")
    assert_documented(client.get("/metrics", headers={"Authorization": "Bearer nope"}), "/metrics")
    response = client.get("/metrics", headers={"Authorization": "Bearer metrics-secret"})
    assert response.status_code == 200
    assert_documented(response, "/metrics")


def test_pages_answer_as_documented(client):
    assert client.get("/").status_code == 302
    assert_documented(client.get("/"), "/")
    assert_documented(client.get("/login"), "/login")


# --- the documented parameter schemas agree with the server ------------------------------------


def _documented_accepts(path: str, name: str, raw: str) -> bool:
    operation = _operation_pointer(path, "get")
    for i in range(len(_lookup(operation)["parameters"])):
        pointer, parameter = _resolve(f"{operation}/parameters/{i}")
        if parameter["name"] == name:
            value: Any = int(raw) if re.fullmatch(r"[0-9]+", raw) else raw
            schema = parameter["schema"]
            if "type" in schema and schema["type"] == "string":
                value = raw
            return not _errors(f"{pointer}/schema", value)
    raise AssertionError(f"{name} is not documented on {path}")


LIST_SAMPLES = {
    "page": ["1", "1000000", "1000001", "0", "-1", "1.5", "abc"],
    "per_page": ["1", "100", "101", "0", "x"],
    "status": ["all", "open", "open,pending", "open, resolved", "open,,pending", "closed", "OPEN", "open,all"],
    "assignee": ["all", "me", "unassigned", "7", "0", "2147483647", "2147483648", "someone", "ME", "-1"],
    "unread": ["true", "false", "1", "0", "yes", "no", "maybe", "2"],
    "q": ["ana", "x" * 100, "x" * 101, "a\x00b", "100%_"],
}


@pytest.mark.parametrize(("name", "raw"), [(n, v) for n, values in LIST_SAMPLES.items() for v in values])
def test_list_parameter_schemas_accept_what_the_server_accepts(client, auth, name, raw):
    response = client.get(LIST, headers=auth, query_string={name: raw})
    assert response.status_code in (200, 400), response.get_json()
    assert (response.status_code == 200) == _documented_accepts(LIST, name, raw), (name, raw, response.get_json())


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("limit", "1"),
        ("limit", "100"),
        ("limit", "101"),
        ("limit", "0"),
        ("before", "0"),
        ("before", "x"),
        ("before", str(2**63)),
    ],
)
def test_thread_parameter_schemas_accept_what_the_server_accepts(client, auth, thread, name, raw):
    response = client.get(f"{LIST}/{thread['id']}/mensajes", headers=auth, query_string={name: raw})
    assert response.status_code in (200, 400), response.get_json()
    assert (response.status_code == 200) == _documented_accepts(THREAD, name, raw), (name, raw)


# --- sending ---------------------------------------------------------------------------------------


@pytest.fixture
def open_conversation(post_webhook) -> int:  # type: ignore[no-untyped-def]
    """A conversation whose customer wrote a minute ago (the 24-hour window is open)."""
    post_webhook(meta.delivery(meta.value(messages=[meta.message(sender=CUSTOMER, ts=int(time.time()) - 60)])))
    return db.session.execute(select(Conversation.id)).scalar_one()


def _send(client, auth, conversation_id: int, body: Any, **headers: str):  # type: ignore[no-untyped-def]
    return client.post(f"{LIST}/{conversation_id}/mensajes", json=body, headers={**auth, **headers})


def test_send_answers_validate(client, auth, graph, open_conversation):
    text = {"type": "text", "text": "¡Hola!"}
    first = _send(client, auth, open_conversation, text, **{"Idempotency-Key": "k-1"})
    assert first.status_code == 201
    sent = assert_documented(first, THREAD, "post")["message"]
    assert sent["status"] == "accepted" and sent["sender"]["agent"] is not None
    replay = _send(client, auth, open_conversation, text, **{"Idempotency-Key": "k-1"})
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert assert_documented(replay, THREAD, "post") == first.get_json()
    reused = _send(client, auth, open_conversation, {**text, "text": "otro"}, **{"Idempotency-Key": "k-1"})
    assert reused.status_code == 422
    assert_documented(reused, THREAD, "post")

    refusals = {
        "invalid_body": _send(client, auth, open_conversation, {"type": "video"}),
        "invalid_idempotency_key": _send(client, auth, open_conversation, text, **{"Idempotency-Key": "con espacio"}),
        "unknown_template": _send(client, auth, open_conversation, {"type": "template", "template": {"name": "x"}}),
    }
    for code, response in refusals.items():
        assert response.status_code == 400
        assert assert_documented(response, THREAD, "post")["error"] == code
    missing = client.post(f"{LIST}/{open_conversation + 1000}/mensajes", json=text, headers=auth)
    assert missing.status_code == 404
    assert_documented(missing, THREAD, "post")


def test_send_of_a_template_and_its_refusals_validate(client, auth, graph, open_conversation):
    components = [{"type": "BODY", "text": "Hola {{1}}, tu pedido {{2}} está listo."}]
    store_approved_template("pedido_listo", components)
    template = {"name": "pedido_listo", "language": {"code": "es"}, "parameters": {"body.1": "Ana"}}
    response = _send(client, auth, open_conversation, {"type": "template", "template": template})
    assert response.status_code == 400
    assert assert_documented(response, THREAD, "post")["missing"] == ["body.2"]
    template["parameters"]["body.2"] = 123
    response = _send(client, auth, open_conversation, {"type": "template", "template": template})
    assert response.status_code == 201
    assert assert_documented(response, THREAD, "post")["message"]["template"] == {
        "name": "pedido_listo",
        "language": "es",
    }


def test_window_and_graph_failures_and_retries_validate(client, auth, graph, open_conversation):
    text = {"type": "text", "text": "Hola"}
    graph.script(POST_MESSAGES, error(131026))
    failed = _send(client, auth, open_conversation, text)
    assert failed.status_code == 502
    body = assert_documented(failed, THREAD, "post")
    assert body["stored_message"]["status"] == "failed" and body["graph_error"]["code"] == 131026

    graph.script(POST_MESSAGES, error(131047))
    closed_by_meta = _send(client, auth, open_conversation, text)
    assert closed_by_meta.status_code == 409
    assert assert_documented(closed_by_meta, THREAD, "post")["graph_error"]["code"] == 131047

    retry_url = f"{LIST}/{open_conversation}/mensajes/{body['message_id']}/reintentar"
    retried = client.post(retry_url, headers=auth)
    assert retried.status_code == 201
    assert assert_documented(retried, RETRY, "post")["message"]["status"] == "accepted"
    again = client.post(retry_url, headers=auth)
    assert again.status_code == 409
    assert assert_documented(again, RETRY, "post")["error"] == "not_retryable"
    unknown = client.post(f"{LIST}/{open_conversation}/mensajes/999999999/reintentar", headers=auth)
    assert unknown.status_code == 404
    assert_documented(unknown, RETRY, "post")

    db.session.execute(update(Conversation).values(last_customer_message_at=datetime(2020, 1, 1, tzinfo=UTC)))
    db.session.commit()
    closed = _send(client, auth, open_conversation, text)
    assert closed.status_code == 409
    assert assert_documented(closed, THREAD, "post")["window_expires_at"] == "2020-01-02T00:00:00Z"


def test_a_contact_without_a_phone_number_is_409_as_documented(client, auth, graph, post_webhook):
    value = meta.value(
        messages=[meta.message(sender=None, from_user_id="AR.777")],
        contacts=[meta.contact(wa_id=None, name=None, user_id="AR.777")],
    )
    post_webhook(meta.delivery(value))
    conversation_id = db.session.execute(select(Conversation.id)).scalar_one()
    response = _send(client, auth, conversation_id, {"type": "text", "text": "Hola"})
    assert response.status_code == 409
    assert assert_documented(response, THREAD, "post")["error"] == "contact_unreachable"


SEND_REQUEST = "/components/schemas/SendRequest"


@pytest.mark.parametrize(
    "body",
    [
        {"type": "text", "text": "hola"},
        {"type": "text", "text": "x" * 4096, "reply_to": None},
        {"type": "text", "text": "hola", "reply_to": 1},
        {"type": "template", "template": {"name": "t"}},
        {"type": "template", "template": {"name": "t", "language": {"code": "en_US"}, "parameters": {"body.1": 5}}},
    ],
)
def test_the_send_request_schema_accepts_valid_bodies(body):
    assert _errors(SEND_REQUEST, body) == []


@pytest.mark.parametrize(
    "body",
    [
        {"type": "text", "text": ""},
        {"type": "text", "text": "   "},
        {"type": "text", "text": "x" * 4097},
        {"type": "text", "text": "a\x00b"},
        {"type": "text"},
        {"type": "text", "text": 5},
        {"type": "video", "text": "x"},
        {"text": "sin tipo"},
        {"type": "text", "text": "hola", "reply_to": "1"},
        {"type": "text", "text": "hola", "reply_to": 0},
        {"type": "text", "text": "hola", "reply_to": True},
        {"type": "template", "template": "saludo"},
        {"type": "template", "template": {"name": ""}},
        {"type": "template", "template": {"name": "t", "parameters": {"body.1": True}}},
        [],
    ],
)
def test_the_send_request_schema_refuses_what_the_server_refuses(client, auth, graph, open_conversation, body):
    assert _errors(SEND_REQUEST, body) != []
    response = _send(client, auth, open_conversation, body)
    assert response.status_code == 400, response.get_json()
