"""Contact profiles through HTTP: the team's name kept apart from WhatsApp's, notes, attributes,
the conversation history, the list showing and searching the team's name, and bad input."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Contact, Conversation
from tests import meta
from tests.test_openapi import assert_documented

WA_ID = "5491155550001"
LIST = "/whatsapp/api/conversaciones"


@pytest.fixture
def contact_id(post_webhook) -> int:
    """A customer who wrote once (WhatsApp profile name "Ana Pérez")."""
    assert post_webhook(meta.delivery(meta.value(messages=[meta.message()]))).status_code == 200
    return db.session.execute(select(Contact.id)).scalar_one()


def _url(contact_id: int) -> str:
    return f"/whatsapp/api/contactos/{contact_id}"


def _stored(contact_id: int) -> Contact:
    db.session.expire_all()
    return db.session.get(Contact, contact_id)


def test_a_contacts_profile_shows_whatsapps_fields_and_the_history(client, auth, contact_id):
    response = client.get(_url(contact_id), headers=auth)
    assert response.status_code == 200
    body = response.json
    conversation = db.session.execute(select(Conversation)).scalar_one()
    assert body["id"] == contact_id and body["wa_id"] == WA_ID and body["phone"] == "+" + WA_ID
    assert body["profile_name"] == "Ana Pérez" and body["display_name"] is None and body["name"] == "Ana Pérez"
    assert body["notes"] == "" and body["attributes"] == {}
    [history] = body["conversations"]
    assert history["id"] == conversation.id and history["status"] == "open" and history["unread_count"] == 1
    assert history["last_message_preview"] == "Hola, ¿tienen turnos para mañana?"
    assert history["last_activity_at"]


def test_the_conversation_names_its_contact_for_the_profile(client, auth, contact_id):
    [listed] = client.get(LIST, headers=auth).json["conversations"]
    assert listed["contact"]["id"] == contact_id


def test_the_team_renames_a_contact_and_whatsapps_name_is_kept_apart(client, auth, contact_id, post_webhook):
    response = client.patch(_url(contact_id), json={"display_name": "  Ana (panadería)  "}, headers=auth)
    assert response.status_code == 200, response.json
    assert response.json["display_name"] == "Ana (panadería)" and response.json["name"] == "Ana (panadería)"
    assert response.json["profile_name"] == "Ana Pérez"
    [listed] = client.get(LIST, headers=auth).json["conversations"]
    assert listed["display_name"] == "Ana (panadería)" and listed["contact"]["name"] == "Ana Pérez"
    # A webhook with a new profile name changes WhatsApp's name, never the team's.
    renamed = meta.value(messages=[meta.message()], contacts=[meta.contact(WA_ID, "Ana P. García")])
    assert post_webhook(meta.delivery(renamed)).status_code == 200
    stored = _stored(contact_id)
    assert (stored.display_name, stored.profile_name) == ("Ana (panadería)", "Ana P. García")
    assert client.get(LIST, headers=auth).json["conversations"][0]["display_name"] == "Ana (panadería)"
    # Clearing the team's name shows WhatsApp's again.
    cleared = client.patch(_url(contact_id), json={"display_name": None}, headers=auth)
    assert cleared.json["display_name"] is None and cleared.json["name"] == "Ana P. García"


def test_the_lists_search_finds_the_teams_name(client, auth, contact_id):
    client.patch(_url(contact_id), json={"display_name": "Panadería Sol"}, headers=auth)
    found = client.get(LIST, query_string={"q": "panaderia sol"}, headers=auth).json["conversations"]
    assert found == []  # substring search, accents count
    found = client.get(LIST, query_string={"q": "panadería"}, headers=auth).json["conversations"]
    assert [c["contact"]["id"] for c in found] == [contact_id]
    assert client.get(LIST, query_string={"q": "Ana Pérez"}, headers=auth).json["conversations"]  # still


def test_a_rename_is_seen_by_a_cached_list_at_once(client, auth, contact_id):
    first = client.get(LIST, headers=auth)
    client.patch(_url(contact_id), json={"display_name": "Ana nueva"}, headers=auth)
    second = client.get(LIST, headers=auth)
    assert first.json["conversations"][0]["display_name"] == "Ana Pérez"
    assert second.json["conversations"][0]["display_name"] == "Ana nueva"
    assert first.headers["ETag"] != second.headers["ETag"]


def test_notes_and_attributes_are_kept_and_replaced(client, auth, contact_id):
    notes = "Prefiere que la llamen por la tarde.\nCliente desde 2021."
    attributes = {"ciudad": "Sevilla", "cliente desde": "2021"}
    response = client.patch(_url(contact_id), json={"notes": notes, "attributes": attributes}, headers=auth)
    assert response.status_code == 200
    assert response.json["notes"] == notes and response.json["attributes"] == attributes
    assert client.get(_url(contact_id), headers=auth).json["attributes"] == attributes
    # Attributes are replaced whole; notes are left alone when not sent.
    replaced = client.patch(_url(contact_id), json={"attributes": {"ciudad": "Cádiz"}}, headers=auth).json
    assert replaced["attributes"] == {"ciudad": "Cádiz"} and replaced["notes"] == notes
    emptied = client.patch(_url(contact_id), json={"notes": "", "attributes": {}}, headers=auth).json
    assert emptied["notes"] == "" and emptied["attributes"] == {}
    assert _stored(contact_id).notes is None


def test_limits_at_the_edge_are_accepted(client, auth, contact_id):
    body = {
        "notes": "n" * 10_000,
        "attributes": {f"{i:02d}" + "k" * 62: "v" * 1000 for i in range(30)},
        "display_name": "d" * 200,
    }
    response = client.patch(_url(contact_id), json=body, headers=auth)
    assert response.status_code == 200, response.json
    assert len(response.json["attributes"]) == 30


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"notes": "n" * 10_001},
        {"attributes": {str(i): "v" for i in range(31)}},
        {"attributes": {"k" * 65: "v"}},
        {"attributes": {"ciudad": "v" * 1001}},
        {"attributes": {"   ": "v"}},
        {"attributes": {"ciudad": 3}},
        {"attributes": None},
        {"attributes": ["ciudad"]},
        {"display_name": ""},
        {"display_name": "   "},
        {"display_name": "d" * 201},
        {"display_name": "Ana\x00"},
        {"profile_name": "Otra"},  # WhatsApp's, not the team's
        {"wa_id": "34600000000"},
        {"display_name": "Ana", "unknown": 1},
    ],
)
def test_bad_patches_are_400_and_change_nothing(client, auth, contact_id, body):
    client.patch(
        _url(contact_id), json={"display_name": "Ana", "notes": "antes", "attributes": {"a": "b"}}, headers=auth
    )
    response = client.patch(_url(contact_id), json=body, headers=auth)
    assert response.status_code == 400, response.json
    assert response.json["error"] == "invalid_body" and response.json["message"]
    stored = _stored(contact_id)
    assert (stored.display_name, stored.notes, stored.attributes, stored.wa_id, stored.profile_name) == (
        "Ana",
        "antes",
        {"a": "b"},
        WA_ID,
        "Ana Pérez",
    )


def test_unknown_contacts_are_404(client, auth, contact_id):
    for method in ("get", "patch"):
        response = getattr(client, method)(_url(contact_id + 1000), json={"notes": "x"}, headers=auth)
        assert response.status_code == 404 and response.json["error"] == "not_found"
    assert client.get("/whatsapp/api/contactos/99999999999", headers=auth).status_code == 404
    assert client.get("/whatsapp/api/contactos/abc", headers=auth).status_code == 404


def test_profiles_need_credentials(client, contact_id):
    assert client.get(_url(contact_id)).status_code == 401
    assert client.patch(_url(contact_id), json={"notes": "x"}).status_code == 401
    assert _stored(contact_id).notes is None


def test_the_history_lists_every_conversation_of_the_contact(client, auth, contact_id, post_webhook):
    other_number = meta.value(messages=[meta.message()], phone_number_id="999000111222")
    assert post_webhook(meta.delivery(other_number)).status_code == 200
    history = client.get(_url(contact_id), headers=auth).json["conversations"]
    assert len(history) == 2
    assert {c["id"] for c in history} == set(db.session.execute(select(Conversation.id)).scalars())


def test_every_answer_is_as_documented(client, auth, contact_id):
    path = "/whatsapp/api/contactos/{contact_id}"
    assert_documented(client.get(_url(contact_id), headers=auth), path)
    body = {"display_name": "Ana", "notes": "x", "attributes": {"a": "b"}}
    assert_documented(client.patch(_url(contact_id), json=body, headers=auth), path, "patch")
    assert_documented(client.patch(_url(contact_id), json={"notes": 1}, headers=auth), path, "patch")
    assert_documented(client.get(_url(contact_id + 1000), headers=auth), path)
