"""Labels: admins define them (`/etiquetas`), agents put them on conversations (PATCH
`labels`), the list filters by them and shows them; bad input is a clear 4xx that changes
nothing; ETags move when labels change."""

from __future__ import annotations

import itertools
import time

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import Contact, Conversation, ConversationLabel, Label
from app.services import agents as agent_service
from tests import meta
from tests.test_openapi import assert_documented

API = "/whatsapp/api"


def _conversation(post_webhook, wa_id: str, name: str) -> int:
    message = meta.message(sender=wa_id, ts=int(time.time()), content={"body": f"Hola de {name}"})
    response = post_webhook(meta.delivery(meta.value(messages=[message], contacts=[meta.contact(wa_id, name)])))
    assert response.status_code == 200
    return db.session.execute(
        select(Conversation.id).join(Contact, Contact.id == Conversation.contact_id).where(Contact.wa_id == wa_id)
    ).scalar_one()


def _create(client, auth, name: str, color: str = "#1f883d"):  # type: ignore[no-untyped-def]
    return client.post(f"{API}/etiquetas", json={"name": name, "color": color}, headers=auth)


def _label_count() -> int:
    return db.session.execute(select(func.count()).select_from(Label)).scalar_one()


def _links() -> set[tuple[int, int]]:
    db.session.expire_all()
    return {(r.conversation_id, r.label_id) for r in db.session.execute(select(ConversationLabel)).scalars()}


@pytest.fixture
def agent_auth(other_agent) -> dict[str, str]:
    """Beto, not an admin."""
    return {"Authorization": f"Bearer {agent_service.create_token(other_agent.email)}"}


# --- defining labels --------------------------------------------------------------------------


def test_an_admin_creates_lists_renames_and_deletes_labels(client, auth):
    created = _create(client, auth, "  Factura  ", "#1F883D")
    assert created.status_code == 201
    body = assert_documented(created, "/whatsapp/api/etiquetas", "post")
    assert body["name"] == "Factura" and body["color"] == "#1f883d"
    _create(client, auth, "urgente", "#cf222e")
    listed = client.get(f"{API}/etiquetas", headers=auth)
    assert [item["name"] for item in assert_documented(listed, "/whatsapp/api/etiquetas")["labels"]] == [
        "Factura",
        "urgente",
    ]
    url = f"{API}/etiquetas/{body['id']}"
    renamed = client.patch(url, json={"name": "Facturación", "color": "#0969da"}, headers=auth)
    assert assert_documented(renamed, "/whatsapp/api/etiquetas/{label_id}", "patch")["name"] == "Facturación"
    assert renamed.json["color"] == "#0969da"
    deleted = client.delete(url, headers=auth)
    assert deleted.status_code == 204 and deleted.get_data() == b""
    assert client.delete(url, headers=auth).status_code == 404
    assert client.patch(url, json={"name": "x"}, headers=auth).status_code == 404
    assert [item["name"] for item in client.get(f"{API}/etiquetas", headers=auth).json["labels"]] == ["urgente"]


@pytest.mark.parametrize(
    "body",
    [
        {"name": "Rojo", "color": "red"},
        {"name": "Corto", "color": "#12345"},
        {"name": "Largo", "color": "#1234567"},
        {"name": "Tres", "color": "#f00"},
        {"name": "Sin almohadilla", "color": "1f883d"},
        {"name": "Letras", "color": "#zzzzzz"},
        {"name": "", "color": "#1f883d"},
        {"name": "   ", "color": "#1f883d"},
        {"name": "x" * 41, "color": "#1f883d"},
        {"name": "nul\x00", "color": "#1f883d"},
        {"name": 5, "color": "#1f883d"},
        {"name": "Sin color"},
        {"color": "#1f883d"},
        {"name": "Extra", "color": "#1f883d", "icon": "x"},
    ],
)
def test_invalid_labels_are_400_and_change_nothing(client, auth, body):
    response = client.post(f"{API}/etiquetas", json=body, headers=auth)
    assert response.status_code == 400, response.json
    assert assert_documented(response, "/whatsapp/api/etiquetas", "post")["error"] == "invalid_body"
    assert _label_count() == 0


def test_a_duplicate_name_in_any_case_is_409(client, auth):
    first = _create(client, auth, "Factura").json
    again = _create(client, auth, "FACTURA", "#000000")
    assert again.status_code == 409 and again.json["error"] == "duplicate_label_name"
    assert_documented(again, "/whatsapp/api/etiquetas", "post")
    other = _create(client, auth, "Urgente").json
    clash = client.patch(f"{API}/etiquetas/{other['id']}", json={"name": " factura "}, headers=auth)
    assert clash.status_code == 409 and clash.json["error"] == "duplicate_label_name"
    db.session.expire_all()
    assert db.session.get(Label, other["id"]).name == "Urgente"
    assert db.session.get(Label, first["id"]).color == "#1f883d"
    bad = client.patch(f"{API}/etiquetas/{other['id']}", json={"color": "blue"}, headers=auth)
    assert bad.status_code == 400
    assert client.patch(f"{API}/etiquetas/{other['id']}", json={}, headers=auth).status_code == 400


def test_agents_list_labels_but_only_admins_define_them(client, auth, agent_auth):
    label = _create(client, auth, "Factura").json
    assert client.get(f"{API}/etiquetas", headers=agent_auth).json["labels"][0]["id"] == label["id"]
    for response in (
        _create(client, agent_auth, "Beto"),
        client.patch(f"{API}/etiquetas/{label['id']}", json={"name": "Otro"}, headers=agent_auth),
        client.delete(f"{API}/etiquetas/{label['id']}", headers=agent_auth),
    ):
        assert response.status_code == 403 and response.json["error"] == "forbidden"
    db.session.expire_all()
    assert _label_count() == 1 and db.session.get(Label, label["id"]).name == "Factura"


# --- labels on conversations ------------------------------------------------------------------


def test_patch_replaces_the_labels_and_every_view_shows_them(client, auth, agent_auth, post_webhook):
    cid = _conversation(post_webhook, "5491170000001", "Ana")
    factura = _create(client, auth, "factura", "#1f883d").json
    urgente = _create(client, auth, "Urgente", "#cf222e").json
    url = f"{API}/conversaciones/{cid}"
    # Any agent labels a conversation; the answer shows the labels by name.
    patched = client.patch(url, json={"labels": [urgente["id"], factura["id"], urgente["id"]]}, headers=agent_auth)
    assert patched.status_code == 200
    expected = [
        {"id": factura["id"], "name": "factura", "color": "#1f883d"},
        {"id": urgente["id"], "name": "Urgente", "color": "#cf222e"},
    ]
    assert assert_documented(patched, "/whatsapp/api/conversaciones/{conversation_id}", "patch")["labels"] == expected
    assert client.get(url, headers=auth).json["labels"] == expected
    listed = client.get(f"{API}/conversaciones", headers=auth)
    assert assert_documented(listed, "/whatsapp/api/conversaciones")["conversations"][0]["labels"] == expected
    # Replaced, not added to; [] clears.
    assert client.patch(url, json={"labels": [urgente["id"]]}, headers=auth).json["labels"] == [expected[1]]
    assert client.patch(url, json={"labels": []}, headers=auth).json["labels"] == []
    assert _links() == set()


@pytest.mark.parametrize(
    "body",
    [
        {"labels": "factura"},
        {"labels": [0]},
        {"labels": ["1"]},
        {"labels": [True]},
        {"labels": None},
        {"labels": list(range(1, 52))},
        {"labels": [1], "colour": "x"},
    ],
)
def test_malformed_label_lists_are_400_and_change_nothing(client, auth, post_webhook, body):
    cid = _conversation(post_webhook, "5491170000002", "Beto")
    label = _create(client, auth, "Factura").json
    client.patch(f"{API}/conversaciones/{cid}", json={"labels": [label["id"]]}, headers=auth)
    response = client.patch(f"{API}/conversaciones/{cid}", json=body, headers=auth)
    assert response.status_code == 400 and response.json["error"] == "invalid_body", response.json
    assert _links() == {(cid, label["id"])}


def test_an_unknown_label_is_400_naming_it_and_nothing_changes(client, auth, post_webhook):
    cid = _conversation(post_webhook, "5491170000003", "Caro")
    label = _create(client, auth, "Factura").json
    client.patch(f"{API}/conversaciones/{cid}", json={"labels": [label["id"]]}, headers=auth)
    before = client.get(f"{API}/conversaciones/{cid}", headers=auth).json
    missing = label["id"] + 1000
    response = client.patch(
        f"{API}/conversaciones/{cid}", json={"labels": [missing], "status": "resolved"}, headers=auth
    )
    assert response.status_code == 400
    body = assert_documented(response, "/whatsapp/api/conversaciones/{conversation_id}", "patch")
    assert body["error"] == "unknown_labels" and body["unknown"] == [missing] and str(missing) in body["message"]
    assert client.get(f"{API}/conversaciones/{cid}", headers=auth).json == before  # status untouched too
    assert client.patch(f"{API}/conversaciones/{cid + 1000}", json={"labels": []}, headers=auth).status_code == 404


def test_the_list_filters_by_label_counts_included(client, auth, post_webhook):
    ana = _conversation(post_webhook, "5491170000004", "Ana")
    beto = _conversation(post_webhook, "5491170000005", "Beto")
    _conversation(post_webhook, "5491170000006", "Caro")
    factura = _create(client, auth, "Factura").json["id"]
    otra = _create(client, auth, "Otra").json["id"]
    for cid in (ana, beto):
        client.patch(f"{API}/conversaciones/{cid}", json={"labels": [factura]}, headers=auth)
    body = client.get(f"{API}/conversaciones", headers=auth, query_string={"label": factura}).json
    assert sorted(c["id"] for c in body["conversations"]) == sorted([ana, beto])
    assert body["counts"]["all"] == 2 and body["pagination"]["total"] == 2
    assert client.get(f"{API}/conversaciones", headers=auth, query_string={"label": otra}).json["conversations"] == []
    unknown = client.get(f"{API}/conversaciones", headers=auth, query_string={"label": otra + 1000})
    assert unknown.status_code == 200 and unknown.json["conversations"] == []
    for bad in ("x", "0", "-1", "1.5", "²", str(2**31)):
        refused = client.get(f"{API}/conversaciones", headers=auth, query_string={"label": bad})
        assert refused.status_code == 400 and refused.json["parameter"] == "label", bad
    assert len(client.get(f"{API}/conversaciones", headers=auth, query_string={"label": ""}).json["conversations"]) == 3


def test_deleting_a_label_takes_it_off_every_conversation(client, auth, post_webhook):
    cid = _conversation(post_webhook, "5491170000007", "Dani")
    keep = _create(client, auth, "Queda").json["id"]
    gone = _create(client, auth, "Se va").json["id"]
    client.patch(f"{API}/conversaciones/{cid}", json={"labels": [keep, gone]}, headers=auth)
    assert client.delete(f"{API}/etiquetas/{gone}", headers=auth).status_code == 204
    assert [item["id"] for item in client.get(f"{API}/conversaciones/{cid}", headers=auth).json["labels"]] == [keep]
    assert _links() == {(cid, keep)}


# --- ETags and the list cache -------------------------------------------------------------------


def test_label_changes_change_the_etags_of_the_list_and_the_detail(client, auth, post_webhook):
    cid = _conversation(post_webhook, "5491170000008", "Eva")
    label = _create(client, auth, "Factura", "#1f883d").json["id"]
    urls = (f"{API}/conversaciones", f"{API}/conversaciones/{cid}")

    def etags() -> tuple[str, ...]:
        tags = []
        for url in urls:
            response = client.get(url, headers=auth)
            assert response.status_code == 200
            tags.append(response.headers["ETag"])
            # What the client holds is still current until the next change.
            assert client.get(url, headers={**auth, "If-None-Match": response.headers["ETag"]}).status_code == 304
        return tuple(tags)

    seen = [etags()]
    client.patch(f"{API}/conversaciones/{cid}", json={"labels": [label]}, headers=auth)
    seen.append(etags())
    client.patch(f"{API}/etiquetas/{label}", json={"name": "Facturas"}, headers=auth)
    seen.append(etags())
    client.patch(f"{API}/etiquetas/{label}", json={"color": "#cf222e"}, headers=auth)
    seen.append(etags())
    client.delete(f"{API}/etiquetas/{label}", headers=auth)
    seen.append(etags())
    for before, after in itertools.pairwise(seen):
        assert before[0] != after[0] and before[1] != after[1]
    assert client.get(urls[0], headers=auth).json["conversations"][0]["labels"] == []


# --- the admin page and the inbox pages -------------------------------------------------------


def test_the_admin_page_creates_renames_and_deletes_labels_with_clear_refusals(client, agent, fresh_app_context):
    from tests.test_pages import csrf_token, login

    login(client, agent.email)
    token = csrf_token(client.get("/admin/").text)
    created = client.post("/admin/labels", data={"csrf_token": token, "name": "Factura", "color": "#1F883D"})
    assert created.status_code == 302
    page = client.get("/admin/").text
    assert "Etiqueta Factura creada." in page or "Label Factura created." in page
    label = db.session.execute(select(Label)).scalar_one()
    assert label.color == "#1f883d"
    for data, reason in (
        ({"name": "FACTURA", "color": "#000000"}, ("Ya existe una etiqueta", "A label with this name")),
        ({"name": "Otra", "color": "red"}, ("#rrggbb", "#rrggbb")),
        ({"name": "   ", "color": "#000000"}, ("1 a 40", "1 to 40")),
    ):
        client.post("/admin/labels", data={"csrf_token": token, **data})
        page = client.get("/admin/").text
        assert reason[0] in page or reason[1] in page, data
    assert _label_count() == 1
    assert client.post("/admin/labels", data={"name": "Sin token", "color": "#000000"}).status_code == 400
    client.post(f"/admin/labels/{label.id}", data={"csrf_token": token, "name": "Facturas", "color": "#0969da"})
    db.session.expire_all()
    assert (db.session.get(Label, label.id).name, db.session.get(Label, label.id).color) == ("Facturas", "#0969da")
    client.post(f"/admin/labels/{label.id}/delete", data={"csrf_token": token})
    assert _label_count() == 0
    client.post(f"/admin/labels/{label.id}/delete", data={"csrf_token": token})
    page = client.get("/admin/").text
    assert "Esa etiqueta ya no existe." in page or "That label no longer exists." in page


def test_the_inbox_shows_chips_the_filter_and_the_picker(client, agent, auth, post_webhook, fresh_app_context):
    from tests.test_pages import login

    cid = _conversation(post_webhook, "5491170000009", "Fede")
    dark = _create(client, auth, "Amarillo", "#fbca04").json["id"]
    light = _create(client, auth, "Rojo <b>", "#b60205").json["id"]
    client.patch(f"{API}/conversaciones/{cid}", json={"labels": [dark, light]}, headers=auth)
    login(client, agent.email)
    page = client.get(f"/?c={cid}").text
    assert 'class="label-chip label-text-dark' in page and 'class="label-chip label-text-light' in page
    assert 'fill="#fbca04"' in page and "Rojo &lt;b&gt;" in page and "Rojo <b>" not in page
    assert f'data-label-toggle value="{dark}" checked' in page
    listed = client.get("/", query_string={"label": light}).text
    assert 'id="label-filter"' in listed and f'<option value="{light}" selected>' in listed
    assert f'id="row-{cid}"' in listed
    other = client.get("/inbox/fragments/list", query_string={"label": light + 1000}).text
    assert f'id="row-{cid}"' not in other
