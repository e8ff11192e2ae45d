"""The read API: auth, the conversation list (shape, filters, pagination, statement count), threads."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from app.auth.sessions import GENERATION_KEY, LOGIN_AT_KEY, SEEN_AT_KEY
from app.extensions import db
from app.models import ApiToken, Conversation, Message
from app.services import agents as agent_service
from tests import meta


def _conversation_with(post_webhook, wa_id: str, name: str, count: int = 1, ts: int | None = None) -> list[dict]:
    ts = ts or int(time.time())
    messages = [
        meta.message(sender=wa_id, ts=ts - (count - i), content={"body": f"{name} mensaje {i}"}) for i in range(count)
    ]
    response = post_webhook(meta.delivery(meta.value(messages=messages, contacts=[meta.contact(wa_id, name)])))
    assert response.status_code == 200
    return messages


def _conversation_id(wa_id: str) -> int:
    from app.models import Contact

    return db.session.execute(
        select(Conversation.id).join(Contact, Contact.id == Conversation.contact_id).where(Contact.wa_id == wa_id)
    ).scalar_one()


# --- auth -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/whatsapp/api/conversaciones", "/whatsapp/api/conversaciones/1", "/whatsapp/api/conversaciones/1/mensajes"],
)
def test_api_without_credentials_is_401_json(client, path):
    response = client.get(path)
    assert response.status_code == 401
    assert response.json["error"] == "unauthorized"
    assert "Bearer" in response.headers["WWW-Authenticate"]


def test_unknown_malformed_revoked_and_expired_tokens_are_refused(client, agent, token):
    assert client.get("/whatsapp/api/conversaciones", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get("/whatsapp/api/conversaciones", headers={"Authorization": f"Basic {token}"}).status_code == 401
    assert client.get("/whatsapp/api/conversaciones", headers={"Authorization": "Bearer "}).status_code == 401
    ok = client.get("/whatsapp/api/conversaciones", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200
    db.session.execute(update(ApiToken).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    db.session.commit()
    assert client.get("/whatsapp/api/conversaciones", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    fresh = agent_service.create_token(agent.email)
    assert client.get("/whatsapp/api/conversaciones", headers={"Authorization": f"Bearer {fresh}"}).status_code == 200
    agent_service.deactivate_agent(agent.email)
    assert client.get("/whatsapp/api/conversaciones", headers={"Authorization": f"Bearer {fresh}"}).status_code == 401


def test_tokens_are_stored_hashed(token):
    stored = db.session.execute(select(ApiToken.token_hash)).scalar_one()
    assert token not in stored and len(stored) == 64


def test_logged_in_session_is_accepted(client, agent):
    now = int(time.time())
    with client.session_transaction() as session:
        session["_user_id"] = str(agent.id)
        session["_fresh"] = True
        session.update({GENERATION_KEY: agent.session_generation, LOGIN_AT_KEY: now, SEEN_AT_KEY: now})
    assert client.get("/whatsapp/api/conversaciones").status_code == 200


# --- the list -------------------------------------------------------------------------------


def test_list_shape_counts_window_and_sorting(client, auth, post_webhook):
    now = int(time.time())
    _conversation_with(post_webhook, "5491100000001", "Ana", count=3, ts=now - 3600)
    _conversation_with(post_webhook, "5491100000002", "Beto", count=1, ts=now - 60)
    response = client.get("/whatsapp/api/conversaciones", headers=auth)
    assert response.status_code == 200
    body = response.json
    assert body["pagination"] == {"page": 1, "per_page": 50, "total": 2, "pages": 1}
    assert body["counts"] == {"mine": 0, "unassigned": 2, "all": 2}
    first, second = body["conversations"]
    assert [first["display_name"], second["display_name"]] == ["Beto", "Ana"]  # newest activity first
    assert second["unread_count"] == 3
    assert second["contact"] == {
        "id": second["contact"]["id"],
        "wa_id": "5491100000001",
        "user_id": None,
        "name": "Ana",
        "display_name": None,
    }
    assert second["status"] == "open" and second["assignee"] is None
    assert second["last_message"]["preview"] == "Ana mensaje 2"
    assert second["last_message"]["direction"] == "in" and second["last_message"]["type"] == "text"
    assert second["last_agent_message"] is None
    last_customer = datetime.fromisoformat(second["last_customer_message_at"])
    assert int(last_customer.timestamp()) == now - 3600 - 1
    assert datetime.fromisoformat(second["window_expires_at"]) == last_customer + timedelta(hours=24)
    assert set(first) >= {"id", "updated_at", "last_activity_at"}


def test_answers_are_the_json_flasks_own_encoder_writes(client, auth, app, post_webhook):
    """Answers are encoded by orjson (app/json_provider.py): the same document as Flask's
    encoder — keys sorted, compact, a trailing newline, times as ISO 8601 with "Z"."""
    import json

    from flask.json.provider import DefaultJSONProvider

    _conversation_with(post_webhook, "5491100000003", "Ñandú", count=2, ts=int(time.time()) - 120)
    response = client.get("/whatsapp/api/conversaciones", headers=auth)
    assert response.mimetype == "application/json" and response.data.endswith(b"}\n")
    body = json.loads(response.data)
    with app.app_context():
        flasks = DefaultJSONProvider(app).response(body).get_data()
    assert (
        response.data
        == json.dumps(json.loads(flasks), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
    )
    assert body["conversations"][0]["display_name"] == "Ñandú"
    assert body["conversations"][0]["last_message"]["sent_at"].endswith("Z")


def test_filters_by_assignee_status_unread_and_search(client, auth, agent, other_agent, post_webhook):
    for i, name in enumerate(["Ana López", "Beto Díaz", "Carla Núñez", "Dario Ruiz"]):
        _conversation_with(post_webhook, f"54911000000{i}", name)
    ids = {
        name: _conversation_id(f"54911000000{i}")
        for i, name in enumerate(["Ana López", "Beto Díaz", "Carla Núñez", "Dario Ruiz"])
    }
    db.session.execute(update(Conversation).where(Conversation.id == ids["Ana López"]).values(assignee_id=agent.id))
    db.session.execute(
        update(Conversation).where(Conversation.id == ids["Beto Díaz"]).values(assignee_id=other_agent.id)
    )
    db.session.execute(update(Conversation).where(Conversation.id == ids["Carla Núñez"]).values(status="resolved"))
    db.session.execute(update(Conversation).where(Conversation.id == ids["Dario Ruiz"]).values(unread_count=0))
    db.session.commit()

    def names(**params) -> list[str]:
        response = client.get("/whatsapp/api/conversaciones", headers=auth, query_string=params)
        assert response.status_code == 200, response.json
        return sorted(c["display_name"] for c in response.json["conversations"])

    assert names(assignee="me") == ["Ana López"]
    assert names(assignee="unassigned") == ["Carla Núñez", "Dario Ruiz"]
    assert names(assignee=str(other_agent.id)) == ["Beto Díaz"]
    assert names(assignee="all") == names() == ["Ana López", "Beto Díaz", "Carla Núñez", "Dario Ruiz"]
    assert names(status="resolved") == ["Carla Núñez"]
    assert names(status="open,pending") == ["Ana López", "Beto Díaz", "Dario Ruiz"]
    assert names(unread="true") == ["Ana López", "Beto Díaz", "Carla Núñez"]
    assert names(unread="false") == ["Dario Ruiz"]
    assert names(q="núñez") == ["Carla Núñez"]
    assert names(q="5491100000") == ["Ana López", "Beto Díaz", "Carla Núñez", "Dario Ruiz"]
    assert names(q="100%_") == []
    counts = client.get("/whatsapp/api/conversaciones", headers=auth, query_string={"status": "open"}).json["counts"]
    assert counts == {"mine": 1, "unassigned": 1, "all": 3}


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"page": "0"}, "page"),
        ({"page": "abc"}, "page"),
        ({"page": "-1"}, "page"),
        ({"per_page": "101"}, "per_page"),
        ({"per_page": "0"}, "per_page"),
        ({"per_page": "1.5"}, "per_page"),
        ({"status": "closed"}, "status"),
        ({"assignee": "someone"}, "assignee"),
        ({"assignee": "99999999999999"}, "assignee"),
        ({"unread": "maybe"}, "unread"),
        ({"q": "x" * 101}, "q"),
    ],
)
def test_bad_list_parameters_are_400_with_a_message(client, auth, params, parameter):
    response = client.get("/whatsapp/api/conversaciones", headers=auth, query_string=params)
    assert response.status_code == 400
    assert response.json["error"] == "invalid_parameter" and response.json["parameter"] == parameter
    assert response.json["message"]


def test_pagination_edges(client, auth, post_webhook):
    now = int(time.time())
    for i in range(5):
        _conversation_with(post_webhook, f"5491200000{i:02d}", f"Cliente {i}", ts=now - i * 10)
    seen = []
    for page in (1, 2, 3):
        body = client.get("/whatsapp/api/conversaciones", headers=auth, query_string={"per_page": 2, "page": page}).json
        assert body["pagination"] == {"page": page, "per_page": 2, "total": 5, "pages": 3}
        seen += [c["display_name"] for c in body["conversations"]]
    assert seen == [f"Cliente {i}" for i in range(5)]
    beyond = client.get("/whatsapp/api/conversaciones", headers=auth, query_string={"per_page": 2, "page": 4}).json
    assert beyond["conversations"] == [] and beyond["pagination"]["total"] == 5
    empty = client.get("/whatsapp/api/conversaciones", headers=auth, query_string={"q": "nadie"}).json
    assert empty["pagination"] == {"page": 1, "per_page": 50, "total": 0, "pages": 0}


@pytest.mark.parametrize("per_page", [1, 10, 50, 100])
@pytest.mark.parametrize("by_label", [False, True])
def test_list_runs_at_most_four_statements_whatever_the_page_size(
    client, auth, post_webhook, count_statements, per_page, by_label
):
    """Every row carries its labels, and `label=` filters, within the budget (issue 12: ≤ 4)."""
    for i in range(12):
        _conversation_with(post_webhook, f"5491300000{i:02d}", f"C{i}", count=2)
    labels = [
        client.post("/whatsapp/api/etiquetas", json={"name": f"L{n}", "color": "#0969da"}, headers=auth).json["id"]
        for n in range(3)
    ]
    for i in range(12):
        cid = _conversation_id(f"5491300000{i:02d}")
        chosen = labels[: 1 + i % 3]
        assert client.patch(f"/whatsapp/api/conversaciones/{cid}", json={"labels": chosen}, headers=auth).status_code
    query: dict = {"per_page": per_page, "q": "C", "status": "open"}
    if by_label:
        query["label"] = labels[2]  # every third conversation carries it
    for page in (1, 2):
        with count_statements() as counter:
            response = client.get("/whatsapp/api/conversaciones", headers=auth, query_string={**query, "page": page})
        assert response.status_code == 200
        # the token lookup, the counts and the page (labels included): never one per conversation
        assert 2 <= counter.count <= 4, counter.statements
        rows = response.json["conversations"]
        assert all(row["labels"] for row in rows)
        if by_label:
            assert response.json["pagination"]["total"] == 4
            assert all(labels[2] in [item["id"] for item in row["labels"]] for row in rows)


def test_unread_counts_are_exact_beyond_ten(client, auth, post_webhook):
    _conversation_with(post_webhook, "5491400000001", "Muchos", count=25)
    body = client.get("/whatsapp/api/conversaciones", headers=auth).json
    assert body["conversations"][0]["unread_count"] == 25
    stored_unread = (
        db.session.execute(select(Message).where(Message.direction == "in", Message.is_read.is_(False))).scalars().all()
    )
    assert len(stored_unread) == 25


# --- one conversation and its thread ---------------------------------------------------------


def test_conversation_detail_and_404(client, auth, post_webhook):
    _conversation_with(post_webhook, "5491500000001", "Detalle")
    cid = _conversation_id("5491500000001")
    response = client.get(f"/whatsapp/api/conversaciones/{cid}", headers=auth)
    assert response.status_code == 200 and response.json["display_name"] == "Detalle"
    for missing in (cid + 1000, 2**40):
        response = client.get(f"/whatsapp/api/conversaciones/{missing}", headers=auth)
        assert response.status_code == 404 and response.json["error"] == "not_found"
        assert client.get(f"/whatsapp/api/conversaciones/{missing}/mensajes", headers=auth).status_code == 404


def test_thread_pages_backwards_with_an_id_cursor(client, auth, post_webhook):
    sent = _conversation_with(post_webhook, "5491600000001", "Hilo", count=7)
    cid = _conversation_id("5491600000001")
    url = f"/whatsapp/api/conversaciones/{cid}/mensajes"
    first = client.get(url, headers=auth, query_string={"limit": 3}).json
    assert [m["wamid"] for m in first["messages"]] == [m["id"] for m in sent[4:]]  # oldest to newest
    assert first["next_cursor"] == first["messages"][0]["id"]
    second = client.get(url, headers=auth, query_string={"limit": 3, "before": first["next_cursor"]}).json
    assert [m["wamid"] for m in second["messages"]] == [m["id"] for m in sent[1:4]]
    third = client.get(url, headers=auth, query_string={"limit": 3, "before": second["next_cursor"]}).json
    assert [m["wamid"] for m in third["messages"]] == [sent[0]["id"]]
    assert third["next_cursor"] is None
    everything = client.get(url, headers=auth).json
    assert len(everything["messages"]) == 7 and everything["next_cursor"] is None


@pytest.mark.parametrize("params", [{"limit": "0"}, {"limit": "101"}, {"before": "x"}, {"before": "999999999"}])
def test_bad_thread_parameters_are_400(client, auth, post_webhook, params):
    _conversation_with(post_webhook, "5491600000002", "Malos")
    cid = _conversation_id("5491600000002")
    response = client.get(f"/whatsapp/api/conversaciones/{cid}/mensajes", headers=auth, query_string=params)
    assert response.status_code == 400 and response.json["message"]


def test_thread_shows_types_replies_reactions_and_hides_reaction_events(client, auth, post_webhook):
    wa_id = "5491700000001"
    question = meta.message(sender=wa_id, content={"body": "¿Precio del envío?"})
    image = meta.message("image", sender=wa_id, content={"id": "media-9", "mime_type": "image/png", "caption": "Así"})
    location = meta.message("location", sender=wa_id, content={"latitude": 1.5, "longitude": 2.5, "name": "Casa"})
    reply = meta.message(sender=wa_id, content={"body": "Perdón, era esto"}, context={"id": question["id"]})
    reaction = meta.message("reaction", sender=wa_id, content={"message_id": image["id"], "emoji": "❤️"})
    post_webhook(
        meta.delivery(
            meta.value(messages=[question, image, location, reply, reaction], contacts=[meta.contact(wa_id, "Tipos")])
        )
    )
    cid = _conversation_id(wa_id)
    messages = client.get(f"/whatsapp/api/conversaciones/{cid}/mensajes", headers=auth).json["messages"]
    by_wamid = {m["wamid"]: m for m in messages}
    assert reaction["id"] not in by_wamid
    assert by_wamid[image["id"]]["media"]["id"] == "media-9" and by_wamid[image["id"]]["text"] == "Así"
    assert [r["emoji"] for r in by_wamid[image["id"]]["reactions"]] == ["❤️"]
    assert by_wamid[location["id"]]["location"]["latitude"] == 1.5
    assert by_wamid[reply["id"]]["reply_to"]["wamid"] == question["id"]
    assert by_wamid[reply["id"]]["reply_to"]["preview"] == "¿Precio del envío?"
    assert by_wamid[question["id"]]["sender"] == {"type": "customer"}
    removal = meta.message("reaction", sender=wa_id, content={"message_id": image["id"]})
    post_webhook(meta.delivery(meta.value(messages=[removal], contacts=[meta.contact(wa_id, "Tipos")])))
    messages = client.get(f"/whatsapp/api/conversaciones/{cid}/mensajes", headers=auth).json["messages"]
    assert {m["wamid"]: m for m in messages}[image["id"]]["reactions"] == []


def test_html_in_customer_text_is_returned_as_data(client, auth, post_webhook):
    _conversation_with(post_webhook, "5491800000001", "<script>alert(1)</script>")
    body = client.get("/whatsapp/api/conversaciones", headers=auth)
    assert body.mimetype == "application/json"
    assert body.json["conversations"][0]["display_name"] == "<script>alert(1)</script>"


def test_list_and_thread_answer_304_to_a_matching_etag_and_200_after_a_change(client, auth, post_webhook):
    _conversation_with(post_webhook, "5491900000001", "Etag")
    cid = _conversation_id("5491900000001")
    etags = {}
    for url in (
        "/whatsapp/api/conversaciones",
        f"/whatsapp/api/conversaciones/{cid}",
        f"/whatsapp/api/conversaciones/{cid}/mensajes",
    ):
        first = client.get(url, headers=auth)
        etags[url] = first.headers["ETag"]
        assert first.status_code == 200 and etags[url]
        again = client.get(url, headers={**auth, "If-None-Match": etags[url]})
        assert again.status_code == 304 and again.data == b""
    _conversation_with(post_webhook, "5491900000001", "Etag")
    for url, etag in etags.items():
        changed = client.get(url, headers={**auth, "If-None-Match": etag})
        assert changed.status_code == 200 and changed.headers["ETag"] != etag


@pytest.mark.parametrize("params", [{"page": "²"}, {"per_page": "١٠"}, {"assignee": "³"}, {"assignee": "0"}])
def test_non_ascii_digits_and_agent_zero_are_400_not_500(client, auth, params):
    response = client.get("/whatsapp/api/conversaciones", headers=auth, query_string=params)
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"page": "1.0"}, "page"),
        ({"page": "+1"}, "page"),
        ({"page": " 1"}, "page"),
        ({"per_page": "1e2"}, "per_page"),
        ({"unread": "on"}, "unread"),
        ({"status": "open,closed"}, "status"),
        ({"assignee": "2147483648"}, "assignee"),
    ],
)
def test_query_integers_are_ascii_digits_and_booleans_are_words(client, auth, params, parameter):
    response = client.get("/whatsapp/api/conversaciones", headers=auth, query_string=params)
    assert response.status_code == 400
    body = response.json
    assert body["error"] == "invalid_parameter" and body["parameter"] == parameter
    assert body["message"].startswith(f"'{parameter}' ")


def test_empty_and_repeated_query_parameters_read_as_before(client, auth, post_webhook):
    _conversation_with(post_webhook, "5491900000101", "Repetida")
    empty = client.get("/whatsapp/api/conversaciones?page=&per_page=&status=&assignee=&unread=&q=", headers=auth)
    assert empty.status_code == 200 and empty.json["pagination"]["per_page"] == 50
    repeated = client.get("/whatsapp/api/conversaciones?per_page=1&per_page=500", headers=auth)
    assert repeated.status_code == 200 and repeated.json["pagination"]["per_page"] == 1
    conversation_id = empty.json["conversations"][0]["id"]
    thread = client.get(f"/whatsapp/api/conversaciones/{conversation_id}/mensajes?limit=0", headers=auth)
    assert thread.status_code == 400 and thread.json["parameter"] == "limit"


def test_405_keeps_its_allow_header(client, auth):
    response = client.delete("/whatsapp/api/conversaciones", headers=auth)
    assert response.status_code == 405 and "GET" in response.headers["Allow"]


def test_deleted_messages_show_no_preview_anywhere(client, auth, post_webhook):
    wa_id = "5491950000001"
    original = meta.message(sender=wa_id, content={"body": "texto que se borra"})
    reply = meta.message(sender=wa_id, content={"body": "respuesta"}, context={"id": original["id"]})
    revoke = meta.message("revoke", sender=wa_id, content={"original_message_id": original["id"]})
    post_webhook(meta.delivery(meta.value(messages=[original, reply], contacts=[meta.contact(wa_id, "Borra")])))
    post_webhook(meta.delivery(meta.value(messages=[revoke], contacts=[meta.contact(wa_id, "Borra")])))
    cid = _conversation_id(wa_id)
    thread = client.get(f"/whatsapp/api/conversaciones/{cid}/mensajes", headers=auth).json["messages"]
    by_wamid = {m["wamid"]: m for m in thread}
    assert by_wamid[original["id"]]["deleted"] is True and by_wamid[original["id"]]["text"] is None
    assert by_wamid[reply["id"]]["reply_to"]["preview"] is None
    assert "texto que se borra" not in client.get(f"/whatsapp/api/conversaciones/{cid}/mensajes", headers=auth).text
