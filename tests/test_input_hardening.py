"""Hostile but authenticated input answers a clear 400 (or is ignored on the pages), never 500,
and stores nothing (issue 10, item 5).

- JSON nested 100,000 levels deep (a RecursionError in the parser or the validation);
- lone surrogates such as `"\\ud800"`, which JSON may escape but neither PostgreSQL nor UTF-8
  logs can hold (a UnicodeEncodeError when stored or logged);
- superscript digits in integer parameters (`"²".isdigit()` is true, `int("²")` fails).
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import Agent, CannedResponse, Conversation, Message, WebhookDelivery
from tests import meta
from tests.test_pages import csrf_token, login

API = "/whatsapp/api"
DEEP = 100_000
JSON_HEADERS = {"Content-Type": "application/json"}


def _deep(depth: int = DEEP) -> str:
    return "[" * depth + "]" * depth


def _deep_objects(depth: int = DEEP) -> str:
    return '{"a":' * depth + "1" + "}" * depth


@pytest.fixture
def conversation_id(post_webhook) -> int:  # type: ignore[no-untyped-def]
    """A conversation whose 24-hour window is open (the customer wrote a minute ago)."""
    message = meta.message(ts=int(time.time()) - 60, content={"body": "hola"})
    assert post_webhook(meta.delivery(meta.value(messages=[message]))).status_code == 200
    return db.session.execute(select(Conversation.id)).scalar_one()


def _stored() -> tuple[Any, ...]:
    """Everything an API write could change."""
    db.session.expire_all()
    conversation = db.session.execute(select(Conversation)).scalar_one()
    return (
        db.session.execute(select(func.count()).select_from(Message)).scalar_one(),
        db.session.execute(select(func.count()).select_from(CannedResponse)).scalar_one(),
        conversation.status,
        conversation.assignee_id,
        conversation.unread_count,
        conversation.updated_at,
    )


def _writes(conversation_id: int) -> dict[str, tuple[str, str]]:
    """Every validated API write, by operation: (method, path)."""
    return {
        "updateConversation": ("PATCH", f"{API}/conversaciones/{conversation_id}"),
        "addNote": ("POST", f"{API}/conversaciones/{conversation_id}/notas"),
        "sendMessage": ("POST", f"{API}/conversaciones/{conversation_id}/mensajes"),
        "createCannedResponse": ("POST", f"{API}/respuestas"),
    }


# A body each write would accept, with `%s` where the hostile value goes (raw JSON text).
TEMPLATES = {
    "updateConversation": ['{"status": %s}', '{"assignee": %s}', '{"unread": %s}', "%s"],
    "addNote": ['{"text": %s}', "%s"],
    "sendMessage": [
        '{"type": "text", "text": %s}',
        '{"type": "template", "template": {"name": "x", "parameters": {"body.1": %s}}}',
        '{"type": "template", "template": %s}',
        "%s",
    ],
    "createCannedResponse": ['{"short_code": "hola", "text": %s}', '{"short_code": %s, "text": "x"}', "%s"],
}
CASES = [(operation, template) for operation, templates in TEMPLATES.items() for template in templates]


def _send(client, auth, conversation_id: int, operation: str, body: str):  # type: ignore[no-untyped-def]
    method, path = _writes(conversation_id)[operation]
    return client.open(path, method=method, data=body.encode("utf-8"), headers={**auth, **JSON_HEADERS})


@pytest.mark.parametrize("deep", [_deep, _deep_objects], ids=["arrays", "objects"])
@pytest.mark.parametrize(("operation", "template"), CASES)
def test_json_nested_100000_levels_deep_is_400_invalid_body_and_stores_nothing(
    client, auth, conversation_id, graph, operation, template, deep
):
    before = _stored()
    response = _send(client, auth, conversation_id, operation, template % deep())
    assert response.status_code == 400, (response.status_code, response.get_json())
    assert response.get_json()["error"] == "invalid_body"
    assert "nested too deeply" in response.get_json()["message"]
    assert _stored() == before
    assert graph.requests == []


@pytest.mark.parametrize(("operation", "template"), CASES)
@pytest.mark.parametrize("text", ['"\\ud800"', '"hola \\udfff"', '"\\ud83d"', '"a\\udc00\\ud800b"'])
def test_a_lone_surrogate_anywhere_in_the_body_is_400_invalid_body_and_stores_nothing(
    client, auth, conversation_id, graph, operation, template, text
):
    before = _stored()
    response = _send(client, auth, conversation_id, operation, template % text)
    assert response.status_code == 400, (response.status_code, response.get_json())
    body = response.get_json()
    assert body["error"] == "invalid_body"
    assert "surrogate" in body["message"]
    assert _stored() == before
    assert graph.requests == []


def test_a_lone_surrogate_in_a_key_is_400_invalid_body(client, auth, conversation_id):
    before = _stored()
    response = _send(client, auth, conversation_id, "addNote", '{"text": "hola", "\\ud800": 1}')
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["error"] == "invalid_body"
    assert _stored() == before


def test_a_surrogate_pair_is_an_emoji_and_is_stored(client, auth, conversation_id):
    """Escaped as JSON escapes it (a *pair* of surrogates), an emoji is fine."""
    response = _send(client, auth, conversation_id, "addNote", '{"text": "hola \\ud83d\\ude00"}')
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["text"] == "hola \U0001f600"


def test_the_body_checks_leave_ordinary_nesting_alone(client, auth, conversation_id):
    """A body as deep as the API's own shapes (and then some) is validated as before."""
    nested = json.dumps({"type": "template", "template": {"name": "x", "parameters": {"body.1": [[[["a"]]]]}}})
    response = _send(client, auth, conversation_id, "sendMessage", nested)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_body"
    assert "nested too deeply" not in response.get_json()["message"]


@pytest.mark.parametrize("encoded", ["%ED%A0%80", "%ED%BF%BF", "a%ED%A0%80b", "%F0%9F"])
def test_surrogates_and_broken_utf8_in_query_strings_are_not_a_500(client, auth, agent, conversation_id, encoded):
    """A query string is bytes: what is not UTF-8 (an encoded surrogate is not) never reaches the
    views as a surrogate; it is a search like any other."""
    for path in (f"{API}/conversaciones?q={encoded}", f"{API}/respuestas?q={encoded}"):
        response = client.get(path, headers=auth)
        assert response.status_code == 200, (path, response.status_code)
    login(client, agent.email)
    for path in (f"/?q={encoded}", f"/inbox/fragments/list?q={encoded}", f"/inbox/fragments/canned?q={encoded}"):
        assert client.get(path).status_code == 200, path


def test_an_encoded_surrogate_in_a_form_is_not_a_500(client, agent):
    """Form bodies are decoded like query strings: bytes that are not UTF-8 never become a
    surrogate (Werkzeug keeps such an escape as its text)."""
    login(client, agent.email)
    token = csrf_token(client.get("/admin/").text)
    response = client.post(
        "/admin/agents",
        data=f"csrf_token={token}&name=Carla%ED%A0%80&email=carla%40example.com&role=agent".encode(),
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200, response.status_code  # the page with the new password
    db.session.expire_all()
    name = db.session.execute(select(Agent.name).where(Agent.email == "carla@example.com")).scalar_one()
    assert name.startswith("Carla") and name.encode("utf-8")  # would raise on a surrogate


# --- integer parameters: ASCII digits only --------------------------------------------------

# All `str.isdigit()`; `int()` refuses the first three, and the others are not ASCII digits. The
# last one is ASCII but longer than `int()` converts (4,300 digits).
SUPERSCRIPTS = ["²", "¹²", "①", "٣", "𝟗", "1" * 5000]


@pytest.mark.parametrize("digits", SUPERSCRIPTS, ids=range(len(SUPERSCRIPTS)))
def test_superscript_digits_in_api_integer_parameters_are_400_invalid_parameter(client, auth, conversation_id, digits):
    for path, parameter in (
        (f"{API}/conversaciones?page={digits}", "page"),
        (f"{API}/conversaciones?per_page={digits}", "per_page"),
        (f"{API}/conversaciones?assignee={digits}", "assignee"),
        (f"{API}/conversaciones/{conversation_id}/mensajes?before={digits}", "before"),
        (f"{API}/conversaciones/{conversation_id}/mensajes?limit={digits}", "limit"),
    ):
        response = client.get(path, headers=auth)
        assert response.status_code == 400, (path, response.status_code)
        assert response.get_json()["error"] == "invalid_parameter", path
        assert response.get_json()["parameter"] == parameter, path


@pytest.mark.parametrize("digits", SUPERSCRIPTS, ids=range(len(SUPERSCRIPTS)))
def test_superscript_digits_in_the_pages_parameters_are_ignored(client, agent, conversation_id, digits):
    """The page or the list fragment with a junk `page` or `c` is the one without it."""
    login(client, agent.email)
    for path in (f"/?page={digits}", f"/?c={digits}", f"/?page={digits}&c={digits}"):
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        assert "hola" in response.text  # the list shows the conversation: page 1
    fragment = client.get(f"/inbox/fragments/list?page={digits}&c={digits}")
    assert fragment.status_code == 200
    assert fragment.headers["HX-Replace-Url"] == "/?tab=all&status=open"  # neither page nor c
    thread = client.get(f"/inbox/fragments/conversations/{conversation_id}?page={digits}")
    assert thread.status_code == 200


@pytest.mark.parametrize("digits", SUPERSCRIPTS, ids=range(len(SUPERSCRIPTS)))
def test_superscript_digits_as_the_older_pages_cursor_are_404_like_a_missing_cursor(
    client, agent, conversation_id, digits
):
    login(client, agent.email)
    response = client.get(f"/inbox/fragments/conversations/{conversation_id}/older?before={digits}")
    assert response.status_code == 404


def test_the_pages_still_read_ascii_digits(client, agent, conversation_id):
    login(client, agent.email)
    opened = client.get(f"/?c={conversation_id}")
    assert opened.status_code == 200 and 'id="thread"' in opened.text
    fragment = client.get(f"/inbox/fragments/list?page=2&c={conversation_id}")
    assert fragment.headers["HX-Replace-Url"] == f"/?tab=all&status=open&page=2&c={conversation_id}"


# --- the webhook ------------------------------------------------------------------------------


def _count(model: type) -> int:
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


@pytest.mark.parametrize("deep", [_deep, _deep_objects], ids=["arrays", "objects"])
@pytest.mark.parametrize("where", ["top", "message"])
def test_a_signed_body_100000_levels_deep_is_400_and_stores_nothing(post_webhook, deep, where):
    if where == "top":
        body = deep().encode()
    else:
        text = meta.encode(meta.delivery(meta.value(messages=[meta.message(extra="__deep__")]))).decode()
        body = text.replace('"__deep__"', deep()).encode()
    response = post_webhook(body)
    assert response.status_code == 400, response.status_code
    assert response.get_json()["error"] == "invalid_body"
    assert _count(WebhookDelivery) == 0 and _count(Message) == 0


@pytest.mark.parametrize(
    "where",
    ["body", "name", "wa_id", "phone_number_id", "message id", "key", "type", "status"],
)
def test_a_signed_body_with_lone_surrogates_is_not_a_500(post_webhook, where):
    """Meta's text is kept (the surrogate becomes U+FFFD); nothing answers 500."""
    message = meta.message(content={"body": "hola"})
    contact = meta.contact()
    value = meta.value(messages=[message], contacts=[contact])
    if where == "body":
        message["text"]["body"] = "a\ud800b"
    elif where == "name":
        contact["profile"]["name"] = "Ana \udfff"
    elif where == "wa_id":
        contact["wa_id"] = message["from"] = "549\ud800"
    elif where == "phone_number_id":
        value["metadata"]["phone_number_id"] = "1065\ud800"
    elif where == "message id":
        message["id"] = "wamid.\ud800"
    elif where == "key":
        message["\ud800"] = {"\udc00": "x"}
    elif where == "type":
        message["type"] = "te\ud800xt"
    else:
        value = meta.value(statuses=[meta.status("wamid.\ud800", "deli\ud800vered")])
    body = json.dumps(meta.delivery(value)).encode()  # ASCII: the surrogates escaped as \\udXXX
    assert b"\\ud" in body
    response = post_webhook(body)
    assert response.status_code in (200, 400), (response.status_code, response.get_json())


@pytest.mark.parametrize("depth", [990, 1010, 1500, 2500, 2990, 3010, 5000])
@pytest.mark.parametrize("deep", [_deep, _deep_objects], ids=["arrays", "objects"])
@pytest.mark.parametrize("where", ["message", "value", "text body"])
def test_a_signed_body_nested_around_the_parsers_limits_is_200_or_400_never_500(post_webhook, deep, where, depth):
    """Near the recursion limit, and near the parser's own limit above it."""
    if where == "message":
        payload = meta.delivery(meta.value(messages=[meta.message(extra="__deep__")]))
    elif where == "value":
        payload = meta.delivery({**meta.value(messages=[meta.message()]), "extra": "__deep__"})
    else:
        payload = meta.delivery(meta.value(messages=[meta.message(content={"body": "__deep__"})]))
    body = meta.encode(payload).decode().replace('"__deep__"', deep(depth)).encode()
    response = post_webhook(body)
    assert response.status_code in (200, 400), response.status_code
    if response.status_code == 400:
        assert response.get_json()["error"] == "invalid_body"
        assert _count(WebhookDelivery) == 0


def test_a_signed_body_with_a_surrogate_encoded_as_raw_bytes_is_400(post_webhook):
    """Encoded in the bytes themselves (CESU-8 style) rather than escaped, it is not UTF-8."""
    body = meta.encode(meta.delivery(meta.value(messages=[meta.message(content={"body": "__s__"})])))
    response = post_webhook(body.replace(b"__s__", b"a\xed\xa0\x80b"))
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_body"
    assert _count(WebhookDelivery) == 0
