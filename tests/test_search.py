"""Full-text search over what was said: GET /whatsapp/api/mensajes and its service."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text

from app.extensions import db
from app.models import Contact, Conversation, Message
from app.services.search import MAX_RESULTS, snippet_html, ts_query_text
from tests import meta

API = "/whatsapp/api/mensajes"


def _deliver(post_webhook, wa_id: str, name: str, *messages: dict) -> int:
    for message in messages:
        message["from"] = wa_id
    response = post_webhook(meta.delivery(meta.value(messages=list(messages), contacts=[meta.contact(wa_id, name)])))
    assert response.status_code == 200
    return db.session.execute(
        select(Conversation.id).join(Contact, Contact.id == Conversation.contact_id).where(Contact.wa_id == wa_id)
    ).scalar_one()


def _text(body: str, sender: str = "5491155550001", ts: int | None = None) -> dict:
    return meta.message(sender=sender, ts=ts, content={"body": body})


def _search(client, auth, q: str, **params) -> dict:
    response = client.get(API, headers=auth, query_string={"q": q, **params})
    assert response.status_code == 200, response.json
    return response.json


def _texts(body: dict) -> list[str | None]:
    return [m["text"] for m in body["messages"]]


def _agent_message(conversation_id: int, agent_id: int, body: str) -> Message:
    message = Message(
        conversation_id=conversation_id,
        direction="out",
        sender="agent",
        agent_id=agent_id,
        type="text",
        text=body,
        sent_at=datetime.now(UTC),
        status="sent",
    )
    db.session.add(message)
    db.session.commit()
    return message


# --- matching ---------------------------------------------------------------------------------


def test_accents_and_case_are_ignored_both_ways(client, auth, post_webhook):
    _deliver(post_webhook, "5491100000001", "Ana", _text("¿Me pasás la CANCIÓN del video?"), _text("Nada que ver"))
    assert _texts(_search(client, auth, "cancion")) == ["¿Me pasás la CANCIÓN del video?"]
    assert _texts(_search(client, auth, "Canción")) == ["¿Me pasás la CANCIÓN del video?"]
    assert _texts(_search(client, auth, "CANCION")) == ["¿Me pasás la CANCIÓN del video?"]


def test_spanish_stemming_finds_other_forms_of_the_word(client, auth, post_webhook):
    _deliver(
        post_webhook,
        "5491100000002",
        "Beto",
        _text("Necesito las facturas de marzo"),
        _text("¿Enviaron mi pedido?"),
        _text("Todo bien"),
    )
    assert _texts(_search(client, auth, "factura")) == ["Necesito las facturas de marzo"]
    assert _texts(_search(client, auth, "enviar")) == ["¿Enviaron mi pedido?"]


def test_every_word_must_match_and_the_last_one_matches_as_a_prefix(client, auth, post_webhook):
    _deliver(
        post_webhook,
        "5491100000003",
        "Caro",
        _text("La factura de marzo", ts=int(time.time()) - 10),
        _text("La factura de abril", ts=int(time.time()) - 5),
    )
    assert _texts(_search(client, auth, "factura marzo")) == ["La factura de marzo"]
    assert _texts(_search(client, auth, "factu")) == ["La factura de abril", "La factura de marzo"]
    assert _texts(_search(client, auth, "factura ab")) == []  # two letters: whole words only
    assert _texts(_search(client, auth, "factura abr")) == ["La factura de abril"]


def test_captions_file_names_notes_and_agent_messages_are_found(client, auth, agent, post_webhook):
    image = meta.message("image", sender="5491100000004", content={"id": "111", "caption": "Foto del zapato roto"})
    document = meta.message(
        "document", sender="5491100000004", content={"id": "222", "filename": "presupuesto_cocina-2026.pdf"}
    )
    conversation_id = _deliver(post_webhook, "5491100000004", "Dani", image, document)
    note = client.post(
        f"/whatsapp/api/conversaciones/{conversation_id}/notas", json={"text": "Cliente VIP, llamar"}, headers=auth
    )
    assert note.status_code == 201
    _agent_message(conversation_id, agent.id, "Te mando la etiqueta de devolución")

    caption = _search(client, auth, "zapato")["messages"]
    assert [m["type"] for m in caption] == ["image"] and caption[0]["text"] == "Foto del zapato roto"
    filename = _search(client, auth, "presupuesto cocina")["messages"]
    assert [m["media"]["filename"] for m in filename] == ["presupuesto_cocina-2026.pdf"]
    assert "<mark>presupuesto</mark>" in filename[0]["snippet"]
    notes = _search(client, auth, "vip")["messages"]
    assert [(m["type"], m["sender"]["type"]) for m in notes] == [("note", "agent")]
    outbound = _search(client, auth, "devolucion")["messages"]
    assert [(m["direction"], m["sender"]["agent"]["id"]) for m in outbound] == [("out", agent.id)]


def test_deleted_messages_are_not_found(client, auth, post_webhook):
    kept = _text("Quiero devolver el televisor")
    gone = _text("Mi televisor nuevo no enciende")
    _deliver(post_webhook, "5491100000005", "Eli", kept, gone)
    db.session.execute(text("UPDATE messages SET deleted_at = now() WHERE wamid = :w"), {"w": gone["id"]})
    db.session.commit()
    assert _texts(_search(client, auth, "televisor")) == ["Quiero devolver el televisor"]


# --- the answer -----------------------------------------------------------------------------


def test_each_result_carries_its_conversation_and_an_escaped_highlighted_snippet(client, auth, post_webhook):
    conversation_id = _deliver(
        post_webhook, "5491100000006", "Fer <b>", _text('<script>alert("x")</script> la factura & el "recibo"')
    )
    body = _search(client, auth, "factura")
    (found,) = body["messages"]
    assert found["conversation"] == {
        "id": conversation_id,
        "display_name": "Fer <b>",
        "contact": {"name": "Fer <b>", "phone": "+5491100000006"},
        "status": "open",
    }
    assert found["text"] == '<script>alert("x")</script> la factura & el "recibo"'
    assert "<mark>factura</mark>" in found["snippet"]
    assert "&amp;" in found["snippet"] and "<" not in found["snippet"].replace("<mark>", "").replace("</mark>", "")
    assert body["pagination"] == {"page": 1, "per_page": 20, "total": 1, "pages": 1}


def test_snippet_html_escapes_everything_but_the_marks():
    assert str(snippet_html("a <img onerror=x> \x01b\x02 & c")) == "a &lt;img onerror=x&gt; <mark>b</mark> &amp; c"
    assert str(snippet_html("\x01open")) == "<mark>open</mark>"
    assert str(snippet_html(None)) == ""


def test_query_text_keeps_only_words():
    assert ts_query_text("factura & !(x) | 'y':*") == "factura & x & y"
    assert ts_query_text("cancion de") == "cancion & de"
    assert ts_query_text("pedi") == "pedi:*"


def test_results_are_newest_first_and_paginated(client, auth, post_webhook):
    now = int(time.time())
    messages = [_text(f"pedido número {i}", sender="5491100000007", ts=now - 100 + i) for i in range(5)]
    _deliver(post_webhook, "5491100000007", "Gabi", *messages)
    seen: list[str | None] = []
    for page in (1, 2, 3):
        body = _search(client, auth, "pedido", per_page=2, page=page)
        assert body["pagination"] == {"page": page, "per_page": 2, "total": 5, "pages": 3}
        seen += _texts(body)
    assert seen == [f"pedido número {i}" for i in reversed(range(5))]
    beyond = _search(client, auth, "pedido", per_page=2, page=4)
    assert beyond["messages"] == [] and beyond["pagination"]["total"] == 5


def test_a_common_word_counts_up_to_the_cap_and_pages_still_work(client, auth, post_webhook):
    conversation_id = _deliver(post_webhook, "5491100000008", "Hugo", _text("hola"))
    db.session.execute(
        text(
            "INSERT INTO messages (conversation_id, direction, sender, type, text, sent_at) "
            "SELECT :c, 'in', 'customer', 'text', 'hola otra vez ' || g, now() FROM generate_series(1, :n) g"
        ),
        {"c": conversation_id, "n": MAX_RESULTS + 5},
    )
    db.session.commit()
    body = _search(client, auth, "hola", per_page=100, page=2)
    assert body["pagination"] == {"page": 2, "per_page": 100, "total": MAX_RESULTS, "pages": MAX_RESULTS // 100}
    assert len(body["messages"]) == 100
    ids = [m["id"] for m in body["messages"]]
    assert ids == sorted(ids, reverse=True)


@pytest.mark.parametrize("per_page", [1, 20, 100])
def test_search_runs_a_bounded_number_of_statements_whatever_the_page_size(
    client, auth, post_webhook, count_statements, per_page
):
    for i in range(8):
        _deliver(
            post_webhook,
            f"54911000001{i:02d}",
            f"C{i}",
            _text(f"Consulta por el envío {i}", sender=f"54911000001{i:02d}"),
            _text("Gracias por el envío", sender=f"54911000001{i:02d}"),
        )
    for page in (1, 2):
        with count_statements() as counter:
            response = client.get(API, headers=auth, query_string={"q": "envio", "per_page": per_page, "page": page})
        assert response.status_code == 200
        assert response.json["pagination"]["total"] == 16
        # the token lookup, the count, the page (with conversations, contacts, snippets) and its reactions
        assert counter.count <= 4, counter.statements


def test_the_search_vector_follows_edits_of_the_text(client, auth, post_webhook):
    original = _text("Quiero una silla")
    _deliver(post_webhook, "5491100000012", "Lu", original)
    db.session.execute(text("UPDATE messages SET text = 'Quiero una mesa' WHERE wamid = :w"), {"w": original["id"]})
    db.session.commit()
    assert _texts(_search(client, auth, "silla")) == []
    assert _texts(_search(client, auth, "mesa")) == ["Quiero una mesa"]


# --- bad input and auth ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"q": ""},
        {"q": "   "},
        {"q": "x" * 201},
        {"q": "a\x00b"},
        {"q": "!!! ???"},
        {"q": "hola", "page": "0"},
        {"q": "hola", "page": "x"},
        {"q": "hola", "per_page": "101"},
        {"q": "hola", "per_page": "0"},
    ],
)
def test_bad_parameters_are_400_with_the_parameter_named(client, auth, params):
    response = client.get(API, headers=auth, query_string=params)
    assert response.status_code == 400
    assert response.json["error"] == "invalid_parameter"
    assert response.json["parameter"] in ("q", "page", "per_page")


def test_two_hundred_characters_are_accepted(client, auth):
    assert client.get(API, headers=auth, query_string={"q": "pedido " + "x" * 193}).status_code == 200


def test_search_without_credentials_is_401(client):
    response = client.get(API, query_string={"q": "hola"})
    assert response.status_code == 401
    assert response.json["error"] == "unauthorized"


# --- the inbox: results in the search box, a thread opened at a message -----------------------


def test_the_inbox_search_fragment_lists_matching_messages_escaped_and_linked(client, agent, post_webhook):
    from tests.test_pages import login

    conversation_id = _deliver(
        post_webhook, "5491100000009", "Ines <i>", _text("Llegó la <b>factura</b> duplicada"), _text("ok")
    )
    login(client, agent.email)
    assert client.get("/inbox/fragments/search", query_string={"q": ""}).text == ""
    assert client.get("/inbox/fragments/search", query_string={"q": "?!"}).text == ""
    page = client.get("/inbox/fragments/search", query_string={"q": "facturas", "status": "open"})
    assert page.status_code == 200
    html = page.text
    assert "<mark>factura</mark>" in html
    assert "<b>" not in html and "Ines &lt;i&gt;" in html
    found = db.session.execute(select(Message.id).where(Message.text.like("%factura%"))).scalar_one()
    assert f"c={conversation_id}" in html and f"m={found}" in html
    assert "hits-empty" in client.get("/inbox/fragments/search", query_string={"q": "zzzz"}).text


def test_opening_a_result_renders_the_thread_around_that_message_marked(client, agent, post_webhook):
    from tests.test_pages import login

    now = int(time.time())
    messages = [_text(f"mensaje {i}", ts=now - 500 + i) for i in range(120)]
    messages[10]["text"]["body"] = "el presupuesto del techo"
    conversation_id = _deliver(post_webhook, "5491100000010", "Juan", *messages)
    target = db.session.execute(select(Message.id).where(Message.text == "el presupuesto del techo")).scalar_one()
    login(client, agent.email)
    plain = client.get("/", query_string={"c": conversation_id}).text
    assert f'id="m-{target}"' not in plain  # the newest 40 only
    opened = client.get("/", query_string={"c": conversation_id, "m": target}).text
    assert f'class="msg msg-in is-hit" id="m-{target}"' in opened
    assert f'data-hit="{target}"' in opened and "mensaje 119" in opened  # up to the newest: still live
    assert (
        "every 2s" in opened.split('id="thread"')[1].split(">")[0]
    )  # live: asked when the list moves, and every 30 s (2 s with no list on screen)
    assert "older-cursor" in opened  # older pages still load on scroll
    # Polls keep it marked.
    poll = client.get(f"/inbox/fragments/conversations/{conversation_id}", query_string={"hit": target}).text
    assert f'class="msg msg-in is-hit" id="m-{target}"' in poll and "mensaje 119" in poll
    # Not a message of this conversation: opened as usual.
    assert "is-hit" not in client.get("/", query_string={"c": conversation_id, "m": target + 10_000}).text


def test_a_result_far_back_in_a_long_thread_stops_following_and_links_to_the_newest(client, agent, post_webhook):
    from app.inbox.views import AROUND_AFTER
    from tests.test_pages import login

    now = int(time.time())
    conversation_id = _deliver(post_webhook, "5491100000011", "Kati", _text("la garantía vence", ts=now - 10_000))
    db.session.execute(
        text(
            "INSERT INTO messages (conversation_id, direction, sender, type, text, sent_at) "
            "SELECT :c, 'in', 'customer', 'text', 'otro ' || g, now() - make_interval(secs => 5000 - g) "
            "FROM generate_series(1, :n) g"
        ),
        {"c": conversation_id, "n": AROUND_AFTER + 10},
    )
    db.session.commit()
    target = db.session.execute(select(Message.id).where(Message.text == "la garantía vence")).scalar_one()
    login(client, agent.email)
    opened = client.get("/", query_string={"c": conversation_id, "m": target}).text
    assert "is-hit" in opened
    assert 'hx-trigger="refresh"' in opened.split('id="thread"')[1].split(">")[0]
    assert "Go to the newest messages" in opened or "Ir a los mensajes más recientes" in opened
